"""Hybrid retrieval by reciprocal-rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009).

    RRF(d) = sum_r w_r / (rrf_k + rank_r(d)),   rank starting at 1, rrf_k = 60 (the paper's).

Each component ranks `depth` passages (default 100); a passage missing from a component's
list contributes nothing from it. Ties in the fused score are broken by the best single
rank, then by the lower corpus row, so fusion is deterministic. Weights default to 1.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import retriever as retriever_lib


def rrf_fuse(rankings: Sequence[np.ndarray], k: int, rrf_k: float = 60.0,
             weights: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Fuses per-method rankings of the same queries.

  Args:
    rankings: each [Q, depth_m] int corpus rows, best first, -1 for padding.
    k: results per query.
    rrf_k: the RRF constant (60 in Cormack et al.).
    weights: one per ranking (default all 1).
  Returns:
    rows [Q, k] int32 (-1 padded when fewer than k distinct rows), scores [Q, k] float32.
  """
  if not rankings:
    raise ValueError('rrf_fuse needs at least one ranking')
  weights = [1.0] * len(rankings) if weights is None else list(weights)
  if len(weights) != len(rankings):
    raise ValueError(f'{len(weights)} weights for {len(rankings)} rankings')
  num_queries = len(rankings[0])
  out_rows, out_scores = retriever_lib.empty_ranking(num_queries, k)
  for q in range(num_queries):
    score: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking, w in zip(rankings, weights):
      for rank, row in enumerate(np.asarray(ranking[q]).tolist(), start=1):
        if row < 0:
          continue
        score[row] = score.get(row, 0.0) + w / (rrf_k + rank)
        best[row] = min(best.get(row, rank), rank)
    top = sorted(score, key=lambda r: (-score[r], best[r], r))[:k]
    out_rows[q, :len(top)] = top
    out_scores[q, :len(top)] = [score[r] for r in top]
  return out_rows, out_scores


class HybridRetriever:
  """RRF over component retrievers that share one corpus."""

  def __init__(self, retrievers: Sequence, depth: int = 100, rrf_k: float = 60.0,
               weights: Sequence[float] | None = None):
    if not retrievers:
      raise ValueError('HybridRetriever needs at least one component retriever')
    self.corpus = retrievers[0].corpus
    if any(r.corpus is not self.corpus for r in retrievers):
      raise ValueError('hybrid components must share one corpus')
    self.retrievers, self.depth, self.rrf_k = list(retrievers), int(depth), float(rrf_k)
    self.weights = None if weights is None else [float(w) for w in weights]

  def rank(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    k = retriever_lib.check_k(k, len(self.corpus))
    depth = max(k, min(self.depth, len(self.corpus)))
    rankings = [r.rank(queries, depth)[0] for r in self.retrievers]
    return rrf_fuse(rankings, k, self.rrf_k, self.weights)

  def search(self, queries: Sequence[str], k: int) -> list[list[corpus_lib.Passage]]:
    return retriever_lib.to_passages(self.corpus, self.rank(queries, k)[0])


@retriever_lib.register('hybrid')
def build(config, corpus, directory, mesh, get):
  del corpus, directory, mesh
  c = config.hybrid
  return HybridRetriever([get(name) for name in c.components], depth=c.depth, rrf_k=c.rrf_k,
                         weights=list(c.weights) if c.weights else None)
