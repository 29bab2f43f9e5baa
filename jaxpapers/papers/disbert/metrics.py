"""STS and paraphrase metrics in numpy: Pearson, Spearman (average ranks), accuracy, F1."""
from __future__ import annotations

import numpy as np


def pearson(x, y) -> float:
  """Pearson r of two 1-D arrays; nan when either is constant."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  xc, yc = x - x.mean(), y - y.mean()
  denom = np.sqrt((xc * xc).sum() * (yc * yc).sum())
  return float((xc * yc).sum() / denom) if denom > 0 else float('nan')


def rankdata(x) -> np.ndarray:
  """1-based ranks with ties given their average rank (scipy.stats.rankdata 'average')."""
  x = np.asarray(x)
  order = np.argsort(x, kind='mergesort')
  sorted_x = x[order]
  # Boundaries of runs of equal values; each run gets the mean of its positions.
  starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
  run_id = np.cumsum(starts) - 1
  first = np.flatnonzero(starts)
  last = np.r_[first[1:], len(x)] - 1
  avg = (first + last) / 2.0 + 1.0
  ranks = np.empty(len(x), np.float64)
  ranks[order] = avg[run_id]
  return ranks


def spearman(x, y) -> float:
  return pearson(rankdata(x), rankdata(y))


def accuracy(pred, label) -> float:
  return float(np.mean(np.asarray(pred) == np.asarray(label)))


def f1(pred, label, positive: int = 1) -> float:
  """Binary F1 of the positive class (0 when there are no true or predicted positives)."""
  pred, label = np.asarray(pred) == positive, np.asarray(label) == positive
  tp = float(np.sum(pred & label))
  denom = float(pred.sum() + label.sum())
  return 2 * tp / denom if denom else 0.0


def regression_metrics(pred, label) -> dict:
  return {'pearson': pearson(pred, label), 'spearman': spearman(pred, label)}


def classification_metrics(pred, label) -> dict:
  return {'accuracy': accuracy(pred, label), 'f1': f1(pred, label)}
