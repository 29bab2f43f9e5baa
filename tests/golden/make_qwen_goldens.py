"""Writes the Qwen2/Qwen3 parity goldens: tiny random HF checkpoints and their torch logits.

Run from the repository root (needs torch and transformers, the `[parity]` extra):

  python tests/golden/make_qwen_goldens.py

For each entry of `GOLDENS` it builds transformers' `Qwen2ForCausalLM` / `Qwen3ForCausalLM`
with seeded random weights, writes it with `save_pretrained` (float32 safetensors) to
`tests/golden/qwen/<name>/`, and writes `golden.npz` beside it:

  input_ids       [B, T] int32, left padded (pad id 0)
  attention_mask  [B, T] int32, 1 on real tokens
  position_ids    [B, T] int32, cumsum(mask) - 1 clipped at 0 (what HF generation uses)
  logits          [B, T, V] float32, torch eager attention with that mask and those positions

Choices: weights are N(0, 0.1) (norm weights 1 + N(0, 0.1)), larger than HF's init so the
logits are far from uniform. Widths are smaller than the usual tiny preset to keep the four
fixtures under 1 MB: hidden 32 everywhere; Qwen3 uses head_dim 16 with 4 heads
(heads * head_dim != hidden, as in real Qwen3 checkpoints), Qwen2 derives head_dim 8 from
hidden / heads (Qwen2 configs have no head_dim field). `tests/core/models/test_qwen.py`
reuses `build_model`, `make_inputs` and `torch_logits` for its live parity test.
"""
from __future__ import annotations

import pathlib
import shutil

import numpy as np
import torch
import transformers

OUT_DIR = pathlib.Path(__file__).resolve().parent / 'qwen'

TINY = dict(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
            rms_norm_eps=1e-6)
QWEN3_EXTRA = dict(head_dim=16)

# name -> (family, seed, overrides). qwen3_untied has a non-default rope_theta.
GOLDENS = {
    'qwen2_tied': ('qwen2', 1, dict(tie_word_embeddings=True, rope_theta=1_000_000.0)),
    'qwen2_untied': ('qwen2', 2, dict(tie_word_embeddings=False, rope_theta=10_000.0)),
    'qwen3_tied': ('qwen3', 3, dict(tie_word_embeddings=True, rope_theta=1_000_000.0)),
    'qwen3_untied': ('qwen3', 4, dict(tie_word_embeddings=False, rope_theta=1_000.0)),
}
LENGTHS = (12, 9, 5)   # real tokens per row; the rest of the row is left padding
SEQ_LEN = 12
WEIGHT_STD = 0.1

_CLASSES = {
    'qwen2': (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
    'qwen3': (transformers.Qwen3Config, transformers.Qwen3ForCausalLM),
}


def hf_config(family: str, rope_theta: float = 1_000_000.0, **overrides):
  """A tiny transformers config for `family` ('qwen2' or 'qwen3')."""
  config_cls, _ = _CLASSES[family]
  kw = {**TINY, **(QWEN3_EXTRA if family == 'qwen3' else {}), **overrides}
  return config_cls(**kw, rope_parameters={'rope_type': 'default', 'rope_theta': rope_theta},
                    attn_implementation='eager', dtype='float32')


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int, std: float = WEIGHT_STD) -> None:
  """Overwrites every parameter in place: norms 1 + N(0, std), the rest N(0, std)."""
  gen = torch.Generator().manual_seed(seed)
  for name, p in sorted(model.named_parameters()):
    noise = std * torch.randn(p.shape, generator=gen, dtype=torch.float32)
    p.copy_(1.0 + noise if 'norm' in name else noise)


def build_model(family: str, seed: int, **config_overrides):
  """Qwen2/Qwen3ForCausalLM in float32 eval mode with seeded random weights."""
  _, model_cls = _CLASSES[family]
  torch.manual_seed(seed)
  model = model_cls(hf_config(family, **config_overrides)).to(torch.float32).eval()
  randomize_(model, seed)
  return model


def make_inputs(seed: int, vocab_size: int, lengths=LENGTHS, seq_len: int = SEQ_LEN):
  """Left-padded batch: (input_ids, attention_mask, position_ids), each [B, T] int32."""
  rng = np.random.default_rng(seed)
  input_ids = rng.integers(1, vocab_size, size=(len(lengths), seq_len)).astype(np.int32)
  attention_mask = np.zeros_like(input_ids)
  for row, n in enumerate(lengths):
    attention_mask[row, seq_len - n:] = 1
  input_ids = np.where(attention_mask > 0, input_ids, 0).astype(np.int32)
  position_ids = np.clip(np.cumsum(attention_mask, axis=1) - 1, 0, None).astype(np.int32)
  return input_ids, attention_mask, position_ids


@torch.no_grad()
def torch_logits(model, input_ids, attention_mask, position_ids) -> np.ndarray:
  """[B, T, V] float32 logits of the HF model."""
  out = model(input_ids=torch.as_tensor(input_ids, dtype=torch.long),
              attention_mask=torch.as_tensor(attention_mask, dtype=torch.long),
              position_ids=torch.as_tensor(position_ids, dtype=torch.long))
  return out.logits.to(torch.float32).numpy()


def write_golden(name: str, out_dir: pathlib.Path = OUT_DIR) -> pathlib.Path:
  family, seed, overrides = GOLDENS[name]
  model = build_model(family, seed, **overrides)
  path = out_dir / name
  shutil.rmtree(path, ignore_errors=True)
  model.save_pretrained(path)
  input_ids, attention_mask, position_ids = make_inputs(seed, model.config.vocab_size)
  logits = torch_logits(model, input_ids, attention_mask, position_ids)
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
