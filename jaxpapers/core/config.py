"""Config validation helpers (every check names the field and the value received), and
`load_file`: a config file by path, as the launcher's `--config=configs/x.py` reads it.

Package code never imports the top-level `configs` package (a non-editable install has none):
it resolves the file by path like the launcher, against the working directory and then the
repository checkout this package runs from.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
from typing import Any, Iterable

from jaxpapers.core import paths


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


def find_file(path: str | os.PathLike) -> pathlib.Path:
  """`path` as given, else relative to the repository root; raises naming both places."""
  path = pathlib.Path(path)
  for candidate in (path, paths.REPO_ROOT / path):
    if candidate.is_file():
      return candidate.resolve()
  raise FileNotFoundError(f'config file {path} not found in {pathlib.Path.cwd()} or '
                          f'{paths.REPO_ROOT} (run from a checkout of the repository)')


def load_file(path: str | os.PathLike, arg: str | None = None):
  """`get_config(arg)` of a config file, executed from its path.

  Config files import their helpers as `from configs import common`, so the folder holding
  `configs/` is put on sys.path while the file runs (the launcher has it as the cwd).
  """
  path = find_file(path)
  root = str(path.parent.parent)
  added = root not in sys.path
  if added:
    sys.path.insert(0, root)
  try:
    spec = importlib.util.spec_from_file_location(f'_config_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)
  finally:
    if added:
      sys.path.remove(root)


def _get(config, dotted: str):
  node = config
  for part in dotted.split('.'):
    node = node[part]
  return node
