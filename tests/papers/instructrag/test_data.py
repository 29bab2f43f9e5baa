"""Questions split by hash, retrieved and distractor documents (scores descending), answer
recall, and the cached document files."""
import types

import pytest

from jaxpapers.core.retrieval import bm25
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.papers.instructrag import data
from jaxpapers.papers.instructrag import prompts


def test_split_is_by_question_disjoint_and_stable():
  train = data.questions('nq', 'train', 0, 0.5)
  test = data.questions('nq', 'test', 0, 0.5)
  assert len(train) + len(test) == 3610 and abs(len(train) - len(test)) < 200
  assert not {r['question'] for r in train} & {r['question'] for r in test}
  assert data.questions('nq', 'test', 5, 0.5) == test[:5]
  hp = data.questions('hotpotqa', 'test', 0, 0.5)
  assert 120 < len(hp) < 180 and len(hp[0]['context']) == 10 and len(hp[0]['answers']) == 1
  assert data.is_test('Who wrote  Hamlet', 0.5) == data.is_test('who wrote hamlet', 0.5)
  with pytest.raises(ValueError, match="dataset 'popqa' unknown"):
    data.questions('popqa', 'test', 1, 0.5)


@pytest.fixture(scope='module')
def hotpot_bm25():
  return bm25.BM25Retriever(data.hotpotqa_corpus())


def test_retrieved_documents_are_best_first_and_get_reversed(hotpot_bm25):
  rows = data.questions('hotpotqa', 'test', 6, 0.5)
  ctxs = data.retrieved_ctxs(hotpot_bm25, rows, 5, batch=4)
  assert len(ctxs) == 6 and all(len(c) == 5 for c in ctxs)
  for c in ctxs:
    scores = [d['score'] for d in c]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    assert prompts.ordered_ctxs(c, 5)[-1] == c[0]          # the best document comes last
  short = data.retrieved_ctxs(hotpot_bm25, rows[:1], 2, max_words=3)
  assert all(len(d['text'].split()) <= 3 for d in short[0])


def test_distractors_are_the_questions_own_paragraphs_ranked(hotpot_bm25):
  rows = data.questions('hotpotqa', 'test', 4, 0.5)
  for row, ctxs in zip(rows, data.distractor_ctxs(hotpot_bm25, rows, 5)):
    own = {t: text for t, text in row['context']}
    assert len(ctxs) == 5 and all(own[c['title']] == c['text'] for c in ctxs)
    scores = [c['score'] for c in ctxs]
    assert scores == sorted(scores, reverse=True)
    assert scores[-1] >= 0.0 and len({c['title'] for c in ctxs}) == 5


def test_answer_recall_reads_titles_and_texts():
  rows = [{'answers': ['Paris'], 'ctxs': [{'title': 'x', 'text': 'y'},
                                           {'title': 'Paris', 'text': 'z'}]},
          {'answers': ['Rome'], 'ctxs': [{'title': 'a', 'text': 'b'}] * 5 +
                                         [{'title': 'Rome', 'text': ''}]}]
  assert data.answer_recall(rows, 5) == 0.5
  assert data.answer_recall(rows, 6) == 1.0
  assert data.answer_recall([], 5) == 0.0


def test_prepare_writes_once_and_rereads(tmp_path):
  passages = [corpus_lib.Passage(str(i), f'title {i}', f'when was the moon landing {i}')
              for i in range(8)]
  retriever = bm25.BM25Retriever(corpus_lib.Corpus(passages), stemmer=None)
  config = types.SimpleNamespace(data=types.SimpleNamespace(
      docs='bm25', num_train=3, num_test=2, test_fraction=0.5, n_docs=2, max_doc_words=0))
  rows = data.prepare(config, 'nq', 'test', tmp_path, lambda: retriever)
  assert len(rows) == 2 and set(rows[0]) == {'id', 'question', 'answers', 'ctxs'}
  assert (tmp_path / 'docs' / 'nq-bm25-test.jsonl').exists()
  again = data.prepare(config, 'nq', 'test', tmp_path, lambda: 1 / 0)   # not rebuilt
  assert again == rows
  config.data.docs = 'distractors'
  with pytest.raises(ValueError, match="'distractors' exist for hotpotqa only"):
    data.prepare(config, 'nq', 'train', tmp_path, lambda: retriever)
