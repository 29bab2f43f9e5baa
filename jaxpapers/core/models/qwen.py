"""Qwen2 / Qwen2.5 / Qwen3 decoders: presets, config.json mapping, HF import/export.

The network itself is `layers.Decoder`; Qwen2/2.5 turn on q/k/v biases, Qwen3 turns on
per-head q/k RMSNorm (https://huggingface.co/docs/transformers/model_doc/qwen3).
`from_pretrained` also reads llama.cpp `.gguf` files (`qwen2`/`qwen3` architectures) and named
checkpoints (`jaxpapers.core.assets`, e.g. `qwen2.5-coder-0.5b-instruct`).
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from flax import nnx

from jaxpapers.core.models import layers
from jaxpapers.core.models import loading

DecoderConfig = layers.DecoderConfig

_MODEL_TYPES = {'qwen2': 'Qwen2ForCausalLM', 'qwen3': 'Qwen3ForCausalLM'}


def _qwen2(**kw) -> DecoderConfig:
  return DecoderConfig(**{'family': 'qwen2', 'attention_bias': True, 'qk_norm': False, **kw})


def _qwen3(**kw) -> DecoderConfig:
  return DecoderConfig(**{'family': 'qwen3', 'attention_bias': False, 'qk_norm': True, **kw})


# Presets, one per released checkpoint (architecture numbers from each config.json).
PRESETS: dict[str, DecoderConfig] = {
    # Qwen/Qwen2.5-0.5B(-Instruct)
    'qwen2.5-0.5b': _qwen2(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                           num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                           head_dim=64, rope_theta=1e6, rms_norm_eps=1e-6,
                           tie_word_embeddings=True),
    # Qwen/Qwen2.5-1.5B(-Instruct); Qwen2.5-Math-1.5B uses rope_theta 1e4, max_pos 4096
    'qwen2.5-1.5b': _qwen2(vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                           num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                           head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6,
                           tie_word_embeddings=True),
    # Qwen/Qwen2.5-3B(-Instruct)
    'qwen2.5-3b': _qwen2(vocab_size=151936, hidden_size=2048, intermediate_size=11008,
                         num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
                         head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
    # Qwen/Qwen2.5-7B(-Instruct)
    'qwen2.5-7b': _qwen2(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                         num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                         head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6,
                         tie_word_embeddings=False),
    # Qwen/Qwen3-0.6B(-Base)
    'qwen3-0.6b': _qwen3(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                         num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                         head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
    # Qwen/Qwen3-1.7B(-Base)
    'qwen3-1.7b': _qwen3(vocab_size=151936, hidden_size=2048, intermediate_size=6144,
                         num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                         head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
    # Qwen/Qwen3-4B(-Base)
    'qwen3-4b': _qwen3(vocab_size=151936, hidden_size=2560, intermediate_size=9728,
                       num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                       head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6,
                       tie_word_embeddings=True),
    # Qwen/Qwen3-8B(-Base)
    'qwen3-8b': _qwen3(vocab_size=151936, hidden_size=4096, intermediate_size=12288,
                       num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                       head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6,
                       tie_word_embeddings=False),
    # Tiny random models for tests and CPU demos (real Qwen vocabulary).
    'qwen3-tiny': _qwen3(vocab_size=151936, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16),
    'qwen2-tiny': _qwen2(vocab_size=151936, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16),
}


def preset(name: str, **overrides) -> DecoderConfig:
  if name not in PRESETS:
    raise ValueError(f'model preset {name!r} unknown; valid: {", ".join(sorted(PRESETS))}')
  return PRESETS[name].replace(**overrides)


def config_from_hf(hf_config: Mapping[str, Any], **overrides) -> DecoderConfig:
  model_type = hf_config.get('model_type')
  if model_type not in _MODEL_TYPES:
    raise ValueError(f'config.json model_type {model_type!r} is not a Qwen model; '
                     f'valid: {sorted(_MODEL_TYPES)}')
  fields = loading.common_fields_from_hf(hf_config)
  if model_type == 'qwen2':
    return _qwen2(**{**fields, **overrides})
  fields['attention_bias'] = bool(hf_config.get('attention_bias', False))
  fields['o_proj_bias'] = fields['attention_bias']
  return _qwen3(**{**fields, **overrides})


def config_to_hf(cfg: DecoderConfig) -> dict[str, Any]:
  out = loading.common_fields_to_hf(cfg)
  out.update(model_type=cfg.family, architectures=[_MODEL_TYPES[cfg.family]])
  if cfg.family == 'qwen3':
    out['attention_bias'] = cfg.attention_bias
  else:
    out['use_sliding_window'] = False
  return out


def init(cfg: DecoderConfig, seed: int = 0) -> layers.Decoder:
  return layers.Decoder(cfg, nnx.Rngs(params=seed))


def from_pretrained(path: str | os.PathLike, dtype=None, mesh=None,
                    **overrides) -> layers.Decoder:
  """An HF Qwen directory, a `.gguf` file or a named checkpoint (`loading.from_pretrained`);
  with `mesh`, params land sharded by the logical rules."""
  return loading.from_pretrained(path, config_from_hf, dtype=dtype, mesh=mesh, **overrides)


def save_pretrained(model: layers.Decoder, path: str | os.PathLike, dtype: str | None = None,
                    tokenizer_dir: str | os.PathLike | None = None):
  return loading.save_decoder(model, path, config_to_hf(model.config), dtype=dtype,
                              tokenizer_dir=tokenizer_dir)
