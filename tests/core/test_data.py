import gzip
import json

import numpy as np
import pytest

from jaxpapers.core import data as data_lib
from jaxpapers.core import paths


def test_pad_example_masks_only_response():
  ex = data_lib.pad_example([1, 2, 3], [4, 5], seq_len=8, pad_id=0)
  np.testing.assert_array_equal(ex['tokens'], [1, 2, 3, 4, 5, 0, 0, 0])
  np.testing.assert_array_equal(ex['loss_mask'], [0, 0, 0, 1, 1, 0, 0, 0])
  np.testing.assert_array_equal(ex['attention_mask'], [1, 1, 1, 1, 1, 0, 0, 0])


def test_pad_example_truncates_long_prompt():
  ex = data_lib.pad_example(list(range(1, 11)), [42], seq_len=4, pad_id=0)
  assert ex['loss_mask'].sum() == 0 and ex['tokens'].tolist() == [1, 2, 3, 4]


def test_read_jsonl_bad_line_names_file_and_line(tmp_path):
  path = tmp_path / 'x.jsonl'
  path.write_bytes(b'{"a": 1}\n{"a": \xff}\n')
  with pytest.raises(ValueError, match=r'x.jsonl:2'):
    data_lib.read_jsonl(path)


def test_read_jsonl_missing_field_names_it(tmp_path):
  path = tmp_path / 'x.jsonl.gz'
  with gzip.open(path, 'wt') as f:
    f.write(json.dumps({'question': 'q'}) + '\n')
  with pytest.raises(ValueError, match="missing fields \\['answer'\\]"):
    data_lib.read_jsonl(path, required=['question', 'answer'])


def test_gsm8k_data_is_in_repo():
  rows = data_lib.read_jsonl(paths.data_file('gsm8k/train.jsonl.gz'), limit=5)
  assert len(rows) == 5 and data_lib.gsm8k_final_answer(rows[0]['answer']) == '72'


def test_pipeline_iterator_state_resumes_same_batches():
  records = [{'x': i} for i in range(37)]
  transform = lambda r: {'x': np.array([r['x']])}  # noqa: E731
  ds = data_lib.batched_pipeline(records, transform, global_batch=4, seed=3)
  it = iter(ds)
  first = [next(it)['x'].ravel().tolist() for _ in range(5)]
  state = it.get_state()
  rest = [next(it)['x'].ravel().tolist() for _ in range(15)]
  it2 = iter(ds)
  it2.set_state(state)
  assert [next(it2)['x'].ravel().tolist() for _ in range(15)] == rest
  seen = sum(first + rest, [])
  assert len(set(seen[:36])) == 36  # one epoch visits every record once (drop remainder)


def test_trim_padding_keeps_the_longest_row_rounded_up():
  rows = [data_lib.pad_example([1, 2, 3], [4] * n, seq_len=32, pad_id=0) for n in (2, 7)]
  batch = {k: np.stack([r[k] for r in rows]) for k in rows[0]} | {'id': np.array([5, 6])}
  out = data_lib.trim_padding(batch, multiple=4)
  assert out['tokens'].shape == (2, 12) and out['loss_mask'].shape == (2, 12)
  assert out['id'].tolist() == [5, 6]        # non-sequence fields pass through
  for k in rows[0]:                          # nothing used is cut
    assert batch[k][:, 12:].sum() == 0
    np.testing.assert_array_equal(out[k], batch[k][:, :12])
  assert data_lib.trim_padding(batch, multiple=64)['tokens'].shape == (2, 32)  # never wider
  with pytest.raises(ValueError, match='trim multiple'):
    data_lib.trim_padding(batch, multiple=0)


def test_pipeline_trims_each_global_batch_before_splitting_rows():
  records = [[1] * n for n in (3, 3, 9, 3, 3, 3, 3, 3)]
  transform = lambda r: data_lib.pad_example(r, [2], seq_len=64, pad_id=0)  # noqa: E731
  it = iter(data_lib.batched_pipeline(records, transform, global_batch=4, seed=0,
                                      shuffle=False, trim_multiple=8))
  assert [next(it)['tokens'].shape for _ in range(2)] == [(4, 16), (4, 8)]
