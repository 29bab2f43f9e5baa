"""Writes the Llama parity goldens: tiny random HF checkpoints and their torch logits.

Run from the repository root (needs torch and transformers, the `[parity]` extra):

  python tests/golden/make_llama_goldens.py

For each entry of `GOLDENS` it builds transformers' `LlamaForCausalLM` with seeded random
weights, writes it with `save_pretrained` (float32 safetensors) to `tests/golden/llama/<name>/`,
and writes `golden.npz` beside it (same arrays as the Qwen goldens):

  input_ids       [B, T] int32, left padded (pad id 0)
  attention_mask  [B, T] int32, 1 on real tokens
  position_ids    [B, T] int32, cumsum(mask) - 1 clipped at 0 (what HF generation uses)
  logits          [B, T, V] float32, torch eager attention with that mask and those positions

Choices: the inputs, weight init and sizes are those of `make_qwen_goldens` (hidden 32, vocab
256, 2 layers, 4 heads, 2 KV heads, N(0, 0.1) weights) so the four fixtures stay under 1 MB.
The `llama3` RoPE scaling uses a tiny `original_max_position_embeddings` so that, at positions
< 12, the scaled, smoothed and unscaled frequency bands are all present (Llama 3.1's 8192 would
leave every frequency of a head_dim-8 model in one band): `llama3_scaled_tied` has head_dim 16
(heads * head_dim != hidden) with two smoothed frequencies, `llama3_scaled_untied` head_dim 8
with one. `tests/core/models/test_llama.py` reuses `build_model` for its live parity test.
"""
from __future__ import annotations

import pathlib
import shutil
import sys

import numpy as np
import torch
import transformers

if __package__ in (None, ''):   # run as a script: make `tests.golden` importable
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from tests.golden import make_qwen_goldens as qwen_goldens  # noqa: E402

OUT_DIR = pathlib.Path(__file__).resolve().parent / 'llama'

TINY = dict(qwen_goldens.TINY, rms_norm_eps=1e-5)

SCALED_TIED = dict(rope_type='llama3', factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=64)
SCALED_UNTIED = dict(rope_type='llama3', factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                     original_max_position_embeddings=32)

# name -> (seed, config overrides). `rope` is the rope_parameters dict without rope_theta.
GOLDENS = {
    'llama_tied': (1, dict(tie_word_embeddings=True, rope_theta=10_000.0)),
    'llama_untied': (2, dict(tie_word_embeddings=False, rope_theta=500_000.0)),
    'llama3_scaled_tied': (3, dict(tie_word_embeddings=True, rope_theta=10_000.0, head_dim=16,
                                   rope=SCALED_TIED)),
    'llama3_scaled_untied': (4, dict(tie_word_embeddings=False, rope_theta=500.0,
                                     rope=SCALED_UNTIED)),
}


def hf_config(rope_theta: float = 10_000.0, rope: dict | None = None, **overrides):
  """A tiny `LlamaConfig`; `rope` adds a RoPE scaling (e.g. llama3) to the default."""
  rope_parameters = {'rope_type': 'default', **(rope or {}), 'rope_theta': rope_theta}
  return transformers.LlamaConfig(**{**TINY, **overrides}, rope_parameters=rope_parameters,
                                  attn_implementation='eager', dtype='float32')


def build_model(seed: int, **config_overrides):
  """LlamaForCausalLM in float32 eval mode with seeded random weights."""
  torch.manual_seed(seed)
  model = transformers.LlamaForCausalLM(hf_config(**config_overrides)).to(torch.float32).eval()
  qwen_goldens.randomize_(model, seed)
  return model


def write_golden(name: str, out_dir: pathlib.Path = OUT_DIR) -> pathlib.Path:
  seed, overrides = GOLDENS[name]
  model = build_model(seed, **overrides)
  path = out_dir / name
  shutil.rmtree(path, ignore_errors=True)
  model.save_pretrained(path)
  input_ids, attention_mask, position_ids = qwen_goldens.make_inputs(seed,
                                                                      model.config.vocab_size)
  logits = qwen_goldens.torch_logits(model, input_ids, attention_mask, position_ids)
  np.savez_compressed(path / 'golden.npz', input_ids=input_ids, attention_mask=attention_mask,
                      position_ids=position_ids, logits=logits)
  return path


def main():
  for name in GOLDENS:
    path = write_golden(name)
    size = sum(f.stat().st_size for f in path.iterdir())
    logits = np.load(path / 'golden.npz')['logits']
    print(f'{path}: {size / 1024:.0f} KiB, logits std {logits.std():.3f}, '
          f'files {sorted(f.name for f in path.iterdir())}')


if __name__ == '__main__':
  main()
