"""Chunking of one tensor along d, and a background reader that keeps the device fed.

A tensor of shape (r, ...) is cut along its leading dimension into chunks of at most
`chunk_elems` elements (at least one row), so every read is a contiguous row range of the
stored tensor. A chunk that goes to a sharded mesh is zero-padded to a multiple of the
device count (zero deltas add nothing to G; padded outputs are dropped).

`Prefetcher` reads the requested chunks (θ₀ plus the same rows at each step) in a thread,
places them on their device(s), and hands them over in request order with at most `depth`
waiting, so reading overlaps the jitted Gram/projection steps and host memory stays at a
few chunks.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Iterable, Iterator, Sequence

import jax
import numpy as np

from jaxpapers.papers.relex import base_trajectory


@dataclasses.dataclass(frozen=True)
class Chunk:
  name: str
  rows: slice     # leading-dim rows of the stored tensor
  size: int       # elements in the chunk
  padded: int     # elements after padding for the mesh
  index: int      # chunk number within the tensor
  count: int      # chunks in the tensor


def chunks(name: str, shape: Sequence[int], chunk_elems: int, multiple: int = 1) -> list[Chunk]:
  """Row-range chunks of one tensor, each ≤ `chunk_elems` elements (≥ 1 row)."""
  num_rows, row_size = base_trajectory.rows_of(shape)
  per = max(1, chunk_elems // max(row_size, 1))
  starts = list(range(0, num_rows, per)) or [0]
  out = []
  for i, start in enumerate(starts):
    stop = min(start + per, num_rows)
    size = (stop - start) * row_size
    out.append(Chunk(name, slice(start, stop), size, -(-size // multiple) * multiple, i,
                     len(starts)))
  return out


@dataclasses.dataclass(frozen=True)
class Request:
  chunk: Chunk
  steps: tuple      # steps whose rows to read, in row order
  sharding: object  # where to place the vectors


@dataclasses.dataclass
class Loaded:
  chunk: Chunk
  theta0: jax.Array              # [padded] θ₀ chunk, stored dtype
  rows: tuple[jax.Array, ...]    # one [padded] vector per requested step
  nbytes: int                    # bytes read from the checkpoints


def load(source: base_trajectory.TrajectorySource, request: Request) -> Loaded:
  """Reads one chunk at θ₀ and every requested step and places it on device."""
  chunk, nbytes, out = request.chunk, 0, []
  for step in (base_trajectory.BASE, *request.steps):
    x = np.ascontiguousarray(source.read(chunk.name, step, chunk.rows)).reshape(-1)
    nbytes += x.nbytes
    if chunk.padded != chunk.size:
      x = np.pad(x, (0, chunk.padded - chunk.size))
    out.append(jax.device_put(x, request.sharding))
  return Loaded(chunk, out[0], tuple(out[1:]), nbytes)


class Prefetcher:
  """Iterates `load(source, r)` over `requests` in order, reading up to `depth` ahead."""

  _DONE = object()

  def __init__(self, source, requests: Iterable[Request], depth: int = 1):
    self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, args=(source, iter(requests)),
                                    daemon=True, name='relex-reader')
    self._thread.start()

  def _put(self, item) -> bool:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return True
      except queue.Full:
        continue
    return False

  def _run(self, source, requests: Iterator[Request]) -> None:
    try:
      for request in requests:
        if not self._put(load(source, request)):
          return
      self._put(self._DONE)
    except BaseException as e:  # handed to the consumer, which re-raises it
      self._put(e)

  def __iter__(self):
    return self

  def __next__(self) -> Loaded:
    item = self._queue.get()
    if item is self._DONE:
      raise StopIteration
    if isinstance(item, BaseException):
      raise item
    return item

  def close(self) -> None:
    self._stop.set()
    self._thread.join(timeout=10)
