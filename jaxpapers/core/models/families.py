"""Decoder families by name: presets and HF config.json model_type -> family module.

A new family (e.g. Llama) adds its module to `_MODULES`; runners only call `config_for`
and `load_hf`.
"""
from __future__ import annotations

from typing import Any, Mapping

from jaxpapers.core import hf
from jaxpapers.core.models import layers
from jaxpapers.core.models import llama
from jaxpapers.core.models import loading
from jaxpapers.core.models import qwen

_MODULES = {'qwen2': qwen, 'qwen3': qwen, 'llama': llama}


def presets() -> dict[str, layers.DecoderConfig]:
  out = {}
  for module in set(_MODULES.values()):
    out.update(module.PRESETS)
  return out


def module_for(model_type: str):
  if model_type not in _MODULES:
    raise ValueError(f'model_type {model_type!r} unsupported; valid: {sorted(_MODULES)}')
  return _MODULES[model_type]


def config_for(model_cfg: Mapping[str, Any]) -> layers.DecoderConfig:
  """DecoderConfig from `model.hf_dir` (config.json) or else `model.preset`."""
  extra = {k: model_cfg[k] for k in ('dtype', 'param_dtype', 'remat') if k in model_cfg}
  if model_cfg.get('hf_dir'):
    return config_from_hf(hf.read_config(model_cfg['hf_dir']), **extra)
  table = presets()
  name = model_cfg.get('preset')
  if name not in table:
    raise ValueError(f'model.preset: {name!r} unknown; valid: {", ".join(sorted(table))}')
  return table[name].replace(**extra, **dict(model_cfg.get('overrides') or {}))


def config_from_hf(hf_config: Mapping[str, Any], **overrides) -> layers.DecoderConfig:
  """DecoderConfig of any family, chosen by config.json's `model_type`."""
  return module_for(hf_config.get('model_type')).config_from_hf(hf_config, **overrides)


def from_pretrained(path, dtype=None, mesh=None, **overrides) -> layers.Decoder:
  """Any family's HF directory, `.gguf` file or named checkpoint, as a Decoder."""
  return loading.from_pretrained(path, config_from_hf, dtype=dtype, mesh=mesh, **overrides)


def load_hf_params(model_cfg: Mapping[str, Any], mesh) -> Any:
  """Sharded pure-dict params from `model.hf_dir`."""
  cfg = config_for(model_cfg)
  model = loading.load_decoder(model_cfg['hf_dir'], cfg, mesh=mesh)
  return loading.params_of(model)
