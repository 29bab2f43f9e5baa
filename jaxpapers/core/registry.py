"""Name -> object registries for everything a config string selects."""
from __future__ import annotations

from typing import Any, Callable


class Registry:
  """A decorator at the definition site, a lookup that lists the valid names on failure."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: dict[str, Any] = {}

  def register(self, name: str) -> Callable[[Any], Any]:
    def wrap(obj):
      if name in self._entries and self._entries[name] is not obj:
        raise ValueError(f'{self.kind} {name!r} is registered twice')
      self._entries[name] = obj
      return obj
    return wrap

  def get(self, name: str) -> Any:
    if name not in self._entries:
      raise ValueError(f'unknown {self.kind} {name!r}; valid: {", ".join(sorted(self._entries))}')
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries


# Experiments: fn(config, workdir) -> dict of final results.
EXPERIMENTS = Registry('experiment')
experiment = EXPERIMENTS.register
