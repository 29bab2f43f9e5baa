"""Zero-shot reference rows: an instruct model as the web agent, with no training.

Experiment 'webagent_zero_shot'. Each of `config.models` (a named GGUF checkpoint such as
Qwen2.5-Coder-0.5B-Instruct or SmolLM2-135M-Instruct, a .gguf file or an HF dir) plays the
agent through its own chat template, with the reference's system prompt, turns and history
compression (`configs/webagent_qwen.py`'s rollout settings), greedily:

- on the generated sites' held-out tasks ('webagent' env, sim backend), and
- on MiniWoB++ in headless Chromium ('miniwob' env), per task.

The rollouts are core's (`runners.grpo.agent_rollout` with one generation per task), in
batches of `config.batch_size` episodes. results.json (rewritten as each part ends): {model:
{'load_s', 'sites': {success, rewards per task, turns, invalid_actions, ...}, 'miniwob':
{'miniwob_success': {task: rate}, 'miniwob_mean', 'miniwob_turns', ...}}}.
"""
from __future__ import annotations

import json
import pathlib
import statistics
import time

import jax
import numpy as np

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core.runners import generate as generate_runner
from jaxpapers.core.runners import grpo as grpo_runner
from jaxpapers.papers.webagent_r1 import env as env_lib  # noqa: F401 - registers 'webagent'
from jaxpapers.papers.webagent_r1 import miniwob
from jaxpapers.papers.webagent_r1 import training

PARTS = ('sites', 'miniwob')
STAT_KEYS = ('reward', 'turns', 'invalid_actions', 'env_errors', 'truncated', 'policy_tokens')


def evaluate(model, prompts, base, batch_size: int, mesh) -> tuple[dict, np.ndarray, list[str]]:
  """Greedy episodes over every task of `prompts` (rollout and env settings of the GRPO
  config `base`), `batch_size` at a time: the episode-weighted means of STAT_KEYS, each
  episode's reward and the first episode's text of each batch."""
  graphdef, params = model
  one = base.copy_and_resolve_references()
  one.grpo.num_generations = 1
  n = len(prompts.prompt_ids)
  rewards, sums, samples = [], dict.fromkeys(STAT_KEYS, 0.0), []
  for start in range(0, n, batch_size):
    idx = list(range(start, min(start + batch_size, n)))
    arrays, stats, sample = grpo_runner.agent_rollout(
        params, graphdef, prompts, idx, one, jax.random.PRNGKey(0), mesh, temperature=0.0)
    rewards += arrays['rewards'].tolist()
    for k in STAT_KEYS:
      sums[k] += stats[k] * (len(idx) if k != 'env_errors' else 1)   # env_errors is a sum
    samples.append(sample)
  means = {k: v / (n if k != 'env_errors' else 1) for k, v in sums.items()}
  means['success'] = means.pop('reward')
  return means, np.array(rewards), samples


def sites_rows(model, tok, base, batch_size: int, mesh, seed: int = 0) -> tuple[dict, list[str]]:
  """Success on `base.task.num_eval` held-out generated-site tasks (the order of `seed`)."""
  prompts = training.prompt_set(base.task, base.task.num_eval,
                                seed + grpo_runner.EVAL_SEED_OFFSET, 'test', tok=tok)
  stats, rewards, samples = evaluate(model, prompts, base, batch_size, mesh)
  stats['n'], stats['rewards'] = len(prompts.prompt_ids), rewards.tolist()   # in task order
  return stats, samples


def miniwob_rows(model, tok, base, miniwob_cfg, batch_size: int, mesh) -> tuple[dict, list[str]]:
  """Per-task success (raw reward > 0) on MiniWoB++ tasks `miniwob_cfg.tasks` x `.seeds`, in
  the rollout settings and prompt format of `base` with the 'miniwob' env `miniwob_cfg.env`."""
  c = base.copy_and_resolve_references()
  c.env = miniwob_cfg.env
  fmt = training.make_format(c.task, tok)
  names = [(t, s) for t in miniwob_cfg.tasks for s in miniwob_cfg.seeds]
  env = miniwob.MiniWoBEnv(c.env)
  try:
    tasks = [env.make_task(t, s) for t, s in names]
  finally:
    env.close()
  prompts = training.task_prompts(fmt, tasks, [t for t, _ in names])
  stats, rewards, samples = evaluate(model, prompts, c, batch_size, mesh)
  per_task = {t: float(np.mean([r for (name, _), r in zip(names, rewards) if name == t]))
              for t in miniwob_cfg.tasks}
  return {'miniwob_success': per_task, 'miniwob_mean': statistics.fmean(per_task.values()),
          **{f'miniwob_{k}': v for k, v in stats.items() if k != 'success'}}, samples


@registry.experiment('webagent_zero_shot')
def run(config, workdir: str) -> dict:
  workdir = pathlib.Path(workdir)
  unknown = sorted(set(config.parts) - set(PARTS))
  if unknown:
    raise ValueError(f'config.parts: {unknown} unknown; valid: {list(PARTS)}')
  training.check_env(config.base)
  mesh = mesh_lib.make_mesh(config.mesh)
  results = {}
  for name in config.models:
    mcfg = config.model.copy_and_resolve_references()
    mcfg.model_dir = name
    generate_runner.validate_model(mcfg)
    label = name or mcfg.preset
    out = workdir / label
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = generate_runner.load_model(mcfg, mesh)
    tok = generate_runner.tokenizer_for(mcfg)
    row = {'load_s': round(time.time() - t0, 1)}
    parts = {'sites': lambda: sites_rows(model, tok, config.base, config.batch_size, mesh,
                                         config.seed),  # noqa: B023
             'miniwob': lambda: miniwob_rows(model, tok, config.base,  # noqa: B023
                                             config.base.miniwob, config.batch_size, mesh)}
    for part in config.parts:
      t0 = time.time()
      stats, samples = parts[part]()
      stats[f'{part}_s'] = round(time.time() - t0, 1)
      row[part] = stats
      (out / f'{part}_samples.jsonl').write_text(
          ''.join(json.dumps({'episode': s}) + '\n' for s in samples))
      shown = stats['success'] if part == 'sites' else stats['miniwob_mean']
      print(f'{label}: {part} success {shown:.3f} ({stats[f"{part}_s"]} s)', flush=True)
      results[label] = row
      metrics_lib.write_json(workdir / 'results.json', results)   # each part as it ends
  return results
