"""DeSA reward schedules compared from one warmed-up policy (experiment 'desa').

For one seed, in `workdir`:
  warmup/              the SFT warm-up on imperfect demonstrations (GRPO runner, 0 RL steps);
                       every schedule starts from its step-0 checkpoint
  outcome_only/        `steps` GRPO steps on EM (Search-R1)
  mixed/               `steps` GRPO steps on (recall + EM) / 2 from step 0
  desa/stage1, stage2  `stage1_steps` on recall, then EM from the stage-1 weights up to
                       `steps` (a fresh optimizer, as DeSA restarts from a saved actor)
Each run is core's GRPO runner with the `desa_search` env; only the env's reward and the
starting checkpoint differ, so every schedule has the same budget of GRPO steps. Held-out
(test-entity) greedy evaluation every `eval_every` steps gives EM, recall and the search
behaviour; `results.json` holds the last evaluation of each schedule, `desa.png` the curves.
A killed run resumes: each stage resumes from its own checkpoints, finished stages return
their results at once.
"""
from __future__ import annotations

import pathlib

from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core.runners import grpo as grpo_runner
from jaxpapers.papers.desa import env as desa_env  # noqa: F401 - registers 'desa_search'
from jaxpapers.papers.desa import qa
from jaxpapers.papers.desa import qa_eval  # noqa: F401 - registers 'desa_qa_eval'
from jaxpapers.papers.desa import world as world_lib

SCHEDULES = ('desa', 'outcome_only', 'mixed')
EVAL_KEYS = ('em', 'recall', 'f1', 'no_search', 'invalid', 'redundant', 'searches')

grpo_runner.TASKS.register('desa_world')(world_lib.prompt_set)
grpo_runner.TASKS.register('search_r1_qa')(qa.prompt_set)


def _stage(base, workdir: pathlib.Path, reward: str, steps: int, resume_from: str = '',
           params_only: bool = False) -> list[dict]:
  c = base.copy_and_resolve_references()
  c.env.reward, c.steps, c.resume_from = reward, steps, resume_from
  c.resume_params_only = params_only
  grpo_runner.run(c, str(workdir))
  return metrics_lib.read_metrics(workdir)


def _final_eval(rows: list[dict]) -> dict[str, float]:
  last = [r for r in rows if 'eval_em' in r or 'start/eval_em' in r][-1]
  prefix = 'eval_' if 'eval_em' in last else 'start/eval_'
  return {f'test_{k}': float(last.get(prefix + k, 0.0)) for k in EVAL_KEYS}


def run_schedule(name: str, config, workdir: pathlib.Path, init: str) -> list[dict]:
  """Metrics rows of one schedule (steps 1..config.steps), stage by stage."""
  if name == 'outcome_only':
    return _stage(config, workdir / name, 'em', config.steps, init)
  if name == 'mixed':
    return _stage(config, workdir / name, 'mixed', config.steps, init)
  if name == 'desa':
    s1 = workdir / 'desa' / 'stage1'
    rows = _stage(config, s1, 'recall', config.desa.stage1_steps, init)
    rows2 = _stage(config, workdir / 'desa' / 'stage2', 'em', config.steps,
                   str(s1 / 'checkpoints'), params_only=True)
    return rows + [r for r in rows2 if r.get('step', 0) > config.desa.stage1_steps]
  raise ValueError(f'schedule {name!r} unknown; valid: {list(SCHEDULES)}')


@registry.experiment('desa')
def run(config, workdir: str) -> dict:
  workdir = pathlib.Path(workdir)
  for name in config.desa.schedules:
    if name not in SCHEDULES:
      raise ValueError(f'config.desa.schedules: {name!r} unknown; valid: {list(SCHEDULES)}')
  if not 0 < config.desa.stage1_steps < config.steps:
    raise ValueError(f'config.desa.stage1_steps: {config.desa.stage1_steps} must be in '
                     f'(0, steps={config.steps})')
  warm = _stage(config, workdir / 'warmup', 'em', 0)
  init = str(workdir / 'warmup' / 'checkpoints')
  results: dict = {'start': _final_eval(warm)}
  curves = []
  for name in config.desa.schedules:
    rows = run_schedule(name, config, workdir, init)
    results[name] = _final_eval(rows)
    curves += [{**r, 'schedule': name} for r in warm + rows if 'eval_em' in r or
               'start/eval_em' in r]
  for r in curves:   # the start evaluation as step 0 of every curve
    for k in EVAL_KEYS:
      r.setdefault(f'eval_{k}', r.get(f'start/eval_{k}'))
  metrics_lib.plot_curves(curves, [f'eval_{k}' for k in ('em', 'recall', 'no_search',
                                                         'redundant')],
                          workdir / 'desa.png', title='held-out EM / recall vs step',
                          series='schedule')
  flat = {f'{name}.{k}': v for name, m in results.items() for k, v in m.items()}
  metrics_lib.write_json(workdir / 'results.json', {**results, **flat})
  for name in ('start', *config.desa.schedules):
    m = results[name]
    print(f"{name:>13}: test EM {m['test_em']:.3f} recall {m['test_recall']:.3f} "
          f"no-search {m['test_no_search']:.3f} invalid {m['test_invalid']:.3f} "
          f"redundant {m['test_redundant']:.3f}", flush=True)
  return flat
