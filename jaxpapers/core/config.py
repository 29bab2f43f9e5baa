"""Config validation helpers: every check names the field and the value received."""
from __future__ import annotations

from typing import Any, Iterable


class ConfigError(ValueError):
  """A config mistake; the launcher prints it as one line without a traceback."""


def require(ok: bool, field: str, message: str) -> None:
  if not ok:
    raise ConfigError(f'config.{field}: {message}')


def check_positive(config, *fields: str) -> None:
  for field in fields:
    value = _get(config, field)
    require(isinstance(value, (int, float)) and value > 0, field,
            f'must be > 0, got {value!r}')


def check_choice(config, field: str, choices: Iterable[Any]) -> None:
  choices = list(choices)
  value = _get(config, field)
  require(value in choices, field, f'{value!r} is not one of {choices}')


def check_divisible(config, field: str, divisor: int, why: str) -> None:
  value = _get(config, field)
  require(value % divisor == 0, field,
          f'{value} is not divisible by {divisor} ({why}); use a multiple of {divisor}')


def _get(config, dotted: str):
  node = config
  for part in dotted.split('.'):
    node = node[part]
  return node
