"""Which checkpoints are observed, which rows are read, and where each target sits on the fit axis.

Reference: weizhepei/RELEX scripts/svd_extrapolation.py `main` (../shared/papers/relex.md):
- observed (fit) checkpoints: every saved step ≤ `history_steps` (T of them);
- window W = T if `window` = −1 else min(window, T); the fit sees the last W coefficients;
- extrapolate: i* = (W − 1) + (round(target·step_scale) − last_observed) / stride;
- fit_reconstruct: fit on all T (window ignored, as in the reference), query the target's
  position among the observed steps;
- reconstruct: project the true Δ_target onto the rank-k subspace (no fit);
- autoregressive refit (`refit_every` ≥ 1, step_scale 1 only, as in the reference).
Choices beyond the reference: saved steps must be evenly spaced (a gap is reported as a
missing step); `stride` (the spacing, 1 in every reference run) converts steps to indices;
a target whose index falls before the window (i* < 0) is an error, a target at or before
the last observed step is allowed (it reads the fitted line) with a warning.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from absl import logging

from jaxpapers.core.config import ConfigError, require
from jaxpapers.papers.relex import fit as fit_lib

MODES = ('extrapolate', 'reconstruct', 'fit_reconstruct')


@dataclasses.dataclass(frozen=True)
class Plan:
  mode: str
  fit_steps: tuple[int, ...]    # the T observed checkpoints that define G and the fit
  extra_steps: tuple[int, ...]  # further rows read in pass 1 only (projected onto v)
  targets: tuple[int, ...]      # output labels M (W/extrapolated/step_<M>)
  queries: tuple[float, ...]    # per target: index i* / position / row, by mode
  window: int                   # W
  stride: int                   # spacing of saved steps
  rank: int                     # k = min(rank, T)
  fit: str
  degree: int
  refit_every: int              # −1 = fit once

  @property
  def rows(self) -> tuple[int, ...]:
    return self.fit_steps + self.extra_steps


def parse_targets(value) -> tuple[int, ...]:
  items = value if isinstance(value, (list, tuple)) else str(value).split(',')
  try:
    out = tuple(int(str(v).strip()) for v in items if str(v).strip())
  except ValueError:
    raise ConfigError(f'config.target_steps: {value!r} is not a comma-separated list of '
                      'integers') from None
  require(bool(out), 'target_steps', 'is empty; give at least one step, e.g. 500')
  return out


def observed_steps(steps: Sequence[int], history_steps: int) -> tuple[tuple[int, ...], int]:
  """(fit steps, stride); errors name the missing step or the field."""
  steps = sorted(steps)
  require(history_steps <= steps[-1], 'history_steps',
          f'{history_steps} but the last saved checkpoint is step_{steps[-1]}')
  fit = tuple(s for s in steps if s <= history_steps)
  require(len(fit) >= 2, 'history_steps',
          f'{history_steps} observes T={len(fit)} checkpoint(s) {list(fit)}; RELEX needs T >= 2')
  gaps = np.diff(fit)
  stride = int(gaps.min())
  missing = sorted(set(range(fit[0], fit[-1] + 1, stride)) - set(fit))
  if missing or np.any(gaps % stride):
    raise ConfigError(f'config.trajectory_dir: step_{missing[0] if missing else "?"} missing; '
                      f'observed steps {list(fit)[:8]}... must be evenly spaced '
                      f'(stride {stride})')
  return fit, stride


def make_plan(steps: Sequence[int], config) -> Plan:
  """Validates the config against the saved steps and lays out rows and queries."""
  fit_steps, stride = observed_steps(steps, int(config.history_steps))
  targets = parse_targets(config.target_steps)
  t = len(fit_steps)
  window = t if config.window == -1 else min(int(config.window), t)
  if config.mode == 'fit_reconstruct':
    window = t  # reference: fit_reconstruct always fits on all history
  min_window = 2 if config.fit == 'linear' else int(config.degree) + 1
  require(window >= min_window, 'window',
          f'{config.window} gives W={window}; fit {config.fit!r} needs W >= {min_window}')
  rank = t if config.rank == -1 else min(int(config.rank), t)
  extra, queries = [], []
  if config.mode == 'extrapolate':
    queries = _extrapolation_indices(targets, fit_steps, stride, window, config)
  elif config.mode == 'fit_reconstruct':
    for m in targets:
      require(m in fit_steps, 'target_steps', f'fit_reconstruct target {m} is not an observed '
              f'step (observed: {fit_steps[0]}..{fit_steps[-1]})')
      queries.append(float(fit_steps.index(m)))
  else:
    for m in targets:
      require(m in steps, 'target_steps', f'reconstruct target step_{m} missing from the '
              'trajectory (reconstruct needs saved checkpoints)')
      if m not in fit_steps and m not in extra:
        extra.append(m)
      queries.append(float(fit_steps.index(m) if m in fit_steps else t + extra.index(m)))
  if config.project_heldout:
    extra += [s for s in steps if s > fit_steps[-1] and s not in extra]
  return Plan(config.mode, fit_steps, tuple(extra), targets, tuple(queries), window, stride,
              rank, config.fit, int(config.degree), int(config.refit_every))


def _extrapolation_indices(targets, fit_steps, stride, window, config) -> list[float]:
  scale, last, out = float(config.step_scale), fit_steps[-1], []
  if config.refit_every != -1:
    require(scale == 1.0, 'step_scale', f'{scale}: autoregressive refit (refit_every='
            f'{config.refit_every}) needs step_scale 1, as in the reference')
  for m in targets:
    ahead = (int(round(m * scale)) - last) / stride
    index = (window - 1) + ahead
    if index < 0:
      raise ConfigError(f'config.target_steps: target {m} (step {round(m * scale)} after '
                        f'step_scale) lies before the fit window, which starts at step '
                        f'{fit_steps[-window]}')
    if config.refit_every != -1 and (ahead < 1 or ahead != int(ahead)):
      raise ConfigError(f'config.target_steps: autoregressive target {m} must be a saved-step '
                        f'multiple after step {last} (stride {stride})')
    if ahead <= 0:
      logging.warning('RELEX: target %d <= last observed step %d (reads the fitted line)', m,
                      last)
    out.append(index)
  return out


def predict_coefficients(plan: Plan, c_fit: np.ndarray, c_extra: np.ndarray | None
                         ) -> np.ndarray:
  """ĉ for every target.

  Args:
    c_fit: [T, k] coefficients of the fit rows.
    c_extra: [E, k] coefficients of the extra rows (reconstruct targets), or None.
  Returns:
    [J, k] float32.
  """
  if plan.mode == 'reconstruct':
    rows = np.concatenate([c_fit, c_extra]) if c_extra is not None and len(c_extra) else c_fit
    return rows[np.asarray(plan.queries, int)].astype(np.float32)
  window = c_fit[-plan.window:]
  if plan.mode == 'extrapolate' and plan.refit_every != -1:
    ahead = [int(round(q - (plan.window - 1))) for q in plan.queries]
    path = fit_lib.predict_autoregressive(window, plan.fit, plan.degree, max(ahead),
                                          plan.refit_every)
    return path[np.asarray(ahead) - 1]
  return fit_lib.predict(window, plan.fit, plan.degree, plan.queries)
