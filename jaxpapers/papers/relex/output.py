"""Streams predicted checkpoints to disk: HF dirs (and optionally Orbax), committed atomically.

HF output is written piecewise: every file's safetensors header is laid out up front (all
shapes and dtypes are known from θ₀), then each predicted chunk is `pwrite`n at its offset,
so host memory holds one chunk, not a model (../shared/papers/relex.md asks for "one output
tensor" at most). A tensor whose HF layout is the transpose of the source layout (Orbax
kernels -> HF weights) is assembled whole first. Files are split past `max_shard_bytes`
with a `model.safetensors.index.json`, as `core.hf.save_hf_dir` does.

Atomicity mirrors `core.hf.atomic_dir`: everything is written into a `.tmp-<name>-*`
sibling that is renamed into place only after the last tensor, config.json and tokenizer
files are written, so a crash never leaves a directory that looks complete. Tied embeddings
(reference behaviour): the `embed_tokens` prediction is also written as `lm_head`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import struct
import tempfile
from typing import Mapping, Sequence

import numpy as np

from jaxpapers.core import hf

_ST_DTYPES = {'float64': 'F64', 'float32': 'F32', 'float16': 'F16', 'bfloat16': 'BF16',
              'int64': 'I64', 'int32': 'I32', 'int16': 'I16', 'int8': 'I8', 'uint8': 'U8',
              'bool': 'BOOL'}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
  name: str                  # source name (HF key or dotted Orbax path)
  shape: tuple[int, ...]     # source shape
  dtype: np.dtype            # dtype written
  hf_name: str               # HF key written
  transpose: bool = False    # HF layout = source layout transposed
  aliases: tuple[str, ...] = ()  # more HF keys written with the same data (tied lm_head)

  @property
  def hf_shape(self) -> tuple[int, ...]:
    return tuple(reversed(self.shape)) if self.transpose else self.shape


class SafetensorsWriter:
  """safetensors file(s) whose tensors arrive as row blocks, in any order."""

  def __init__(self, directory: pathlib.Path, entries: Sequence[tuple[str, np.dtype, tuple]],
               max_shard_bytes: int = 4 * 1024**3):
    groups, current, size = [], [], 0
    for entry in entries:
      nbytes = int(np.prod(entry[2], dtype=np.int64)) * np.dtype(entry[1]).itemsize
      if current and size + nbytes > max_shard_bytes:
        groups.append(current)
        current, size = [], 0
      current.append((*entry, nbytes))
      size += nbytes
    groups.append(current)
    names = ([hf.SAFETENSORS_FILE] if len(groups) == 1 else
             [f'model-{i + 1:05d}-of-{len(groups):05d}.safetensors' for i in range(len(groups))])
    self.directory, self.files, self.where, self.written = directory, names, {}, {}
    self._fds = []
    for fname, group in zip(names, groups):
      self._fds.append(self._open(directory / fname, group, len(self._fds)))

  def _open(self, path: pathlib.Path, group, index: int) -> int:
    header, offset = {'__metadata__': {'format': 'pt'}}, 0
    for name, dtype, shape, nbytes in group:
      header[name] = {'dtype': _ST_DTYPES[np.dtype(dtype).name], 'shape': list(shape),
                      'data_offsets': [offset, offset + nbytes]}
      self.where[name] = (index, offset, nbytes)
      self.written[name] = 0
      offset += nbytes
    raw = json.dumps(header, separators=(',', ':')).encode()
    raw += b' ' * (-len(raw) % 8)  # 8-byte aligned data, as safetensors writes it
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, struct.pack('<Q', len(raw)) + raw)
    base = 8 + len(raw)
    os.ftruncate(fd, base + offset)
    for name in self.where:
      if self.where[name][0] == index:
        self.where[name] = (index, base + self.where[name][1], self.where[name][2])
    return fd

  def write(self, name: str, block: np.ndarray, byte_start: int = 0) -> None:
    """Writes `block` (C order) at byte `byte_start` of tensor `name`'s data."""
    index, offset, nbytes = self.where[name]
    data = np.ascontiguousarray(block).view(np.uint8).reshape(-1)
    if byte_start + data.size > nbytes:
      raise ValueError(f'{name}: write past the end ({byte_start}+{data.size} > {nbytes})')
    os.pwrite(self._fds[index], memoryview(data), offset + byte_start)
    self.written[name] += data.size

  def discard(self) -> None:
    for fd in self._fds:
      os.close(fd)
    self._fds = []

  def close(self) -> None:
    short = [n for n, (_, _, nbytes) in self.where.items() if self.written[n] != nbytes]
    self.discard()
    if short:
      raise RuntimeError(f'safetensors output incomplete for {short[:5]}')
    if len(self.files) > 1:
      weight_map = {n: self.files[i] for n, (i, _, _) in self.where.items()}
      total = sum(nbytes for _, _, nbytes in self.where.values())
      (self.directory / hf.INDEX_FILE).write_text(json.dumps(
          {'metadata': {'total_size': total}, 'weight_map': weight_map}, indent=2))


def _stage(path: pathlib.Path) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.tmp-{path.name}-', dir=path.parent))
  umask = os.umask(0)
  os.umask(umask)
  tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the output is an ordinary directory
  return tmp


class HFOutput:
  """One predicted HF directory, staged until `commit`."""

  def __init__(self, path, specs: Sequence[TensorSpec], config: Mapping, copy_from,
               info: Mapping, max_shard_bytes: int = 4 * 1024**3):
    self.path, self.tmp = pathlib.Path(path), _stage(pathlib.Path(path))
    self.config, self.copy_from, self.info = dict(config), copy_from, dict(info)
    entries = [(n, s.dtype, s.hf_shape) for s in specs for n in (s.hf_name, *s.aliases)]
    self.writer = SafetensorsWriter(self.tmp, entries, max_shard_bytes)
    self.specs = {s.name: s for s in specs}
    self._assembling: dict[str, list] = {}  # transposed tensors: name -> [array, rows filled]

  def write(self, name: str, block: np.ndarray, row_start: int) -> None:
    """Writes source rows [row_start, row_start + len(block)). A transposed tensor's rows are
    columns of what is written: they are gathered and the whole tensor written at its last."""
    spec = self.specs[name]
    if spec.transpose:
      whole, filled = self._assembling.setdefault(name, [np.empty(spec.shape, spec.dtype), 0])
      whole[row_start:row_start + len(block)] = block
      filled += len(block)
      if filled < spec.shape[0]:
        self._assembling[name][1] = filled
        return
      del self._assembling[name]
      block, row_start = np.ascontiguousarray(whole.T), 0
    row_bytes = int(np.prod(spec.hf_shape[1:], dtype=np.int64)) * spec.dtype.itemsize
    for key in (spec.hf_name, *spec.aliases):
      self.writer.write(key, block.astype(spec.dtype, copy=False), row_start * row_bytes)

  def commit(self) -> pathlib.Path:
    self.writer.close()
    (self.tmp / 'config.json').write_text(json.dumps(self.config, indent=2, sort_keys=True))
    (self.tmp / 'relex.json').write_text(json.dumps(self.info, indent=2, sort_keys=True))
    if self.copy_from is not None:
      hf.copy_tokenizer_files(self.copy_from, self.tmp)
    hf.commit_dir(self.tmp, self.path)
    return self.path

  def abort(self) -> None:
    self.writer.discard()
    shutil.rmtree(self.tmp, ignore_errors=True)


class OrbaxOutput:
  """One predicted `{'params': ...}` StandardSave checkpoint at `<dir>/<step>/state`."""

  def __init__(self, path, specs: Sequence[TensorSpec]):
    self.path, self.tmp = pathlib.Path(path), _stage(pathlib.Path(path))
    self.arrays = {s.name: np.empty(s.shape, s.dtype) for s in specs}

  def write(self, name: str, block: np.ndarray, row_start: int) -> None:
    target = self.arrays[name]
    if target.ndim == 0:
      target[...] = block.reshape(())
    else:
      target[row_start:row_start + len(block)] = block

  def commit(self) -> pathlib.Path:
    import orbax.checkpoint as ocp  # local: only Orbax output needs it
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(self.tmp / 'state', {'params': nest(self.arrays)})
    checkpointer.wait_until_finished()
    hf.commit_dir(self.tmp, self.path)
    return self.path

  def abort(self) -> None:
    shutil.rmtree(self.tmp, ignore_errors=True)


def nest(flat: Mapping[str, np.ndarray]) -> dict:
  """{'layers.0.mlp.kernel': x} -> {'layers': {0: {'mlp': {'kernel': x}}}} (int layer keys)."""
  out: dict = {}
  for name, value in flat.items():
    node = out
    *parents, leaf = [int(p) if p.isdigit() else p for p in name.split('.')]
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return out
