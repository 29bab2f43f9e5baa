"""G-Zero and its ablations from one warm-up (experiment 'gzero_variants').

For one seed, in `workdir`:
  warmup/           both SFT warm-ups and the round-0 evaluation (the 'gzero' loop, 0 rounds)
  <variant>/        `rounds` G-Zero rounds from the warm-up's checkpoint, for each of
                    `config.variants`: main (the paper's settings), random_hints (no Proposer
                    training: the warmed-up Proposer's questions as they come), no_filter
                    (every scored pair goes to DPO), no_duplication (no BLEU-cluster penalty)
`results.json` is flat (`<variant>.final_heldout`, `<variant>.r<k>.heldout`, ...) for the
seeds runner; `variants.png` the held-out score per round of every variant.
"""
from __future__ import annotations

import pathlib

from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.papers.gzero import loop

VARIANTS = {
    'main': {},
    'random_hints': {'proposer': {'steps': 0}},
    'no_filter': {'pool': {'filter': {'pct_low': 0.0, 'pct_high': 100.0}}},
    'no_duplication': {'reward': {'duplication_penalty': False}},
}
FLAT_KEYS = ('generator_heldout', 'generator_heldout_unknown', 'generator_heldout_known',
             'delta_mean', 'proposer_reward', 'blind_spot_share', 'hint_true_rate',
             'filtered_fraction', 'dpo_accuracy', 'kept')


def _override(node, changes: dict) -> None:
  for key, value in changes.items():
    if isinstance(value, dict):
      _override(node[key], value)
    else:
      node[key] = value


def variant_config(config, name: str):
  if name not in VARIANTS:
    raise ValueError(f'config.variants: {name!r} unknown; valid: {sorted(VARIANTS)}')
  c = config.copy_and_resolve_references()
  _override(c, VARIANTS[name])
  return c


@registry.experiment('gzero_variants')
def run(config, workdir: str) -> dict:
  workdir = pathlib.Path(workdir)
  for name in config.variants:
    variant_config(config, name)           # unknown names fail before any training
  warm = config.copy_and_resolve_references()
  warm.rounds = 0
  loop.run(warm, str(workdir / 'warmup'))
  results, rows = {}, []
  for name in config.variants:
    c = variant_config(config, name)
    c.init_from = str(workdir / 'warmup' / 'checkpoints')
    out = loop.run(c, str(workdir / name))
    results[f'{name}.final_heldout'] = out['final_generator_heldout']
    results[f'{name}.start_heldout'] = out['start_generator_heldout']
    for r in out['rounds']:
      rows.append({**r, 'variant': name})
      for key in FLAT_KEYS:
        if r.get(key) is not None:
          results[f'{name}.r{r["round"]}.{key}'] = r[key]
  metrics_lib.plot_curves(rows, ('generator_heldout', 'generator_heldout_unknown',
                                 'blind_spot_share', 'delta_mean'),
                          workdir / 'variants.png', x='round', series='variant',
                          title='G-Zero variants')
  metrics_lib.write_json(workdir / 'results.json', results)
  return results
