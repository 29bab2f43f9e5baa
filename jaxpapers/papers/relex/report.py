"""Per-tensor diagnostics of a RELEX run and their summary (`W/relex_report.json`).

Per tensor: every singular value S, the explained variance of the kept rank
(Σ_{i<k} S_i² / Σ S_i², reference `explained_var`), the top-component energy S₁²/ΣS²,
the coefficient trajectory c_t of the observed steps, the predicted ĉ, the in-sample R² of
the fit over the window, and, when held-out checkpoints were projected
(`project_heldout`), their coefficients and the out-of-sample R² of the fitted curve
(../shared/papers/relex.md, "Linearity check" and "Denoising claim"). The summary mirrors
the reference's printed variance summary (mean/min/max/median, ≥90/95/99%).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxpapers.papers.relex import fit as fit_lib
from jaxpapers.papers.relex import plan as plan_lib
from jaxpapers.papers.relex import svd


def tensor_stats(name: str, shape, plan: plan_lib.Plan, eig: svd.Eigen, c_fit: np.ndarray,
                 c_extra: np.ndarray | None, c_pred: np.ndarray) -> dict:
  """JSON-ready diagnostics of one tensor.

  Args:
    c_fit: [T, k] observed coefficients; c_extra: [E, k] extra rows or None;
    c_pred: [J, k] predicted coefficients of the targets.
  """
  energy = eig.s_all ** 2
  window = c_fit[-plan.window:]
  predictor = fit_lib.FITS.get(plan.fit)(window, plan.degree)
  fitted = np.stack([predictor(float(i)) for i in range(len(window))])
  out = {
      'name': name, 'shape': list(shape),
      'singular_values': eig.s_all.tolist(),
      'explained_variance': eig.explained,
      'energy_top1': float(energy[0] / energy.sum()) if energy.sum() > 0 else 0.0,
      'coefficients': c_fit.tolist(),
      'predicted': np.asarray(c_pred).tolist(),
      'r2_in_sample': fit_lib.r_squared(window, fitted).tolist(),
  }
  heldout = [s for s in plan.extra_steps if s > plan.fit_steps[-1]]
  if heldout and c_extra is not None:
    rows = [plan.extra_steps.index(s) for s in heldout]
    last, w = plan.fit_steps[-1], plan.window
    index = [(w - 1) + (s - last) / plan.stride for s in heldout]
    out['heldout_steps'] = heldout
    out['heldout_coefficients'] = c_extra[rows].tolist()
    out['r2_out_of_sample'] = fit_lib.r_squared(
        c_extra[rows], np.stack([predictor(i) for i in index])).tolist()
  return out


def summary(stats: Sequence[dict]) -> dict:
  """Reference-style summary of explained variance over the processed tensors."""
  ev = np.array([s['explained_variance'] for s in stats]) if stats else np.zeros(1)
  top1 = np.array([s['energy_top1'] for s in stats]) if stats else np.zeros(1)
  r2 = np.array([s['r2_in_sample'][0] for s in stats]) if stats else np.zeros(1)
  return {
      'tensors': len(stats),
      'explained_mean': float(ev.mean()), 'explained_min': float(ev.min()),
      'explained_max': float(ev.max()), 'explained_median': float(np.median(ev)),
      'explained_above_90pct': int((ev >= 0.90).sum()),
      'explained_above_95pct': int((ev >= 0.95).sum()),
      'explained_above_99pct': int((ev >= 0.99).sum()),
      'energy_top1_mean': float(top1.mean()),
      'r2_in_sample_median': float(np.nanmedian(r2)) if np.isfinite(r2).any() else float('nan'),
  }


def plot_coefficients(stats: Sequence[dict], plan: plan_lib.Plan, out_png,
                      max_tensors: int = 4) -> None:
  """Top-component c_t vs step for the tensors with the largest S₁: observed points,
  held-out points (if projected), the fitted curve over the window, and the predictions."""
  import matplotlib  # local: plotting is optional
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  chosen = sorted(stats, key=lambda s: -s['singular_values'][0])[:max_tensors]
  fig, axes = plt.subplots(1, max(len(chosen), 1), figsize=(4.5 * max(len(chosen), 1), 3.5),
                           squeeze=False)
  last, w = plan.fit_steps[-1], plan.window
  to_step = lambda i: last + (i - (w - 1)) * plan.stride
  for ax, s in zip(axes[0], chosen):
    c = np.asarray(s['coefficients'])[:, 0]
    ax.plot(plan.fit_steps, c, 'o', ms=3, label='observed')
    if 'heldout_steps' in s:
      ax.plot(s['heldout_steps'], np.asarray(s['heldout_coefficients'])[:, 0], 'x', ms=4,
              label='held out')
    if plan.mode == 'extrapolate':
      predictor = fit_lib.FITS.get(plan.fit)(np.asarray(s['coefficients'])[-w:], plan.degree)
      idx = np.linspace(0, max([w - 1, *plan.queries]), 200)
      ax.plot([to_step(i) for i in idx], [predictor(i)[0] for i in idx], '-', lw=1,
              label=f'{plan.fit} fit')
      ax.plot([to_step(q) for q in plan.queries], np.asarray(s['predicted'])[:, 0], '*',
              ms=8, label='predicted')
    ax.set_title(s['name'], fontsize=8)
    ax.set_xlabel('step')
    ax.set_ylabel('c_t (top component)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out_png, dpi=110)
  plt.close(fig)
