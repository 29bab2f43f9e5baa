"""Trajectory of HF safetensors directories (`base/`, `step_<k>/`), read per tensor row range.

`core.hf.SafetensorsReader` indexes each directory (single file or sharded index); each
file's safetensors header (8-byte length + JSON of dtype, shape, data offsets) is parsed
once, and a row range is read with `os.preadv` straight into the caller's buffer. Choice:
plain reads instead of safetensors' memory map, because pages of a mapping stay resident in
the process (a run over T checkpoints would count T checkpoints of RSS) and the map-then-copy
path copies twice.
"""
from __future__ import annotations

import json
import os
import pathlib
import struct
import threading
from typing import Mapping

import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
import numpy as np

from jaxpapers.core import hf
from jaxpapers.papers.relex import base_trajectory

# safetensors dtype strings -> numpy (ml_dtypes) names.
_DTYPES = {'F64': 'float64', 'F32': 'float32', 'F16': 'float16', 'BF16': 'bfloat16',
           'I64': 'int64', 'I32': 'int32', 'I16': 'int16', 'I8': 'int8', 'U8': 'uint8',
           'BOOL': 'bool'}


class _File:
  """One open safetensors file: its header and a read-only descriptor."""

  def __init__(self, path: pathlib.Path):
    self.fd = os.open(path, os.O_RDONLY)
    (size,) = struct.unpack('<Q', os.pread(self.fd, 8, 0))
    header = json.loads(os.pread(self.fd, size, 8))
    header.pop('__metadata__', None)
    self.data_start = 8 + size
    self.entries = {k: (np.dtype(_DTYPES[v['dtype']]), tuple(v['shape']), v['data_offsets'][0])
                    for k, v in header.items()}

  def read_into(self, name: str, rows: slice, out: np.ndarray) -> None:
    """Reads rows `rows` of `name` into the contiguous `out` (same dtype and size)."""
    dtype, shape, begin = self.entries[name]
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    start = 0 if not shape else (rows.start or 0)
    view = memoryview(out.reshape(-1).view(np.uint8))
    offset, done = self.data_start + begin + start * row_bytes, 0
    while done < len(view):
      n = os.preadv(self.fd, [view[done:]], offset + done)
      if n <= 0:
        raise OSError(f'{name}: unexpected end of file after {done} of {len(view)} bytes')
      done += n


class HFTrajectory(base_trajectory.TrajectorySource):
  """θ₀ and checkpoints as HF directories (config.json + safetensors)."""

  format = 'hf'

  def __init__(self, base_dir: pathlib.Path, step_dirs: Mapping[int, pathlib.Path]):
    super().__init__(base_dir, step_dirs)
    self._maps: dict[base_trajectory.Step, dict[str, pathlib.Path]] = {}
    self._files: dict[pathlib.Path, _File] = {}
    self._lock = threading.RLock()
    self._base = self._entries(base_trajectory.BASE)

  def _map(self, step) -> dict[str, pathlib.Path]:
    """Tensor name -> safetensors file of one checkpoint directory."""
    if step not in self._maps:
      self._maps[step] = hf.SafetensorsReader(self.path(step)).files
    return self._maps[step]

  def _file_of(self, name: str, step) -> _File:
    with self._lock:  # streams read from several threads; open each file once
      path = self._map(step)[name]
      if path not in self._files:
        self._files[path] = _File(path)
      return self._files[path]

  def _entries(self, step) -> dict[str, tuple]:
    """name -> (dtype, shape) of every tensor saved at `step` (headers only)."""
    return {name: self._file_of(name, step).entries[name][:2] for name in self._map(step)}

  def tensor_names(self) -> list[str]:
    return list(self._base)

  def shape(self, name: str) -> tuple[int, ...]:
    return self._base[name][1]

  def dtype(self, name: str) -> np.dtype:
    return self._base[name][0]

  def stored_dtype(self, name: str, step) -> np.dtype:
    return self._file_of(name, step).entries[name][0]

  def step_shapes(self, step) -> dict[str, tuple[int, ...]]:
    return {k: v[1] for k, v in self._entries(step).items()}

  def read_into(self, name, step, rows: slice, out: np.ndarray) -> None:
    file = self._file_of(name, step)
    if file.entries[name][0] == out.dtype:
      file.read_into(name, rows, out)
    else:
      super().read_into(name, step, rows, out)

  def read(self, name, step, rows: slice = slice(None)) -> np.ndarray:
    file = self._file_of(name, step)
    dtype, shape, _ = file.entries[name]
    rows = slice(*rows.indices(shape[0])[:2]) if shape else slice(0, 1)
    out = np.empty((rows.stop - rows.start,) + shape[1:], dtype)
    file.read_into(name, rows, out)
    return out if shape else out.reshape(())

  def close(self) -> None:
    for f in self._files.values():
      os.close(f.fd)
    self._files.clear()

  @property
  def config_dir(self) -> pathlib.Path:
    """Where config.json and tokenizer files are copied from (θ₀'s directory)."""
    return self.base_dir


def is_hf_dir(path: pathlib.Path) -> bool:
  return (path / hf.SAFETENSORS_FILE).exists() or (path / hf.INDEX_FILE).exists()
