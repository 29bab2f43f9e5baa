"""Row validation names the bad row; long pairs are truncated; BoW vocabulary."""
import numpy as np
import pytest

from jaxpapers.papers.disbert import data

STSB = data.TASKS.get('stsb')


def _row(a='a man plays guitar', b='a man plays a guitar', score=4.0):
  return {'sentence1': a, 'sentence2': b, 'score': score}


@pytest.mark.parametrize('row, message', [
    ({'sentence1': 'x y', 'score': 1.0}, r"f.jsonl row 2: missing fields \['sentence2'\]"),
    (_row(a='   '), 'f.jsonl row 2: empty sentence'),
    (_row(score=7.5), r'f.jsonl row 2: score=7.5 outside \(0.0, 5.0\)'),
    (_row(score='high'), "f.jsonl row 2: score='high' is not a finite number"),
    (_row(b=3), 'f.jsonl row 2: sentence1/sentence2 must be strings'),
])
def test_validate_rows_bad_row_raises_naming_row(row, message):
  with pytest.raises(ValueError, match=message):
    data.validate_rows([_row(), row], STSB, 'f.jsonl')


def test_validate_rows_skip_bad_rows_counts_dropped():
  good, dropped = data.validate_rows([_row(), _row(a=''), {'x': 1}], STSB, 'f', True)
  assert len(good) == 1 and dropped == 2


def test_encode_truncates_long_pairs_and_scales_labels(tokenizer):
  rows = [{'a': 'word ' * 300, 'b': 'other words here', 'label': 5.0},
          {'a': 'short one', 'b': 'short two', 'label': 0.0}]
  vocab = data.build_vocab(['word other words short'], 10, 1)
  arrays, truncated = data.encode(rows, STSB, tokenizer, 16, vocab, 4)
  assert truncated == 1
  assert arrays['input_ids'].shape == (2, 16) and arrays['attention_mask'][0].all()
  np.testing.assert_allclose(arrays['label'], [1.0, 0.0])
  assert arrays['bow_counts'][0, 0] == 300                     # 'word' counted


def test_build_vocab_drops_stopwords_and_rare_words():
  vocab = data.build_vocab(['The dog runs', 'the dog sleeps', 'a cat'], 10, 2)
  assert vocab == ['dog']


def test_eval_batches_pad_last_batch_with_zero_weight():
  arrays = {'label': np.arange(5, dtype=np.float32)}
  batches = list(data.eval_batches(arrays, 4))
  np.testing.assert_array_equal(batches[1]['weight'], [1, 0, 0, 0])
