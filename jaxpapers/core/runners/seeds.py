"""Runs one experiment config (`config.base`) once per seed and summarises across seeds.

Each seed runs in `<workdir>/seed_<s>` (so each resumes on its own after a kill); the
summary `<workdir>/results.json` holds every seed's results, and the mean and std over seeds
of each of `config.summary_keys`.
"""
from __future__ import annotations

import pathlib

import numpy as np

from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry


@registry.experiment('seeds')
def run(config, workdir: str) -> dict:
  if not config.seeds:
    raise ValueError('config.seeds: empty; give at least one seed')
  per_seed = {}
  for seed in config.seeds:
    base = config.base.copy_and_resolve_references()
    base.seed = int(seed)
    experiment = registry.EXPERIMENTS.get(base.experiment)   # registered by the launcher
    per_seed[str(seed)] = experiment(base, str(pathlib.Path(workdir) / f'seed_{seed}'))
  summary = {}
  for key in config.summary_keys:
    values = [r[key] for r in per_seed.values() if r.get(key) is not None]
    if values:
      summary[key] = {'mean': float(np.mean(values)), 'std': float(np.std(values)),
                      'values': [float(v) for v in values]}
  results = {'seeds': list(config.seeds), 'summary': summary, 'per_seed': per_seed}
  metrics_lib.write_json(pathlib.Path(workdir) / 'results.json', results)
  for key, s in summary.items():
    print(f"{key}: {s['mean']:.3f} ± {s['std']:.3f}  ({', '.join(f'{v:.3f}' for v in s['values'])})",
          flush=True)
  return results
