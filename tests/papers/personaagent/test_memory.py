"""Episodic memory top-K equals brute force; recency and time masks; BM25 over profiles."""
import numpy as np
import pytest

from jaxpapers.papers.personaagent import memory as memory_lib

WORDS = ('drama comedy action war sci-fi romance horror western crime musical mystery '
         'noir fantasy animation children documentary thriller adventure').split()


def _records(n, seed):
  rng = np.random.default_rng(seed)
  return [memory_lib.Record(query=' '.join(rng.choice(WORDS, 4)), response=str(i % 5 + 1),
                            time=int(rng.integers(0, 50)), id=str(i)) for i in range(n)]


@pytest.fixture(scope='module')
def embed():
  return memory_lib.hashing_embed_fn(64)


@pytest.mark.parametrize('weight', [0.0, 0.3, 1.0])
@pytest.mark.parametrize('n, k', [(37, 5), (3, 8), (16, 16)])
def test_top_k_equals_brute_force(embed, weight, n, k):
  mem = memory_lib.EpisodicMemory(embed, recency_weight=weight, recency_half_life=7.0)
  mem.add('u', _records(n, seed=n))
  queries = [' '.join(q) for q in np.random.default_rng(1).choice(WORDS, (6, 3))]
  before = [10, 25, 50, 50, 0, 40]
  rows, scores = mem.top_k_rows('u', queries, k, before=before)
  brute = mem.scores('u', queries, before=before)
  for q in range(len(queries)):
    visible = np.isfinite(brute[q]).sum()
    want = np.argsort(-brute[q], kind='stable')[:min(k, visible)]
    got = rows[q][rows[q] >= 0]
    np.testing.assert_allclose(scores[q][:len(got)], brute[q][want], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got, want)     # ties: lower row first in both


def test_before_hides_future_records_and_recency_one_is_newest(embed):
  recs = [memory_lib.Record(f'movie {i}', '3', time=t, id=str(i))
          for i, t in enumerate([5, 1, 9, 3, 7])]
  mem = memory_lib.EpisodicMemory(embed, recency_weight=1.0, recency_half_life=1.0)
  mem.add('u', recs)
  assert [r.id for r in mem.top_k('u', ['anything'], 3)[0]] == ['2', '4', '0']
  assert [r.id for r in mem.top_k('u', ['anything'], 3, before=[4])[0]] == ['3', '1']


def test_embeddings_computed_once_per_text():
  calls = []
  base = memory_lib.hashing_embed_fn(16)

  def counting(texts):
    calls.extend(texts)
    return base(texts)
  mem = memory_lib.EpisodicMemory(counting)
  mem.add('a', [memory_lib.Record('x y', '1', 0), memory_lib.Record('x y', '2', 1)])
  mem.add('b', [memory_lib.Record('x y', '3', 0)])
  mem.top_k('a', ['x y'], 1)
  assert calls == ['x y']


def test_bm25_ranks_profile_by_text_after_marker():
  profile = [{'text': 'Alien (1979). Genres: horror, sci-fi.', 'score': '5', 'id': '1'},
             {'text': 'Casablanca (1942). Genres: drama, romance, war.', 'score': '4', 'id': '2'},
             {'text': 'Toy Story (1995). Genres: animation, comedy.', 'score': '3', 'id': '3'}]
  inputs = ['What is the score ... movie: Aliens (1986). Genres: action, sci-fi, horror.',
            'What is the score ... review: a romance and war drama']
  rows = memory_lib.bm25_rank(profile, inputs, 'LaMP_3', k=2)
  assert rows[0][0] == 0 and rows[1][0] == 1
  assert memory_lib.query_text('x tags: [a] description: Heat.', 'LaMP_2') == 'Heat.'


def test_unknown_user_has_no_records(embed):
  mem = memory_lib.EpisodicMemory(embed)
  assert mem.top_k('nobody', ['a query'], 3) == [[]]
  assert mem.scores('nobody', ['a query']).shape == (1, 0)
