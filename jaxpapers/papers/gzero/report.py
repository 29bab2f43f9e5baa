"""Markdown tables of a `configs/gzero_world.py` run: every variant, round by round, over seeds.

  python -m jaxpapers.papers.gzero.report /tmp/gzero_world

Reads `<workdir>/seed_<s>/<variant>/results.json`; each cell is mean ± std over the seeds.
"""
from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

from jaxpapers.papers.gzero import experiment

COLUMNS = (('generator_heldout', 'held-out'), ('generator_heldout_unknown', 'unknown facts'),
           ('generator_heldout_known', 'known facts'), ('delta_mean', 'pool δ'),
           ('world_question_rate', 'world questions'), ('hint_true_rate', 'true hints'),
           ('blind_spot_share', 'on blind spots'), ('a_hard_correct_rate', 'a_hard right'),
           ('kept', 'DPO pairs'), ('dpo_accuracy', 'DPO acc'))


def _cell(values: list) -> str:
  """mean ± std of the seeds that have the value; '(n=k)' when only k of them do (e.g. no
  world question in a round leaves nothing to diagnose)."""
  have = [v for v in values if v is not None]
  if not have:
    return '-'
  cell = f'{np.mean(have):.3f} ± {np.std(have):.3f}' if len(have) > 1 else f'{have[0]:.3f}'
  return cell + (f' (n={len(have)})' if len(have) < len(values) else '')


def tables(workdir: pathlib.Path) -> str:
  seeds = sorted(p for p in workdir.glob('seed_*') if p.is_dir())
  out = [f'seeds: {", ".join(p.name[5:] for p in seeds)}', '']
  for variant in experiment.VARIANTS:
    runs = [json.loads((s / variant / 'results.json').read_text())['rounds']
            for s in seeds if (s / variant / 'results.json').exists()]
    if not runs:
      continue
    out += [f'### {variant}', '', '| round | ' + ' | '.join(c for _, c in COLUMNS) + ' |',
            '|' + '---|' * (len(COLUMNS) + 1)]
    for k in range(min(len(r) for r in runs)):
      out.append(f'| {k} | ' + ' | '.join(_cell([r[k].get(key) for r in runs])
                                          for key, _ in COLUMNS) + ' |')
    out.append('')
  return '\n'.join(out)


if __name__ == '__main__':
  print(tables(pathlib.Path(sys.argv[1])))
