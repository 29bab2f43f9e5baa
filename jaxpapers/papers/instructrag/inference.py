"""Greedy generation for many prompts through core's sampler, resumable chunk by chunk.

`generate` runs batches of prompts sorted by length (less padding; a few bucketed shapes,
so a few compiles) and returns the texts in input order. `cached` wraps it for long runs:
the prompts are cut into chunks of `chunk` rows, each finished chunk is written to
`<file>.parts/NNNNN.jsonl`, a rerun skips finished chunks, and the final jsonl (one row per
prompt: the caller's fields + `prompt` + `output`) is written atomically once all are done;
when it exists nothing is generated and the model is never loaded.
"""
from __future__ import annotations

import pathlib
import shutil
from typing import Callable, Sequence

from jaxpapers.core import data as data_lib
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib


def generate(model, tok, prompt_ids: Sequence[Sequence[int]], *, max_new_tokens: int,
             batch_size: int, mesh=None, bucket: int = 128, shared_prefix: int = 0) -> list[str]:
  """Greedy completions (decoded without special tokens) of `prompt_ids`, in input order.
  `shared_prefix`: a batch's common prefix (e.g. the ICL demonstrations) is prefilled once
  (sampler.generate)."""
  return sampler.generate_batched(
      model, prompt_ids, max_new_tokens=max_new_tokens, batch_size=batch_size,
      decode=lambda ids: tok.decode(ids, skip_special_tokens=True),
      eos_ids=tok_lib.stop_token_ids(tok), pad_id=tok.pad_token_id, mesh=mesh,
      prompt_bucket=bucket, shared_prefix=shared_prefix)


def cached(path: pathlib.Path, rows: Sequence[dict], prompt_ids: Sequence[Sequence[int]],
           run: Callable[[list[list[int]]], list[str]], tok, chunk: int,
           finish: Callable[[dict], dict] | None = None) -> list[dict]:
  """`rows` with `prompt` and `output` added (then passed through `finish`, if given);
  `run(ids) -> texts` is called only for chunks that have no file yet."""
  path = pathlib.Path(path)
  if path.exists():
    return data_lib.read_jsonl(path)
  parts = path.with_name(path.name + '.parts')
  outputs: list[str] = []
  for k, start in enumerate(range(0, len(rows), chunk)):
    part = parts / f'{k:05d}.jsonl'
    if not part.exists():
      ids = [list(p) for p in prompt_ids[start:start + chunk]]
      data_lib.write_jsonl(part, [{'output': t} for t in run(ids)])
    outputs += [r['output'] for r in data_lib.read_jsonl(part)]
  out = [{**row, 'prompt': tok.decode(list(ids)), 'output': text}
         for row, ids, text in zip(rows, prompt_ids, outputs)]
  out = [finish(r) for r in out] if finish else out
  data_lib.write_jsonl(path, out)
  shutil.rmtree(parts, ignore_errors=True)
  return out
