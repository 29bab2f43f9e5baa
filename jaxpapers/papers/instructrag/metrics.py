"""InstructRAG's accuracy, exact match and percentile-bootstrap intervals.

accuracy  src/metrics.py `exact_presence`: 1 when any normalised gold answer is a substring of
          the normalised generation (SQuAD normalisation: lower case, punctuation and
          articles removed, spaces squeezed). As in the reference, a gold answer that
          normalises to '' is found in every generation (core's `substring_accuracy` drops
          such answers instead), and an empty generation matches no non-empty gold.
em        SQuAD exact match of the whole generation against any gold (core qa_metrics); a
          rationale is a paragraph, so EM is only meaningful for answer-only methods.
Interval  95% percentile bootstrap over questions of the mean (FT: of the per-question mean
          over seeds).
Paired    `paired_difference`: method A's accuracy minus B's on the same test questions,
          with a bootstrap interval of the mean per-question difference (tighter than
          comparing two separate intervals, since the questions' difficulty cancels).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from jaxpapers.core import qa_metrics
from jaxpapers.core import stats


def accuracy(generation: str, answers: Sequence[str]) -> bool:
  context = qa_metrics.normalize_answer(generation)
  return any(qa_metrics.normalize_answer(a) in context for a in answers)


def exact_match(generation: str, answers: Sequence[str]) -> bool:
  return bool(qa_metrics.exact_match(generation, list(answers)))


def bootstrap_ci(values: Sequence[float], draws: int = 1000, seed: int = 0,
                 level: float = 0.95) -> list[float]:
  """[lo, hi] percentile interval of the mean of `values` over `draws` resamples."""
  x = np.asarray(values, np.float64)
  if x.size == 0:
    return [0.0, 0.0]
  idx = np.random.default_rng(seed).integers(0, x.size, (draws, x.size))
  return stats.percentile_interval(x[idx].mean(axis=1), level)


def _correct(row: dict) -> bool:
  return accuracy(row['output'], row['answers'])


def _matrix(per_seed: Sequence[Sequence[dict]], score) -> np.ndarray:
  """[seeds, questions] of `score(row)`."""
  return np.array([[score(r) for r in rows] for rows in per_seed], np.float64)


def summarize(per_seed: Sequence[Sequence[dict]], draws: int = 1000, seed: int = 0
              ) -> dict[str, Any]:
  """Accuracy (mean over seeds), its interval, EM, for output rows {answers, output} of one
  or more seeds over the same questions."""
  acc = _matrix(per_seed, _correct)
  em = _matrix(per_seed, lambda r: exact_match(r['output'], r['answers']))
  chars = _matrix(per_seed, lambda r: len(r['output']))
  out = {'accuracy': float(acc.mean()), 'accuracy_ci': bootstrap_ci(acc.mean(axis=0), draws,
                                                                    seed),
         'em': float(em.mean()), 'n': int(acc.shape[1]),
         'output_chars': float(chars.mean())}   # the substring metric favours long outputs
  if len(per_seed) > 1:
    out['accuracy_seeds'] = [float(a) for a in acc.mean(axis=1)]
    out['accuracy_std'] = float(acc.mean(axis=1).std())
  return out


def paired_difference(per_seed_a: Sequence[Sequence[dict]], per_seed_b: Sequence[Sequence[dict]],
                      draws: int = 1000, seed: int = 0) -> dict[str, Any]:
  """Accuracy of A minus B (each a mean over its seeds) on the same questions, with a
  bootstrap interval over questions and the counts of questions only A / only B gets."""
  ids_a = [r.get('id') for r in per_seed_a[0]]
  if ids_a != [r.get('id') for r in per_seed_b[0]]:
    raise ValueError('paired_difference: the two methods answered different questions')
  a, b = _matrix(per_seed_a, _correct).mean(axis=0), _matrix(per_seed_b, _correct).mean(axis=0)
  right_a, right_b = a > 0.5, b > 0.5      # right on most seeds
  return {'diff': float((a - b).mean()), 'diff_ci': bootstrap_ci(a - b, draws, seed),
          'only_a': int((right_a & ~right_b).sum()), 'only_b': int((right_b & ~right_a).sum()),
          'n': int(a.size)}
