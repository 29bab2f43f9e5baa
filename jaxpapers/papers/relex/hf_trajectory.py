"""Trajectory of HF safetensors directories (`base/`, `step_<k>/`), read lazily per tensor.

Uses `core.hf.SafetensorsReader` to index each directory (single file or sharded index);
reads go through one `safe_open` handle per file, kept open for the run (safetensors
memory-maps the file, so a row slice copies just those bytes).
"""
from __future__ import annotations

import pathlib
from typing import Mapping

import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
import numpy as np
from safetensors import safe_open

from jaxpapers.core import hf
from jaxpapers.papers.relex import base_trajectory


class HFTrajectory(base_trajectory.TrajectorySource):
  """θ₀ and checkpoints as HF directories (config.json + safetensors)."""

  format = 'hf'

  def __init__(self, base_dir: pathlib.Path, step_dirs: Mapping[int, pathlib.Path]):
    super().__init__(base_dir, step_dirs)
    self._readers: dict[base_trajectory.Step, hf.SafetensorsReader] = {}
    self._handles: dict[pathlib.Path, object] = {}
    base = self._reader(base_trajectory.BASE)
    self._shapes = {k: base.shape(k) for k in base.keys()}
    self._dtypes = {}
    for name in self._shapes:
      self._dtypes[name] = self._slice(base, name).get_dtype()

  def _reader(self, step) -> hf.SafetensorsReader:
    if step not in self._readers:
      self._readers[step] = hf.SafetensorsReader(self.path(step))
    return self._readers[step]

  def _slice(self, reader: hf.SafetensorsReader, name: str):
    file = reader.files[name]
    if file not in self._handles:
      self._handles[file] = safe_open(file, 'np')
    return self._handles[file].get_slice(name)

  @property
  def config_dir(self) -> pathlib.Path:
    """Where config.json and tokenizer files are copied from (θ₀'s directory)."""
    return self.base_dir

  def tensor_names(self) -> list[str]:
    return list(self._shapes)

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self._shapes[name])

  def dtype(self, name: str) -> np.dtype:
    return np.dtype(_DTYPES.get(self._dtypes[name], 'float32'))

  def read(self, name, step, rows: slice = slice(None)) -> np.ndarray:
    sl = self._slice(self._reader(step), name)
    if len(sl.get_shape()) == 0:
      return sl[...]
    return sl[rows]

  def step_shapes(self, step) -> dict[str, tuple[int, ...]]:
    reader = self._reader(step)
    return {k: tuple(self._slice(reader, k).get_shape()) for k in reader.keys()}

  def close(self) -> None:
    self._handles.clear()
    self._readers.clear()


# safetensors dtype strings -> numpy (ml_dtypes) names.
_DTYPES = {'F64': 'float64', 'F32': 'float32', 'F16': 'float16', 'BF16': 'bfloat16',
           'I64': 'int64', 'I32': 'int32', 'I16': 'int16', 'I8': 'int8', 'U8': 'uint8',
           'BOOL': 'bool'}


def is_hf_dir(path: pathlib.Path) -> bool:
  return (path / hf.SAFETENSORS_FILE).exists() or (path / hf.INDEX_FILE).exists()
