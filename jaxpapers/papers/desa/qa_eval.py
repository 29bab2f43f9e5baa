"""Search-agent evaluation on real QA (experiment 'desa_qa_eval').

Greedy multi-turn episodes of any policy (a named or .gguf checkpoint, an HF dir, or a
random preset) with Search-R1's prompt against BM25 over the shipped corpus (or a Search-R1
server), per benchmark: EM, F1, recall of the retrieved passages, and the search behaviour
(no-search rate, invalid, redundant, searches per episode). The `no_search` mode asks the
same model without a search engine (one turn), the "own knowledge" row.
`results.json`: {benchmark: {mode: metrics}}, with the number of questions.
"""
from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np

from jaxpapers.core import agent as agent_lib
from jaxpapers.core import env as env_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core.runners import generate as generate_runner
from jaxpapers.papers.desa import env as desa_env
from jaxpapers.papers.desa import qa

KEYS = ('em', 'f1', 'recall', 'no_search', 'invalid', 'redundant', 'searches', 'answered')


def evaluate(model, tok, config, benchmark: str, mode: str
             ) -> tuple[dict[str, float], list[dict]]:
  """Mean metrics over the benchmark's test questions, and one row per episode."""
  task_cfg = config.task.copy_and_resolve_references()
  task_cfg.benchmarks, task_cfg.template = [benchmark], mode
  prompts = qa.prompt_set(task_cfg, config.num_questions, 0, 'test', tok=tok)
  agent_cfg = agent_lib.AgentConfig(
      max_turns=1 if mode == 'no_search' else config.max_turns,
      max_turn_tokens=config.max_turn_tokens, max_total_tokens=config.max_new_tokens,
      stop=('</search>', '</answer>'), temperature=0.0, env_timeout_s=config.env_timeout_s)
  rows, outcomes = [], []
  for start in range(0, len(prompts.prompt_ids), config.batch_size):
    idx = list(range(start, min(start + config.batch_size, len(prompts.prompt_ids))))
    batch_env = desa_env.DesaSearchEnv(config.env)
    batch_env.reset([prompts.tasks[i] for i in idx])
    _, episodes = agent_lib.rollout(model, tok, [prompts.prompt_ids[i] for i in idx],
                                    batch_env, agent_cfg, rng=jax.random.PRNGKey(0))
    for r, ep in enumerate(episodes):
      outcomes.append(env_lib.call_score(batch_env, r, ep))
      rows.append({'question': prompts.tasks[idx[r]].prompt,
                   'answers': prompts.tasks[idx[r]].answer, 'episode': ep.text()})
  out = {k: float(np.mean([o.components.get(k, 0.0) for o in outcomes])) for k in KEYS}
  out['n'] = len(outcomes)
  return out, [{**row, **o.components} for row, o in zip(rows, outcomes)]


@registry.experiment('desa_qa_eval')
def run(config, workdir: str) -> dict:
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  generate_runner.validate_model(config.model)
  mesh = mesh_lib.make_mesh(config.mesh)
  t0 = time.time()
  model = generate_runner.load_model(config.model, mesh)
  tok = generate_runner.tokenizer_for(config.model)
  print(f'loaded {config.model.model_dir or config.model.preset} in {time.time() - t0:.1f} s',
        flush=True)
  results: dict = {}
  for benchmark in config.benchmarks:
    for mode in config.modes:
      t0 = time.time()
      metrics, episodes = evaluate(model, tok, config, benchmark, mode)
      metrics['seconds'] = round(time.time() - t0, 1)
      results.setdefault(benchmark, {})[mode] = metrics
      with open(workdir / f'episodes_{benchmark}_{mode}.jsonl', 'w') as f:
        f.writelines(json.dumps(e) + '\n' for e in episodes)
      print(f"{benchmark:>9} {mode:>10}: EM {metrics['em']:.3f} F1 {metrics['f1']:.3f} "
            f"recall {metrics['recall']:.3f} no-search {metrics['no_search']:.3f} "
            f"invalid {metrics['invalid']:.3f} redundant {metrics['redundant']:.3f} "
            f"searches {metrics['searches']:.2f} (n={metrics['n']}, {metrics['seconds']} s)",
            flush=True)
  metrics_lib.write_json(workdir / 'results.json', results)
  return results
