"""Corpus builders, persistence and cached arrays."""
import gzip
import json

import numpy as np
import pytest

from jaxpapers.core import paths
from jaxpapers.core.retrieval import corpus as corpus_lib


def test_corpus_empty_raises_clear_error():
  with pytest.raises(ValueError, match='empty'):
    corpus_lib.Corpus([])


def test_corpus_duplicate_ids_raise_naming_id():
  p = corpus_lib.Passage('a', 't', 'x')
  with pytest.raises(ValueError, match="duplicate passage id 'a'"):
    corpus_lib.Corpus([p, p])


def test_from_jsonl_non_utf8_line_raises_naming_file_and_line(tmp_path):
  path = tmp_path / 'c.jsonl'
  path.write_bytes(b'{"id": "1", "title": "A", "text": "ok"}\n'
                   b'{"id": "2", "title": "B", "text": "bad \xff\xfe bytes"}\n')
  with pytest.raises(ValueError, match=r'c\.jsonl:2: not a valid UTF-8'):
    corpus_lib.from_jsonl(path)


def test_from_jsonl_empty_file_raises_empty(tmp_path):
  path = tmp_path / 'empty.jsonl'
  path.write_text('\n')
  with pytest.raises(ValueError, match='empty'):
    corpus_lib.from_jsonl(path)


def test_from_jsonl_non_string_text_raises_naming_line(tmp_path):
  path = tmp_path / 'c.jsonl'
  path.write_text('{"id": "1", "title": "A", "text": 3}\n')
  with pytest.raises(ValueError, match=r'c\.jsonl:1: .*must be strings'):
    corpus_lib.from_jsonl(path)


def test_from_jsonl_gz_contents_and_missing_ids(tmp_path):
  path = tmp_path / 'c.jsonl.gz'
  rows = [{'contents': 'Paris\nCapital of France.'}, {'title': 'Rome', 'text': ' Italy. '}]
  with gzip.open(path, 'wt') as f:
    f.write(''.join(json.dumps(r) + '\n' for r in rows))
  corpus = corpus_lib.from_jsonl(path)
  assert corpus.ids == ['1', '2']
  assert corpus[0] == corpus_lib.Passage('1', 'Paris', 'Capital of France.')
  assert corpus[1].contents == 'Rome Italy.'


def test_hotpotqa_pools_context_and_golds_are_in_corpus():
  corpus, examples = corpus_lib.hotpotqa(paths.data_file('hotpotqa/dev_sample300.jsonl.gz'),
                                         limit=20)
  assert len(examples) == 20 and 150 <= len(corpus) <= 200
  for ex in examples:
    assert len(ex.gold_ids) == 2 and all(g in corpus for g in ex.gold_ids)
    assert ex.answers and ex.question
  assert examples[0].gold_ids == ('Tinted Windows (album)', 'Tinted Windows (band)')


def test_corpus_save_load_round_trip_and_tamper_detected(tmp_path, toy_corpus):
  toy_corpus.save(tmp_path)
  again = corpus_lib.load(tmp_path)
  assert again.passages == toy_corpus.passages
  assert again.fingerprint() == toy_corpus.fingerprint()
  text = (tmp_path / corpus_lib.PASSAGES_FILE).read_text().replace('Paris', 'Lyon')
  (tmp_path / corpus_lib.PASSAGES_FILE).write_text(text)
  with pytest.raises(ValueError, match='fingerprint'):
    corpus_lib.load(tmp_path)


def test_cached_array_reopens_memmapped_without_rebuilding(tmp_path):
  calls = []

  def build():
    calls.append(1)
    return np.arange(12, dtype=np.float32).reshape(3, 4)
  first, reopened = corpus_lib.cached_array(tmp_path, {'a': 1, 'b': (1, 2)}, build)
  assert not reopened and len(calls) == 1
  second, reopened = corpus_lib.cached_array(tmp_path, {'a': 1, 'b': (1, 2)}, build)
  assert reopened and len(calls) == 1 and isinstance(second, np.memmap)
  np.testing.assert_array_equal(first, second)
  _, reopened = corpus_lib.cached_array(tmp_path, {'a': 2, 'b': (1, 2)}, build)
  assert not reopened and len(calls) == 2
