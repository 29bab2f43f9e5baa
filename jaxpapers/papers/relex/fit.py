"""Fits of the temporal coefficients c_t over the checkpoint index, and their predictions.

Reference: weizhepei/RELEX scripts/svd_extrapolation.py (`fit_linear`, `fit_polynomial`,
the `extrapolate` branch of `main`); ../shared/papers/relex.md "Fit" and "Prediction".
- The regressor is the position index i = 0..W−1 inside the window, not the raw step.
- `linear`: ordinary least squares with intercept, c ≈ a + b·i (closed form, float64).
- `polynomial`: `np.polyfit(i, c, degree)` per component (float64).
- Predictions are cast to float32 as in the reference before they scale the direction v.
- Autoregressive refit (`refit_every` = the reference's `--future_extrapolation_window`):
  keep a window of the last W coefficients, predict the next index W, append it, and refit
  every F predicted steps.
The sinusoid fit of the reference (scipy curve_fit) is not ported.
"""
from __future__ import annotations

import collections
from typing import Callable, Sequence

import numpy as np

from jaxpapers.core import registry

Predictor = Callable[[float], np.ndarray]  # index -> [k] float32
FITS = registry.Registry('RELEX fit')


@FITS.register('linear')
def fit_linear(c: np.ndarray, degree: int = 1) -> Predictor:
  """OLS with intercept per column of c over i = 0..W−1 (reference `fit_linear`).

  Args:
    c: [W, k] coefficients, W >= 2.
    degree: unused (always 1).
  Returns:
    i -> slope·i + intercept, [k] float32.
  """
  del degree
  c = np.asarray(c, np.float64)
  t = np.arange(len(c), dtype=np.float64)
  tc = t - t.mean()
  slope = (tc[:, None] * (c - c.mean(0))).sum(0) / np.sum(tc ** 2)
  intercept = c.mean(0) - slope * t.mean()
  return lambda i: (slope * i + intercept).astype(np.float32)


@FITS.register('polynomial')
def fit_polynomial(c: np.ndarray, degree: int = 2) -> Predictor:
  """`np.polyfit(i, c[:, j], degree)` per component (reference `fit_polynomial`).

  Args:
    c: [W, k] coefficients, W > degree.
  Returns:
    i -> [k] float32 polynomial values.
  """
  c = np.asarray(c, np.float64)
  t = np.arange(len(c), dtype=np.float64)
  polys = [np.poly1d(np.polyfit(t, c[:, j], degree)) for j in range(c.shape[1])]
  return lambda i: np.array([float(p(i)) for p in polys], dtype=np.float32)


def predict(c: np.ndarray, fit: str, degree: int, indices: Sequence[float]) -> np.ndarray:
  """Fit once on `c` and evaluate at each index.

  Args:
    c: [W, k] window of coefficients.
    indices: J query indices on the window's axis (W−1 = last observed).
  Returns:
    [J, k] float32.
  """
  predictor = FITS.get(fit)(c, degree)
  return np.stack([predictor(float(i)) for i in indices]).reshape(len(indices), c.shape[1])


def predict_autoregressive(c: np.ndarray, fit: str, degree: int, num_steps: int,
                           refit_every: int) -> np.ndarray:
  """Slides the window over its own predictions (reference `future_extrapolation_window`).

  Args:
    c: [W, k] window of observed coefficients.
    num_steps: predictions to make (one per future checkpoint).
    refit_every: F >= 1; refit after every F predictions.
  Returns:
    [num_steps, k] float32, row n = prediction for the (n+1)-th checkpoint after the window.
  """
  window = collections.deque(np.asarray(c, np.float32), maxlen=len(c))
  out, predictor, since = [], None, refit_every
  for _ in range(num_steps):
    if since >= refit_every:
      predictor = FITS.get(fit)(np.array(window, dtype=np.float32), degree)
      since = 0
    pred = predictor(float(len(c)))  # index W−1+1: the next checkpoint
    out.append(pred)
    window.append(pred)
    since += 1
  return np.stack(out).reshape(num_steps, c.shape[1])


def r_squared(c: np.ndarray, fitted: np.ndarray) -> np.ndarray:
  """Coefficient of determination per component: 1 − SS_res / SS_tot (nan if SS_tot = 0).

  Args:
    c: [N, k] true coefficients; fitted: [N, k] fitted values.
  Returns:
    [k] float64.
  """
  c = np.asarray(c, np.float64)
  ss_res = ((c - fitted) ** 2).sum(0)
  ss_tot = ((c - c.mean(0)) ** 2).sum(0)
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)
