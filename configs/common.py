"""Helpers shared by config files: argument parsing and repeated sub-dicts."""
from __future__ import annotations

import ml_collections


def parse_arg(arg: str | None, lazy: bool = False, **defaults) -> ml_collections.ConfigDict:
  """'size=0.6b,quick' -> ConfigDict(size='0.6b', quick=True) over `defaults`.

  Values are cast to the type of their default; a bare name sets a bool flag. A bare item
  that cannot be a name continues the previous value, so 'seeds=0,1,2' keeps its commas.
  Unknown keys raise unless `lazy`.
  """
  out = ml_collections.ConfigDict(defaults)
  items = []
  for item in filter(None, (arg or '').split(',')):
    if items and '=' in items[-1] and '=' not in item and not item.isidentifier():
      items[-1] += ',' + item
    else:
      items.append(item)
  for item in items:
    key, _, value = item.partition('=')
    if key not in defaults and not lazy:
      raise ValueError(f'config argument {key!r} unknown; valid: {sorted(defaults)}')
    if not _:
      out[key] = True
      continue
    default = defaults.get(key)
    if isinstance(default, bool):
      out[key] = value.lower() in ('1', 'true', 'yes')
    elif default is not None:
      out[key] = type(default)(value)
    else:
      out[key] = value
  return out


def mesh(data: int = -1, fsdp: int = 1, tensor: int = 1) -> ml_collections.ConfigDict:
  """Mesh axis sizes; -1 takes the remaining devices."""
  return ml_collections.ConfigDict({'data': data, 'fsdp': fsdp, 'tensor': tensor})


def adamw(learning_rate: float, warmup_steps: int = 0, schedule: str = 'linear',
          weight_decay: float = 0.0, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          max_grad_norm: float = 1.0) -> ml_collections.ConfigDict:
  """AdamW with warmup then `schedule` (linear | cosine | constant) decay; TRL defaults."""
  return ml_collections.ConfigDict(dict(
      learning_rate=learning_rate, warmup_steps=warmup_steps, schedule=schedule,
      weight_decay=weight_decay, b1=b1, b2=b2, eps=eps, max_grad_norm=max_grad_norm))


def checkpoint(every: int = 50, keep: int = 3, async_save: bool = True
               ) -> ml_collections.ConfigDict:
  """Orbax policy: save every N steps, keep the newest `keep`."""
  return ml_collections.ConfigDict({'every': every, 'keep': keep, 'async_save': async_save})
