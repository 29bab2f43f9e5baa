"""Where data lives: $JAXPAPERS_DATA if set, else the repository's `data/`."""
from __future__ import annotations

import os
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def data_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get('JAXPAPERS_DATA', REPO_ROOT / 'data'))


def data_file(relative: str) -> pathlib.Path:
  """Path of a data file; a missing file raises naming the path and how to fix it."""
  path = data_dir() / relative
  if not path.exists():
    raise FileNotFoundError(f'data file {path} not found (set JAXPAPERS_DATA or restore data/)')
  return path
