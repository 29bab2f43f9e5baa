"""Tables and plots of the RELEX toy experiments (toy_experiments.py): results.md, accuracy.png.

The denoising analysis reads the per-tensor diagnostics RELEX writes (report.py):
S₁²/ΣS² per tensor, the in-sample R² of the fit, the out-of-sample R² of the saved
steps after N projected on v, and their growth: real c / fitted ĉ at the last target (../shared/papers/relex.md, "Linearity check", "Denoising").
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np

from jaxpapers.core import metrics as metrics_lib


def _first(values) -> float:
  return float(values[0]) if values else float('nan')


def _growth(t: dict, target: int) -> float:
  """Real c at `target` (projected on v) / the fitted line's ĉ there: 1 = linear growth."""
  if target not in t.get('heldout_steps', []) or not t['predicted'][-1][0]:
    return float('nan')
  real = t['heldout_coefficients'][t['heldout_steps'].index(target)][0]
  return float(real / t['predicted'][-1][0])


def denoising(tensors: Sequence[dict], last_target: int) -> dict:
  """Per-tensor top-component energy, R² and growth (component 1), and their summary.

  Args:
    tensors: RELEX report entries; `predicted[-1]` must be the prediction at `last_target`.
  """
  rows = [{'name': t['name'], 'size': int(np.prod(t['shape'])),
           's1': float(t['singular_values'][0]), 'energy_top1': t['energy_top1'],
           'r2_in': _first(t['r2_in_sample']), 'r2_out': _first(t.get('r2_out_of_sample', [])),
           'growth': _growth(t, last_target)} for t in tensors]
  s1 = np.array([sum(np.square(t['singular_values'])) for t in tensors])
  top = np.array([t['singular_values'][0] ** 2 for t in tensors])
  col = lambda k: np.array([r[k] for r in rows], np.float64)
  r2_out = col('r2_out')
  return {
      'tensors': rows,
      'energy_top1_median': float(np.median(col('energy_top1'))),
      'energy_top1_min': float(col('energy_top1').min()),
      # Over all tensors together: the share of ‖Δ‖² the rank-1 directions keep.
      'energy_top1_global': float(top.sum() / s1.sum()) if s1.sum() > 0 else float('nan'),
      'r2_in_median': float(np.nanmedian(col('r2_in'))),
      'r2_out_median': float(np.nanmedian(r2_out)) if np.isfinite(r2_out).any() else None,
      'r2_out_positive': int((r2_out > 0).sum()),
      'last_target': last_target,
      'growth_median': float(np.nanmedian(col('growth'))) if np.isfinite(col('growth')).any()
                       else None,
  }


def logged_eval(grpo_workdir) -> dict[str, float]:
  """{step: eval_accuracy} logged by the GRPO run itself (a check that evals agree)."""
  path = pathlib.Path(grpo_workdir) / metrics_lib.METRICS_FILE
  if not path.exists():
    return {}
  return {str(r['step']): r['eval_accuracy'] for r in metrics_lib.read_metrics(path)
          if 'eval_accuracy' in r}


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
  out = ['| ' + ' | '.join(map(str, header)) + ' |', '|' + '---|' * len(header)]
  return out + ['| ' + ' | '.join(map(str, r)) + ' |' for r in rows]


def _label(h: dict, variant: str) -> str:
  return f"{variant} (k={h['effective_rank'][variant]})"


def markdown(results: dict) -> str:
  """results.md: real accuracies, then per N accuracy and distance tables, then denoising."""
  real = results['real_accuracy']
  steps = sorted(real, key=int)
  lines = ['# RELEX on the GRPO toy trajectory', '',
           f"Trajectory: `{results['grpo_workdir']}`. Greedy held-out accuracy "
           f"(GRPO runner `evaluate`).", '', '## Real checkpoints', '']
  for i in range(0, len(steps), 13):
    chunk = steps[i:i + 13]
    lines += _table(['step', *chunk], [['accuracy', *(f'{real[s]:.3f}' for s in chunk)]])
    lines.append('')
  logged = results.get('logged_eval_accuracy') or {}
  same = [s for s in logged if s in real and abs(logged[s] - real[s]) < 1e-6]
  if logged:
    lines += [f'Same as the GRPO run\'s own eval at {len(same)}/{len(logged)} logged steps.', '']
  for h in results['histories']:
    n, targets = h['history'], h['targets']
    by = {(r['variant'], r['target']): r for r in h['predictions']}
    obs = h['observed_steps']
    lines += [f"## N = {n} (observed steps {obs[0]}..{obs[-1]}, T = {len(obs)}; base = step 0)",
              '', 'Held-out accuracy at each target step:', '']
    rows = [['real checkpoint', *(f'{real[str(m)]:.3f}' for m in targets)],
            [f'last observed (step {n})', *([f'{real[str(n)]:.3f}'] * len(targets))]]
    rows += [[_label(h, v), *(f"{by[v, m]['accuracy']:.3f}" for m in targets)]
             for v in results['variants']]
    lines += _table(['checkpoint', *targets], rows)
    lines += ['', 'Parameter space: ‖θ̂ − θ_M‖ / ‖θ_N − θ_M‖ (< 1: closer to the real '
              'checkpoint than the last observed) / cos(θ̂ − θ_N, θ_M − θ_N):', '']
    rows = [[_label(h, v), *(f"{by[v, m]['ratio']:.3f} / {by[v, m]['cos']:.2f}"
                             for m in targets)] for v in results['variants']]
    lines += _table(['prediction', *targets], rows)
    lines.append('')
  den = [h for h in results['histories'] if h['denoising']]
  if den:
    lines += ['## Denoising analysis (rank 1, component 1)', '']
    fmt = lambda x: 'n/a' if x is None else f'{x:.3f}'
    lines += _table(
        ['N', 'tensors', 'S₁²/ΣS² median (min)', 'S₁²/ΣS² all tensors', 'R² in-sample median',
         'R² out-of-sample median', 'tensors with R² out > 0', 'c real / ĉ at last target'],
        [[h['history'], len(d['tensors']), f"{d['energy_top1_median']:.3f} "
          f"({d['energy_top1_min']:.3f})", fmt(d['energy_top1_global']),
          fmt(d['r2_in_median']), fmt(d['r2_out_median']), d['r2_out_positive'],
          f"{fmt(d['growth_median'])} (step {d['last_target']})"]
         for h in den for d in [h['denoising']]])
    h = den[-1]
    big = sorted(h['denoising']['tensors'], key=lambda t: -t['size'])[:8]
    lines += ['', f"Largest tensors, N = {h['history']}:", '']
    lines += _table(['tensor', 'size', 'S₁²/ΣS²', 'R² in', 'R² out', 'c real / ĉ'],
                    [[t['name'], t['size'], f"{t['energy_top1']:.3f}", fmt(t['r2_in']),
                      fmt(t['r2_out']), fmt(t['growth'])] for t in big])
    lines.append('')
  return '\n'.join(lines) + '\n'


def plot_accuracy(results: dict, out_png) -> None:
  """Accuracy vs step: the real checkpoints (line) and each variant's predictions (markers),
  one panel per N."""
  import matplotlib  # local: plotting is optional
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  hs = results['histories']
  fig, axes = plt.subplots(1, len(hs), figsize=(5.5 * len(hs), 3.8), squeeze=False)
  real = sorted((int(s), a) for s, a in results['real_accuracy'].items())
  markers = 'o*sD^vP<>'
  for ax, h in zip(axes[0], hs):
    ax.plot(*zip(*real), '-', color='k', lw=1.2, label='real checkpoints')
    ax.axvline(h['history'], ls='--', color='gray', lw=1)
    for i, v in enumerate(results['variants']):
      pts = [(r['target'], r['accuracy']) for r in h['predictions'] if r['variant'] == v]
      ax.plot(*zip(*pts), markers[i % len(markers)], ms=8 if i == 0 else 5,
              label=_label(h, v), alpha=0.9 if i == 0 else 0.6)
    ax.set_title(f"observe steps <= {h['history']}", fontsize=9)
    ax.set_xlabel('GRPO step')
    ax.set_ylabel('held-out greedy accuracy')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out_png, dpi=110)
  plt.close(fig)
