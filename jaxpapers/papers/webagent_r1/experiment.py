"""WebAgent-R1 on the generated sites: BC, BC then M-GRPO (R1), M-GRPO from scratch (R1-Zero).

For one seed, in `workdir`:
  bc/        behaviour cloning on the scripted expert's steps (core's GRPO runner with 0 RL
             steps and an SFT warm-up); the BC policy is its step-0 checkpoint
  r1/        `steps` multi-turn GRPO steps from the BC weights (WebAgent-R1)
  r1_zero/   the same GRPO budget from the un-warmed policy (WebAgent-R1-Zero)
Every GRPO run is core's runner with rollouts against the 'webagent' env (sim backend):
groups of `grpo.num_generations` whole trajectories per task, each in a fresh browser session,
binary checker reward, environment tokens masked, history compressed (only the newest page in
the context). Each final policy is then evaluated greedily on the held-out split (templates
and entities never trained on): at `env.max_steps` by the runner itself (BC: its start
evaluation; R1, R1-Zero: their final one), and with the other `eval_max_steps` interaction
budgets (the paper's test-time scaling) here.
With `miniwob.tasks` set, each of `miniwob.policies` also plays those MiniWoB++ tasks in
headless Chromium (the outside benchmark: pages the policy never saw).
results.json: `bc_success`, `r1_success`, `r1_zero_success` (at env.max_steps),
`success_by_max_steps` {policy: {steps: success}}, `miniwob_success` {policy: {task: rate}}
and `<policy>_miniwob_success` (the mean over tasks); a killed run resumes stage by stage.
"""
from __future__ import annotations

import json
import pathlib
import time

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core.runners import grpo as grpo_runner
from jaxpapers.papers.webagent_r1 import env as env_lib  # noqa: F401 - registers 'webagent'
from jaxpapers.papers.webagent_r1 import miniwob_eval  # noqa: F401 - registers 'webagent_miniwob'
from jaxpapers.papers.webagent_r1 import training
from jaxpapers.papers.webagent_r1 import zero_shot   # also registers 'webagent_zero_shot'

grpo_runner.TASKS.register('webagent_sites')(training.prompt_set)

POLICIES = ('bc', 'r1', 'r1_zero')


def _stage(base, workdir: pathlib.Path, steps: int, warmup_steps: int,
           resume_from: str = '') -> None:
  c = base.copy_and_resolve_references()
  c.steps, c.warmup.steps = steps, warmup_steps
  c.task.demonstrations = warmup_steps > 0   # only BC reads the expert's steps
  c.resume_from, c.resume_params_only = resume_from, bool(resume_from)
  grpo_runner.run(c, str(workdir))


def evaluate(config, run_dir: pathlib.Path, test, max_steps: int, mesh) -> dict:
  """Greedy held-out success of a run's final policy with `max_steps` interactions."""
  c = config.copy_and_resolve_references()
  c.env.max_steps = c.rollout.max_turns = max_steps
  graphdef, params = grpo_runner.load_policy(c, run_dir, mesh)
  t0 = time.time()
  stats = grpo_runner.evaluate(params, graphdef, test, c, mesh)
  return {'success': float(stats['eval_accuracy']), 'eval_s': round(time.time() - t0, 1)}


def evaluate_miniwob(config, run_dir: pathlib.Path, mesh) -> dict:
  """A run's final policy, greedily, on the MiniWoB++ tasks of `config.miniwob`."""
  graphdef, params = grpo_runner.load_policy(config, run_dir, mesh)
  t0 = time.time()
  stats, _ = zero_shot.miniwob_rows((graphdef, params), None, config, config.miniwob,
                                    config.miniwob.batch_size, mesh)
  return {**stats, 'eval_s': round(time.time() - t0, 1)}


def runner_success(run_dir: pathlib.Path, key: str) -> float:
  """The runner's own held-out success: 'start/eval_accuracy' or the last 'eval_accuracy'."""
  rows = [r for r in metrics_lib.read_metrics(run_dir) if key in r]
  if not rows:
    raise FileNotFoundError(f'{run_dir}: no {key!r} in its metrics')
  return float(rows[-1][key])


def _cached(path: pathlib.Path, fn):
  if path.exists():
    return json.loads(path.read_text())
  value = fn()
  metrics_lib.write_json(path, value)
  return value


@registry.experiment('webagent_r1')
def run(config, workdir: str) -> dict:
  training.check_env(config)
  training.check_turn_budget(config)
  unknown = sorted(set(config.miniwob.policies) - set(POLICIES))
  if unknown:
    raise ValueError(f'config.miniwob.policies: {unknown} unknown; valid: {list(POLICIES)}')
  workdir = pathlib.Path(workdir)
  dirs = {name: workdir / name for name in POLICIES}
  _stage(config, dirs['bc'], 0, config.warmup.steps)
  _stage(config, dirs['r1'], config.steps, 0, str(dirs['bc'] / 'checkpoints'))
  _stage(config, dirs['r1_zero'], config.steps, 0)

  full = config.env.max_steps
  by_steps = {'bc': {str(full): runner_success(dirs['bc'], 'start/eval_accuracy')},
              'r1': {str(full): runner_success(dirs['r1'], 'eval_accuracy')},
              'r1_zero': {str(full): runner_success(dirs['r1_zero'], 'eval_accuracy')}}
  mesh = mesh_lib.make_mesh(config.mesh)
  test = training.prompt_set(config.task, config.task.num_eval,
                             config.seed + grpo_runner.EVAL_SEED_OFFSET, 'test')  # runner's
  for name in config.scaling_policies:
    for m in sorted(set(config.eval_max_steps) - {full}):
      out = _cached(workdir / 'eval' / f'{name}_steps{m}.json',
                    lambda: evaluate(config, dirs[name], test, m, mesh))  # noqa: B023
      by_steps[name][str(m)] = out['success']
  for name in POLICIES:
    print(f'{name:>8}: held-out success by max steps '
          + ', '.join(f'{m}: {v:.3f}' for m, v in sorted(by_steps[name].items(),
                                                        key=lambda kv: int(kv[0]))), flush=True)
  results = {f'{name}_success': by_steps[name][str(full)] for name in POLICIES}
  results['success_by_max_steps'] = by_steps
  if config.miniwob.tasks:
    results['miniwob_success'] = {}
    for name in config.miniwob.policies:
      out = _cached(workdir / 'eval' / f'{name}_miniwob.json',
                    lambda: evaluate_miniwob(config, dirs[name], mesh))  # noqa: B023
      results['miniwob_success'][name] = out['miniwob_success']
      results[f'{name}_miniwob_success'] = out['miniwob_mean']
      print(f'{name:>8}: MiniWoB++ mean success {out["miniwob_mean"]:.3f} over '
            f'{len(out["miniwob_success"])} tasks', flush=True)
  metrics_lib.write_json(workdir / 'results.json', results)
  return results
