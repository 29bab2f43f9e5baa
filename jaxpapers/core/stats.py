"""Percentile-bootstrap intervals shared by the evaluations.

`bootstrap_weights` resamples groups (users, questions, ...) with replacement and returns how
many times each row is drawn, so every statistic that is a weighted mean over rows is
computed for all draws at once (`weights @ values`); `percentile_interval` turns the draws
of a statistic into its [lo, hi] interval.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def bootstrap_weights(groups: Sequence, num_samples: int, seed: int = 0) -> np.ndarray:
  """[num_samples, N] multiplicity of each of N rows when its group is resampled (rows of a
  group are drawn together; pass range(N) to resample rows one by one)."""
  _, index = np.unique(np.asarray(groups), return_inverse=True)
  num_groups = int(index.max()) + 1 if len(index) else 0
  rng = np.random.default_rng(seed)
  draws = rng.integers(0, num_groups, (num_samples, num_groups))
  counts = np.zeros((num_samples, num_groups))
  np.add.at(counts, (np.arange(num_samples)[:, None], draws), 1.0)
  return counts[:, index]


def percentile_interval(draws, level: float = 0.95) -> list[float]:
  """[lo, hi]: the (1 - level) / 2 and (1 + level) / 2 percentiles of bootstrap draws."""
  tail = (1 - level) / 2 * 100
  return [float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))]
