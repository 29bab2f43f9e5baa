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
