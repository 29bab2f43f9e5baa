"""BM25 retriever: ranking, bad input, persistence."""
import numpy as np
import pytest

from jaxpapers.core.retrieval import bm25


@pytest.fixture()
def retriever(toy_corpus):
  return bm25.BM25Retriever(toy_corpus)


def test_bm25_ranks_matching_passage_first(retriever):
  hits = retriever.search(['capital of France', 'which river flows through Tulsa'], 3)
  assert hits[0][0].id == 'paris'
  assert hits[1][0].id == 'tulsa'


def test_bm25_empty_or_garbage_queries_give_empty_results(retriever):
  hits = retriever.search(['', '   ', None, 'the of and', 'zzqx unknownword'], 5)
  assert hits == [[], [], [], [], []]


def test_bm25_k_larger_than_corpus_is_clamped(retriever, toy_corpus):
  rows, scores = retriever.rank(['capital city'], 1000)
  assert rows.shape == (1, len(toy_corpus))
  hits = retriever.search(['capital city'], 1000)[0]
  assert 0 < len(hits) <= len(toy_corpus)
  assert np.all(np.diff(scores[0][rows[0] >= 0]) <= 0)


@pytest.mark.parametrize('k', [0, -1, 2.5, None, True])
def test_bm25_bad_k_raises(retriever, k):
  with pytest.raises(ValueError, match='k must be an int >= 1'):
    retriever.search(['capital'], k)


def test_bm25_bare_string_queries_raise_type_error(retriever):
  with pytest.raises(TypeError, match='list of strings'):
    retriever.search('capital', 3)


def test_bm25_no_queries_give_no_results(retriever):
  assert retriever.search([], 3) == []


def test_bm25_persisted_index_reopens_with_same_results(tmp_path, toy_corpus):
  first = bm25.BM25Retriever(toy_corpus, directory=tmp_path / 'bm25')
  again = bm25.BM25Retriever(toy_corpus, directory=tmp_path / 'bm25')
  assert not first.reopened and again.reopened
  queries = ['capital of Italy', 'string instrument']
  np.testing.assert_array_equal(first.rank(queries, 4)[0], again.rank(queries, 4)[0])
  other = bm25.BM25Retriever(toy_corpus, k1=1.2, directory=tmp_path / 'bm25')
  assert not other.reopened
