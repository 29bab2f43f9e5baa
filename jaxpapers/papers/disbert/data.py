"""Sentence-pair data for DisBert: tasks, row validation, tokenisation, BoW, Grain batches.

Each task names its jsonl files under data/ and its fields. Rows are validated once, before
any compile: a missing field, a non-string or empty sentence, or a bad label raises naming
the file and row (or, with `skip_bad_rows`, is dropped and counted). Over-long pairs are
truncated by the tokenizer ('longest_first') and counted, never a crash mid-epoch.

The topic model reads a bag of words of the whole pair over a vocabulary built from the
training sentences only: lower-cased alphabetic words, English stop words removed, words
seen at least `min_count` times, the `vocab_size` most frequent kept (the reference builds
its vocabulary from the training split by frequency too: dvq_model/task.py `_get_vocab`).
A pair's BoW is stored sparse as (ids, counts) padded to `max_words` distinct words.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import re
from typing import Any, Sequence

import numpy as np

from jaxpapers.core import data as data_lib
from jaxpapers.core import paths
from jaxpapers.core import registry


@dataclasses.dataclass(frozen=True)
class Task:
  """One sentence-pair dataset; regression targets are scaled to [0, 1] by (y - lo) / (hi - lo)."""
  name: str
  kind: str                      # 'regression' | 'classification'
  files: tuple                   # ((split, relative path), ...) with splits train, dev, test
  text_a: str
  text_b: str
  label: str
  label_range: tuple = (0.0, 1.0)   # regression: (lo, hi); classification: (0, classes - 1)

  @property
  def num_outputs(self) -> int:
    return 1 if self.kind == 'regression' else int(self.label_range[1]) + 1

  def file(self, split: str) -> str:
    return dict(self.files)[split]


TASKS = registry.Registry('disbert task')
for _task in (
    Task('stsb', 'regression', (('train', 'stsb/train.jsonl.gz'), ('dev', 'stsb/dev.jsonl'),
                                ('test', 'stsb/test.jsonl')),
         'sentence1', 'sentence2', 'score', (0.0, 5.0)),
    # SICK-R: relatedness 1-5; the 500-pair trial split is the dev set.
    Task('sick', 'regression', (('train', 'sick/train.jsonl.gz'), ('dev', 'sick/trial.jsonl'),
                                ('test', 'sick/test.jsonl.gz')),
         'sentence_A', 'sentence_B', 'relatedness_score', (1.0, 5.0)),
    Task('mrpc', 'classification', (('train', 'mrpc/train.jsonl.gz'),
                                    ('dev', 'mrpc/validation.jsonl'), ('test', 'mrpc/test.jsonl')),
         'sentence1', 'sentence2', 'label', (0, 1)),
):
  TASKS.register(_task.name)(_task)


# ----------------------------------------------------------------------------- rows


def validate_rows(rows: Sequence[dict], task: Task, where: str,
                  skip_bad_rows: bool = False) -> tuple[list[dict], int]:
  """Checked rows {a, b, label} and the number dropped; a bad row raises naming `where`:row."""
  good, dropped = [], 0
  lo, hi = task.label_range
  for i, row in enumerate(rows, 1):
    problem = None
    missing = [k for k in (task.text_a, task.text_b, task.label) if k not in row]
    if missing:
      problem = f'missing fields {missing}'
    else:
      a, b, y = row[task.text_a], row[task.text_b], row[task.label]
      if not isinstance(a, str) or not isinstance(b, str):
        problem = f'{task.text_a}/{task.text_b} must be strings, got {type(a).__name__}/' \
                  f'{type(b).__name__}'
      elif not a.strip() or not b.strip():
        problem = f'empty sentence ({task.text_a}={a!r}, {task.text_b}={b!r})'
      elif isinstance(y, bool) or not isinstance(y, (int, float)) or not math.isfinite(y):
        problem = f'{task.label}={y!r} is not a finite number'
      elif not lo <= y <= hi or (task.kind == 'classification' and y != int(y)):
        problem = f'{task.label}={y!r} outside {task.label_range}'
    if problem is None:
      good.append({'a': a, 'b': b, 'label': float(y)})
    elif skip_bad_rows:
      dropped += 1
    else:
      raise ValueError(f'{where} row {i}: {problem} (set data.skip_bad_rows=True to drop '
                       f'such rows)')
  if not good:
    raise ValueError(f'{where}: no usable rows')
  return good, dropped


def load_split(task: Task, split: str, limit: int = 0, skip_bad_rows: bool = False):
  path = paths.data_file(task.file(split))
  rows = data_lib.read_jsonl(path, limit=limit or None)
  return validate_rows(rows, task, str(path), skip_bad_rows)


# ----------------------------------------------------------------------------- BoW

STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves s t d ll m re ve y
""".split())
_WORD = re.compile(r'[a-z]+')


def words(text: str) -> list[str]:
  return [w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS]


def build_vocab(texts: Sequence[str], vocab_size: int, min_count: int) -> list[str]:
  """Most frequent non-stop words of `texts` (ties broken alphabetically, so it is stable)."""
  counts = collections.Counter(w for t in texts for w in words(t))
  ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
  if not ranked:
    raise ValueError(f'BoW vocabulary is empty (min_count={min_count}); lower data.min_count')
  return ranked[:vocab_size]


def bow(texts: Sequence[str], vocab: Sequence[str], max_words: int):
  """Sparse BoW per text: ids [N, max_words] int32, counts [N, max_words] float32 (0 = pad)."""
  index = {w: i for i, w in enumerate(vocab)}
  ids = np.zeros((len(texts), max_words), np.int32)
  counts = np.zeros((len(texts), max_words), np.float32)
  for n, text in enumerate(texts):
    c = collections.Counter(index[w] for w in words(text) if w in index)
    for j, (i, k) in enumerate(c.most_common(max_words)):
      ids[n, j], counts[n, j] = i, k
  return ids, counts


# ----------------------------------------------------------------------------- encoding

TOKEN_FIELDS = ('input_ids', 'token_type_ids', 'attention_mask')


def encode(rows: Sequence[dict], task: Task, tokenizer, seq_len: int, vocab: Sequence[str],
           max_words: int) -> tuple[dict[str, np.ndarray], int]:
  """Rows -> arrays (input_ids, token_type_ids, attention_mask [N, S]; bow_ids, bow_counts
  [N, W]; label [N]) and the number of pairs truncated to `seq_len`."""
  a, b = [r['a'] for r in rows], [r['b'] for r in rows]
  full = tokenizer(a, b, truncation=False)['input_ids']
  truncated = sum(len(x) > seq_len for x in full)
  enc = tokenizer(a, b, truncation='longest_first', max_length=seq_len, padding='max_length',
                  return_tensors='np')
  label = np.array([r['label'] for r in rows], np.float32)
  if task.kind == 'regression':
    lo, hi = task.label_range
    label = (label - lo) / (hi - lo)
  ids, counts = bow([x + ' ' + y for x, y in zip(a, b)], vocab, max_words)
  arrays = {'input_ids': enc['input_ids'].astype(np.int32),
            'token_type_ids': enc['token_type_ids'].astype(np.int32),
            'attention_mask': enc['attention_mask'].astype(np.int32),
            'bow_ids': ids, 'bow_counts': counts, 'label': label}
  return arrays, truncated


def train_batches(arrays: dict[str, np.ndarray], batch_size: int, seed: int):
  """Endless shuffled Grain iterator of batches (each epoch reshuffled; drops the remainder)."""
  n = len(arrays['label'])
  if batch_size > n:
    raise ValueError(f'batch_size {batch_size} > {n} training pairs')
  records = [{k: v[i] for k, v in arrays.items()} for i in range(n)]
  return iter(data_lib.batched_pipeline(records, lambda r: r, batch_size, seed))


def eval_batches(arrays: dict[str, np.ndarray], batch_size: int):
  """Fixed-order batches; the last is padded by repeating row 0 with `weight` 0."""
  n = len(arrays['label'])
  for start in range(0, n, batch_size):
    idx = np.arange(start, start + batch_size)
    weight = (idx < n).astype(np.float32)
    idx = np.where(idx < n, idx, 0)
    yield {**{k: v[idx] for k, v in arrays.items()}, 'weight': weight}


def trim(batch: dict[str, np.ndarray], bucket: int) -> dict[str, np.ndarray]:
  """Drops padding columns beyond the batch's longest pair, rounded up to a multiple of
  `bucket` (few distinct shapes, so few compiles). 0 = keep the full length. Trimming is per
  process: multi-host runs must use 0 so every process feeds the same shape."""
  if not bucket:
    return batch
  mask = batch['attention_mask']
  longest = int(mask.sum(1).max()) if mask.size else 0
  keep = min(mask.shape[1], max(bucket, -(-longest // bucket) * bucket))
  return {k: v[:, :keep] if k in TOKEN_FIELDS else v for k, v in batch.items()}


def summary(arrays: dict[str, Any]) -> dict:
  return {'pairs': int(len(arrays['label'])),
          'mean_tokens': float(arrays['attention_mask'].sum(1).mean()),
          'mean_bow_words': float(arrays['bow_counts'].sum(1).mean())}
