"""Reciprocal-rank fusion on hand-made rankings, and the hybrid retriever."""
import numpy as np
import pytest

from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import hybrid
from jaxpapers.core.retrieval import retriever as retriever_lib


def test_rrf_fuse_hand_made_rankings():
  a = np.array([[0, 1, 2]])
  b = np.array([[2, 0, 3]])
  rows, scores = hybrid.rrf_fuse([a, b], k=4, rrf_k=60)
  # 0: 1/61 + 1/62; 2: 1/63 + 1/61; 1: 1/62; 3: 1/63
  assert rows.tolist() == [[0, 2, 1, 3]]
  np.testing.assert_allclose(scores[0], [1 / 61 + 1 / 62, 1 / 61 + 1 / 63, 1 / 62, 1 / 63],
                             rtol=1e-6)


def test_rrf_fuse_padding_ties_and_short_results():
  a = np.array([[5, -1, -1], [-1, -1, -1]])
  b = np.array([[7, -1, -1], [-1, -1, -1]])
  rows, scores = hybrid.rrf_fuse([a, b], k=3, rrf_k=1)
  # 5 and 7 tie (1/2 each, best rank 1): lower row first; then padding.
  assert rows.tolist() == [[5, 7, -1], [-1, -1, -1]]
  assert np.isneginf(scores[0, 2]) and np.all(np.isneginf(scores[1]))


def test_rrf_fuse_weights_change_order():
  a, b = np.array([[0, 1]]), np.array([[1, 0]])
  assert hybrid.rrf_fuse([a, b], k=2, weights=[2.0, 1.0])[0].tolist() == [[0, 1]]
  assert hybrid.rrf_fuse([a, b], k=2, weights=[1.0, 2.0])[0].tolist() == [[1, 0]]
  with pytest.raises(ValueError, match='2 weights for 1 rankings'):
    hybrid.rrf_fuse([a], k=2, weights=[1.0, 1.0])


class _Fixed:
  """A retriever returning fixed rows for every query."""

  def __init__(self, corpus, rows):
    self.corpus, self.rows = corpus, rows

  def rank(self, queries, k):
    return retriever_lib.rank_valid(queries, k, len(self.corpus), lambda qs, kk: (
        np.array([self.rows[:kk]] * len(qs), np.int32), np.zeros((len(qs), kk), np.float32)))


def test_hybrid_retriever_fuses_components_and_keeps_empty_queries(toy_corpus):
  h = hybrid.HybridRetriever([_Fixed(toy_corpus, [0, 1, 2, 3]),
                              _Fixed(toy_corpus, [3, 0, 9, 8])], depth=4)
  hits = h.search(['q', ''], 3)
  assert [p.id for p in hits[0]] == [toy_corpus[0].id, toy_corpus[3].id, toy_corpus[1].id]
  assert hits[1] == []


def test_hybrid_components_must_share_corpus(toy_corpus):
  other = corpus_lib.Corpus([corpus_lib.Passage('x', 'X', 'y')])
  with pytest.raises(ValueError, match='share one corpus'):
    hybrid.HybridRetriever([_Fixed(toy_corpus, [0]), _Fixed(other, [0])])
