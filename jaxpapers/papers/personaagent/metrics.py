"""LaMP's metric rules (MAE / RMSE, accuracy / macro F1) with percentile bootstrap intervals.

Rules follow LaMP's evaluator (github LaMP-Benchmark/LaMP `eval/evaluation.py`,
`create_metric_mae_rmse` and `create_metric_f1_accuracy`):
  * Outputs are `str(x).strip()`-ed, predictions and golds alike.
  * LaMP-3: a prediction is `float(text)`; when that fails it counts as whichever of 1 or 5
    is farther from the gold (`abs(1 - y) > abs(5 - y)` -> 1, else 5, so a gold of 3 counts
    as 5). LaMP keeps numeric predictions outside [1, 5] as they are (`out_of_range='keep'`,
    our default so numbers match LaMP's); `'farthest'` treats them like unparsable text.
    Choice: "nan" / "inf" (which float() accepts) count as unparsable, so a metric is never
    NaN. `parse='lenient'` takes the first number in the text instead (for chatty models:
    "Rating: 4"); either way a failure is counted (`parse_failures`), never raised.
  * LaMP-2: outputs map to their index in the label list, anything else to -1, which is
    wrong for a prediction. Accuracy is the fraction of exact matches; F1 is macro over the
    whole label list (sklearn's `average='macro', labels=range(L)`), a label with no gold
    and no prediction scoring 0 (sklearn's zero_division default). Golds must be in the
    list (LaMP would map a bad gold to -1 and count a -1 prediction as a hit; we raise).

Intervals: percentile bootstrap. Resampling units are users by default (queries of one user
are not independent); each draw gives every query the multiplicity of its unit, and every
metric is a weighted statistic, so B draws cost one [B, N] matrix product.
"""
from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import numpy as np

from jaxpapers.core import stats

# LaMP-2M's 15 movie tags (github LaMP-Benchmark/LaMP eval/evaluation.py `_get_labels`).
LAMP_2_MOVIE_TAGS = ('sci-fi', 'based on a book', 'comedy', 'action', 'twist ending',
                     'dystopia', 'dark comedy', 'classic', 'psychology', 'fantasy', 'romance',
                     'thought-provoking', 'social commentary', 'violence', 'true story')
PARSE_MODES = ('lamp', 'lenient')
OUT_OF_RANGE = ('keep', 'farthest')
_NUMBER = re.compile(r'[-+]?(?:\d+\.?\d*|\.\d+)')


def parse_rating(text, mode: str = 'lamp') -> float | None:
  """A finite rating from a model output, or None; total (any input, never raises)."""
  try:
    s = str(text).strip()
  except Exception:  # pylint: disable=broad-except   a __str__ that raises is garbage too
    return None
  if mode == 'lenient':
    m = _NUMBER.search(s)
    s = m.group(0) if m else ''
  elif mode != 'lamp':
    raise ValueError(f'parse mode {mode!r} unknown; valid: {PARSE_MODES}')
  try:
    value = float(s)
  except (ValueError, OverflowError):
    return None
  return value if math.isfinite(value) else None


def farthest_rating(gold: float) -> float:
  """LaMP's stand-in for an unparsable prediction: 1 or 5, whichever is farther (tie: 5)."""
  return 1.0 if abs(1 - gold) > abs(5 - gold) else 5.0


def rating_values(preds: Sequence, golds: Sequence, parse: str = 'lamp',
                  out_of_range: str = 'keep') -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(predictions [N], golds [N], failed [N] bool) under LaMP's substitution rule."""
  if out_of_range not in OUT_OF_RANGE:
    raise ValueError(f'out_of_range {out_of_range!r} unknown; valid: {OUT_OF_RANGE}')
  if len(preds) != len(golds):
    raise ValueError(f'{len(preds)} predictions for {len(golds)} golds')
  y = np.zeros(len(golds))
  for n, g in enumerate(golds):
    value = parse_rating(g)
    if value is None:
      raise ValueError(f'gold {n} ({g!r}) is not a number')
    y[n] = value
  p = np.zeros(len(preds))
  failed = np.zeros(len(preds), bool)
  for n, text in enumerate(preds):
    value = parse_rating(text, parse)
    if value is not None and out_of_range == 'farthest' and not 1 <= value <= 5:
      value = None
    failed[n] = value is None
    p[n] = farthest_rating(y[n]) if value is None else value
  return p, y, failed


def label_indices(outputs: Sequence, labels: Sequence[str]) -> np.ndarray:
  """[N] index of each stripped output in `labels`, -1 when it is not a label."""
  index = {label: i for i, label in enumerate(labels)}
  out = np.full(len(outputs), -1, np.int64)
  for n, text in enumerate(outputs):
    try:
      out[n] = index.get(str(text).strip(), -1)
    except Exception:  # pylint: disable=broad-except
      out[n] = -1
  return out


# ----------------------------------------------------------------------------- weighted stats


def weighted_rating_stats(pred: np.ndarray, gold: np.ndarray, w: np.ndarray
                          ) -> dict[str, np.ndarray]:
  """MAE and RMSE under query weights.

  Args:
    pred, gold: [N] ratings.
    w: [B, N] non-negative weights (ones for the point estimate).
  Returns:
    {'mae': [B], 'rmse': [B]}.
  """
  err = pred - gold
  total = w.sum(axis=1)
  return {'mae': (w @ np.abs(err)) / total, 'rmse': np.sqrt((w @ err ** 2) / total)}


def weighted_tag_stats(pred: np.ndarray, gold: np.ndarray, num_labels: int, w: np.ndarray
                       ) -> dict[str, np.ndarray]:
  """Accuracy and macro F1 over all `num_labels` labels under query weights.

  Args:
    pred: [N] label index, -1 outside the list (always wrong).
    gold: [N] label index in [0, num_labels).
    num_labels: L.
    w: [B, N] weights.
  Returns:
    {'accuracy': [B], 'f1': [B]}.
  """
  hit = (pred == gold).astype(np.float64)
  onehot = lambda x: (x[:, None] == np.arange(num_labels)[None, :]).astype(np.float64)  # noqa: E731
  p1, g1 = onehot(pred), onehot(gold)
  tp = w @ (p1 * g1)                      # [B, L]
  fp = w @ p1 - tp
  fn = w @ g1 - tp
  den = 2 * tp + fp + fn
  f1 = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
  return {'accuracy': (w @ hit) / w.sum(axis=1), 'f1': f1.mean(axis=1)}


def _with_intervals(stats_fn, n: int, groups, bootstrap: int, seed: int, level: float) -> dict:
  point = {k: float(v[0]) for k, v in stats_fn(np.ones((1, n))).items()}
  if bootstrap <= 0 or n == 0:
    return {**point, **{f'{k}_ci': None for k in point}}
  draws = stats_fn(stats.bootstrap_weights(groups, bootstrap, seed))
  return {**point, **{f'{k}_ci': stats.percentile_interval(draws[k], level) for k in point}}


# ----------------------------------------------------------------------------- evaluation


def evaluate_rating(preds: Sequence, golds: Sequence, groups: Sequence | None = None,
                    bootstrap: int = 1000, seed: int = 0, level: float = 0.95,
                    parse: str = 'lamp', out_of_range: str = 'keep') -> dict:
  """mae, rmse, their intervals, n and parse_failures (LaMP-3 rules)."""
  p, y, failed = rating_values(preds, golds, parse, out_of_range)
  groups = np.arange(len(y)) if groups is None else groups
  out = _with_intervals(lambda w: weighted_rating_stats(p, y, w), len(y), groups, bootstrap,
                        seed, level)
  return {**out, 'n': len(y), 'parse_failures': int(failed.sum())}


def evaluate_tagging(preds: Sequence, golds: Sequence, labels: Sequence[str],
                     groups: Sequence | None = None, bootstrap: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict:
  """accuracy, f1 (macro), intervals, n and invalid (predictions outside the list)."""
  gold = label_indices(golds, labels)
  if (gold < 0).any():
    bad = golds[int(np.flatnonzero(gold < 0)[0])]
    raise ValueError(f'gold label {bad!r} is not in the label list {list(labels)}')
  pred = label_indices(preds, labels)
  groups = np.arange(len(gold)) if groups is None else groups
  out = _with_intervals(lambda w: weighted_tag_stats(pred, gold, len(labels), w), len(gold),
                        groups, bootstrap, seed, level)
  return {**out, 'n': len(gold), 'invalid': int((pred < 0).sum())}


def align(golds: Mapping[str, str], preds: Mapping[str, str]) -> tuple[list, list, list[str]]:
  """(predictions, golds, ids) in gold order; ids must match exactly, as in LaMP's evaluator."""
  if set(golds) != set(preds):
    missing, extra = sorted(set(golds) - set(preds)), sorted(set(preds) - set(golds))
    raise ValueError(f'prediction ids do not match gold ids: missing {missing[:5]}, '
                     f'extra {extra[:5]}')
  ids = list(golds)
  return [preds[i] for i in ids], [golds[i] for i in ids], ids
