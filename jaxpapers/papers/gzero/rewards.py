"""The Proposer's reward: Hint-δ minus a duplication penalty and a hint-length penalty.

  reward(q, h) = max(δ, delta_floor) − cluster_share(q) − λ · max(0, |h| − L) / 100
  invalid output (no / empty / placeholder tags): invalid_reward − cluster_share

as the reference's phase1.py (δ floor −5, λ 0.03 per 100 characters over L = 200).
cluster_share(q) is the fraction of the step's questions in q's cluster: questions are
clustered agglomeratively (average linkage) on the distance 1 − sentence-BLEU, merging
while the distance is below 0.5. Sentence BLEU is the reference's NLTK
`sentence_bleu(..., smoothing_function=SmoothingFunction().method1)` on whitespace tokens:
n-gram counts from sacrebleu, a zero count replaced by 0.1 / max(total, 1) (Chen & Cherry's
method 1), 0 without a unigram match. So short strings never match themselves well: a
one-word string scores 0.18 against itself, which is why invalid outputs, all scored under
one key as in the reference, still count as unique questions.
"""
from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import sacrebleu
from scipy.cluster import hierarchy

INVALID_KEY = '__INVALID__'
# Only sacrebleu's n-gram counts are used; it warns about sentence BLEU without effective
# order on every call.
logging.getLogger('sacrebleu').setLevel(logging.ERROR)
_BLEU = sacrebleu.BLEU(tokenize='none', smooth_method='floor', smooth_value=0.1,
                       effective_order=False)


@dataclasses.dataclass(frozen=True)
class RewardConfig:
  delta_floor: float = -5.0
  hint_length_target: int = 200        # characters
  hint_length_lambda: float = 0.03     # per 100 characters over the target
  bleu_threshold: float = 0.5          # clusters merge while 1 - BLEU is below this
  duplication_penalty: bool = True     # off: the no-duplication-penalty ablation
  invalid_reward: float = -1.0


def sentence_bleu(hypothesis: str, reference: str) -> float:
  """Sentence BLEU in [0, 1] of whitespace-split strings, NLTK method-1 smoothing."""
  stats = _BLEU.sentence_score(hypothesis, [reference])
  if not stats.counts[0]:
    return 0.0
  logs = [math.log(c / t) if c else math.log(0.1 / max(t, 1))
          for c, t in zip(stats.counts, stats.totals)]
  return min(stats.bp * math.exp(sum(logs) / len(logs)), 1.0)


def bleu_distances(sentences: list[str]) -> np.ndarray:
  """[N, N] symmetric 1 - BLEU (row i scored as hypothesis against sentence j), zero diagonal."""
  n = len(sentences)
  dist = np.zeros((n, n))
  for i in range(n):
    for j in range(i + 1, n):
      dist[i, j] = dist[j, i] = 1.0 - sentence_bleu(sentences[i], sentences[j])
  return dist


def cluster_share(questions: list[str], threshold: float = 0.5) -> list[float]:
  """Per question, the fraction of `questions` in its BLEU cluster (1/N when unique)."""
  n = len(questions)
  if n <= 1:
    return [1.0] * n
  condensed = bleu_distances(questions)[np.triu_indices(n, k=1)]
  tree = hierarchy.linkage(condensed, method='average')
  # fcluster keeps merges at distance <= t; the reference (sklearn distance_threshold) keeps
  # those strictly below it.
  labels = hierarchy.fcluster(tree, t=np.nextafter(threshold, 0.0), criterion='distance')
  sizes = np.bincount(labels)
  return [float(sizes[label]) / n for label in labels]


def hint_length_penalty(hint: str, cfg: RewardConfig = RewardConfig()) -> float:
  over = max(0, len(hint) - cfg.hint_length_target)
  return cfg.hint_length_lambda * over / 100.0


def proposer_rewards(pairs: list[tuple[str, str]], deltas: list[float | None],
                     cfg: RewardConfig = RewardConfig()) -> tuple[np.ndarray, dict]:
  """Rewards of one step's Proposer outputs.

  Args:
    pairs: (question, hint) per output, ('', '') when invalid (prompts.extract_qh).
    deltas: Hint-δ per output (None for invalid ones).
  Returns:
    (rewards [N] float32, per-output components: delta (floored), duplication, length, valid).
  """
  valid = np.array([bool(q and h) for q, h in pairs])
  keys = [q if ok else INVALID_KEY for (q, _), ok in zip(pairs, valid)]
  share = (np.array(cluster_share(keys, cfg.bleu_threshold)) if cfg.duplication_penalty
           else np.zeros(len(pairs)))
  delta = np.array([max(d, cfg.delta_floor) if ok else 0.0 for d, ok in zip(deltas, valid)])
  length = np.array([hint_length_penalty(h, cfg) if ok else 0.0
                     for (_, h), ok in zip(pairs, valid)])
  rewards = np.where(valid, delta - share - length, cfg.invalid_reward - share)
  return rewards.astype(np.float32), {'delta': delta, 'duplication': share, 'length': length,
                                      'valid': valid.astype(np.float32)}
