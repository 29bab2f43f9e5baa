"""Grain pipelines over jsonl files: read, format, tokenise, pad, batch, shard per host.

Every process builds the same global batch order from the same seed and keeps its own rows
of each global batch, so the data a step sees does not depend on the process count. The
iterator is a Grain `DatasetIterator`; its state is checkpointed with the train state.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import grain
import jax
import numpy as np

from jaxpapers.core import paths

Record = Mapping[str, Any]


def read_jsonl(path: str | os.PathLike, required: Sequence[str] = (),
               limit: int | None = None) -> list[dict]:
  """Parses a jsonl file (optionally .gz); a bad row raises naming the file and line."""
  import gzip
  path = os.fspath(path)
  opener = gzip.open if path.endswith('.gz') else open
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no such data file')
  rows = []
  with opener(path, 'rb') as f:
    for lineno, raw in enumerate(f, 1):
      if limit is not None and len(rows) >= limit:
        break
      if not raw.strip():
        continue
      try:
        row = json.loads(raw.decode('utf-8'))
      except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f'{path}:{lineno}: not a valid UTF-8 JSON line ({e})') from None
      missing = [k for k in required if k not in row]
      if missing:
        raise ValueError(f'{path}:{lineno}: missing fields {missing}')
      rows.append(row)
  return rows


def write_jsonl(path: str | os.PathLike, rows: Iterable[Record]) -> None:
  """Writes rows atomically: a killed run never leaves half a file that looks finished."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(''.join(json.dumps(r) + '\n' for r in rows))
  tmp.replace(path)


# ----------------------------------------------------------------------------- formats


def gsm8k_final_answer(answer: str) -> str:
  """The number after '####' in a GSM8K solution."""
  return answer.split('####')[-1].strip().replace(',', '')


def gsm8k_sft_messages(record: Record) -> tuple[list[dict], str]:
  """(chat prompt messages, response text) for supervised fine-tuning on GSM8K."""
  solution = re.sub(r'<<[^>]*>>', '', record['answer'])   # drop calculator annotations
  return [{'role': 'user', 'content': record['question']}], solution


FORMATS: dict[str, Callable[[Record], tuple[list[dict], str]]] = {
    'gsm8k': gsm8k_sft_messages,
}


@dataclasses.dataclass(frozen=True)
class SFTTokenizer:
  """Chat-formats a record and tokenises it; loss only on the response tokens."""
  tokenizer: Any
  format_fn: Callable[[Record], tuple[list[dict], str]]
  seq_len: int
  system: str | None = None

  def __call__(self, record: Record) -> dict[str, np.ndarray]:
    from jaxpapers.core import tokenizer as tok_lib
    messages, response = self.format_fn(record)
    prompt = tok_lib.chat_prompt(self.tokenizer, messages, system=self.system)
    end = self.tokenizer.eos_token or ''
    p_ids = tok_lib.encode(self.tokenizer, prompt)
    r_ids = tok_lib.encode(self.tokenizer, response + end)
    return pad_example(p_ids, r_ids, self.seq_len, self.tokenizer.pad_token_id)


def pad_example(prompt_ids: Sequence[int], response_ids: Sequence[int], seq_len: int,
                pad_id: int) -> dict[str, np.ndarray]:
  """Right-pads/truncates prompt+response to seq_len.

  Returns:
    tokens [S] int32, loss_mask [S] (1 on response tokens), attention_mask [S].
  """
  ids = (list(prompt_ids) + list(response_ids))[:seq_len]
  n, n_prompt = len(ids), min(len(prompt_ids), seq_len)
  tokens = np.full((seq_len,), pad_id, np.int32)
  tokens[:n] = ids
  loss_mask = np.zeros((seq_len,), np.float32)
  loss_mask[n_prompt:n] = 1.0
  attention_mask = np.zeros((seq_len,), np.int32)
  attention_mask[:n] = 1
  return {'tokens': tokens, 'loss_mask': loss_mask, 'attention_mask': attention_mask}


# ----------------------------------------------------------------------------- pipeline


def process_rows(global_batch: int) -> slice:
  """This process's rows of a global batch."""
  n, i = jax.process_count(), jax.process_index()
  if global_batch % n:
    raise ValueError(f'batch_size {global_batch} is not divisible by {n} processes')
  per = global_batch // n
  return slice(i * per, (i + 1) * per)


def trim_padding(batch: Mapping[str, np.ndarray], multiple: int,
                 mask_key: str = 'attention_mask') -> dict[str, np.ndarray]:
  """Drops the right-padding columns that no row of `batch` uses, keeping a multiple of
  `multiple` (so only a few shapes compile). Every [B, T] field is cut to the same width;
  with right padding and a causal model the loss is unchanged, and the step costs what
  the batch's longest row needs instead of `seq_len`."""
  if multiple <= 0:
    raise ValueError(f'trim multiple must be positive, got {multiple}')
  mask = np.asarray(batch[mask_key])
  width = mask.shape[1]
  used = np.flatnonzero(mask.any(0))
  needed = int(used[-1]) + 1 if used.size else 1
  keep = min(width, -(-needed // multiple) * multiple)
  return {k: v[:, :keep] if np.ndim(v) >= 2 and np.shape(v)[1] == width else v
          for k, v in batch.items()}


def batched_pipeline(records: Sequence[Record], transform: Callable[[Record], dict],
                     global_batch: int, seed: int, shuffle: bool = True,
                     num_epochs: int | None = None,
                     trim_multiple: int = 0) -> grain.IterDataset:
  """Shuffled, repeated, transformed, batched records; each process keeps its rows.

  `trim_multiple` > 0 cuts each global batch's unused right padding (`trim_padding`)
  before the rows are split, so every process sees the same width.
  """
  if not records:
    raise ValueError('dataset is empty')
  rows = process_rows(global_batch)
  ds = grain.MapDataset.source(list(records))
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.repeat(num_epochs).map(transform).batch(global_batch, drop_remainder=True)
  if trim_multiple:
    ds = ds.map(lambda b: trim_padding(b, trim_multiple))
  ds = ds.map(lambda b: {k: v[rows] for k, v in b.items()})
  return ds.to_iter_dataset()


def to_global(batch: Mapping[str, np.ndarray], sharding) -> dict[str, jax.Array]:
  """Host-local rows -> one global array per field, laid out on `sharding`."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def take(iterator: Iterable, n: int) -> list:
  return [next(iterator) for _ in range(n)]
