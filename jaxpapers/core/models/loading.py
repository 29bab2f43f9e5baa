"""HF directory <-> `layers.Decoder`, shared by every decoder family (Qwen, Llama).

A family module maps config.json to a `DecoderConfig` and back; everything about reading
and writing tensors lives here and in `jaxpapers.core.hf`.
"""
from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, Mapping

import jax
import numpy as np
from flax import nnx

from jaxpapers.core import assets
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import layers

_HF_DTYPES = {'float32': 'float32', 'bfloat16': 'bfloat16', 'float16': 'float16'}


def common_fields_from_hf(c: Mapping[str, Any]) -> dict[str, Any]:
  """DecoderConfig fields every family reads the same way from config.json."""
  heads = c['num_attention_heads']
  rope = dict(c.get('rope_parameters') or {})         # transformers >= 5
  rope.update(c.get('rope_scaling') or {})            # transformers < 5
  theta = c.get('rope_theta', rope.pop('rope_theta', 10000.0))
  kind = rope.get('rope_type', rope.get('type', 'default'))
  scaling = None if kind == 'default' else tuple(sorted(
      (k, v) for k, v in rope.items() if k != 'type'))
  dtype = c.get('dtype') or c.get('torch_dtype') or 'float32'
  return dict(
      vocab_size=c['vocab_size'], hidden_size=c['hidden_size'],
      intermediate_size=c['intermediate_size'], num_hidden_layers=c['num_hidden_layers'],
      num_attention_heads=heads,
      num_key_value_heads=c.get('num_key_value_heads') or heads,
      head_dim=c.get('head_dim') or c['hidden_size'] // heads,
      rope_theta=float(theta), rope_scaling=scaling,
      rms_norm_eps=c.get('rms_norm_eps', 1e-6),
      tie_word_embeddings=c.get('tie_word_embeddings', False),
      max_position_embeddings=c.get('max_position_embeddings', 32768),
      param_dtype=_HF_DTYPES.get(str(dtype), 'float32'),
  )


def common_fields_to_hf(cfg: layers.DecoderConfig) -> dict[str, Any]:
  rope = {'rope_type': 'default', 'rope_theta': cfg.rope_theta}
  if cfg.rope_scaling:
    rope.update(dict(cfg.rope_scaling))
    rope['rope_theta'] = cfg.rope_theta
  out = dict(
      vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
      intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_hidden_layers,
      num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_key_value_heads,
      head_dim=cfg.head_dim, rope_theta=cfg.rope_theta, rms_norm_eps=cfg.rms_norm_eps,
      tie_word_embeddings=cfg.tie_word_embeddings,
      max_position_embeddings=cfg.max_position_embeddings, hidden_act='silu',
      attention_dropout=0.0, initializer_range=0.02, use_cache=True,
      dtype=cfg.param_dtype, bos_token_id=None, eos_token_id=None)
  if cfg.rope_scaling:
    out['rope_scaling'] = dict(cfg.rope_scaling)
  return out


def _skip_keys(cfg: layers.DecoderConfig, reader_keys) -> list[str]:
  skip = [k for k in reader_keys if k.endswith('rotary_emb.inv_freq')]
  if cfg.tie_word_embeddings:
    skip.append('lm_head.weight')
  return skip


def load_decoder(path: str | os.PathLike, cfg: layers.DecoderConfig, dtype: str | None = None,
                 mesh=None) -> layers.Decoder:
  """Builds the abstract model, then fills it tensor by tensor (sharded when `mesh` is set)."""
  if dtype is not None:
    cfg = cfg.replace(param_dtype=dtype, dtype=dtype)
  graphdef, state, abstract = hf.abstract_params(lambda: layers.Decoder(cfg, nnx.Rngs(0)))
  shardings = mesh_lib.param_shardings(state, mesh) if mesh is not None else None
  reader_keys = hf.SafetensorsReader(path).keys()
  params = hf.load_params(path, abstract, hf.KEY_TABLES.get('decoder'), shardings,
                          skip=_skip_keys(cfg, reader_keys))
  return nnx.merge(graphdef, params)


def is_gguf(path: str | os.PathLike) -> bool:
  return pathlib.Path(path).suffix.lower() == '.gguf'


def from_pretrained(path: str | os.PathLike,
                    config_from_hf: Callable[..., layers.DecoderConfig],
                    dtype=None, mesh=None, **overrides) -> layers.Decoder:
  """An HF directory (config.json mapped by `config_from_hf`), a `.gguf` file (dequantised to
  `dtype`, default float32) or a named checkpoint (`jaxpapers.core.assets`) as a Decoder."""
  path = assets.resolve(path)
  if is_gguf(path):
    from jaxpapers.core import gguf   # deferred: gguf imports the family modules
    return gguf.load_decoder(path, dtype=dtype, mesh=mesh, **overrides)
  cfg = config_from_hf(hf.read_config(path), **overrides)
  return load_decoder(path, cfg, dtype=dtype, mesh=mesh)


def save_decoder(model: layers.Decoder, path, hf_config: Mapping[str, Any],
                 dtype: str | None = None, tokenizer_dir=None):
  """Writes an HF directory transformers can load (atomically)."""
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  np_dtype = None if dtype is None else np.dtype(layers.as_dtype(dtype))
  tensors = hf.to_hf_tensors(params, hf.KEY_TABLES.get('decoder'), dtype=np_dtype)
  config = dict(hf_config)
  if dtype is not None:
    config['dtype'] = layers.dtype_name(dtype)
  return hf.save_hf_dir(path, tensors, config, copy_from=tokenizer_dir)


def params_of(model: nnx.Module) -> dict:
  """Pure-dict params of a model (the pytree our train steps use)."""
  return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def num_params(params) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
