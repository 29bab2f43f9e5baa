"""Chunking of one tensor along d, and a background reader that keeps the device fed.

A tensor of shape (r, ...) is cut along its leading dimension into chunks of at most
`chunk_elems` elements (at least one row), so every read is a contiguous row range of the
stored tensor. A chunk is zero-padded so that each device's share is a whole number of Gram
blocks (zero deltas add nothing to G; padded outputs are dropped).

`Prefetcher` reads the requested chunks (θ₀ plus the same rows at each step, stacked into
one [R, padded] block) in a thread, places them on their device(s), and hands them over in
request order with at most `depth` waiting, so reading overlaps the jitted Gram/projection
steps and host memory stays at a few chunks. Host buffers come back through `BufferPool` once
a chunk is done (`Loaded.release`), so reads land in memory that is already mapped. On CPU a
bf16 chunk is also placed as uint32 pairs of the same memory, which the Gram step reads.
"""
from __future__ import annotations

import collections
import dataclasses
import mmap
import queue
import threading
from typing import Iterable, Iterator, Sequence

import jax
import ml_dtypes
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


def padded_size(size: int, chunk_elems: int, devices: int = 1, block: int = 1) -> int:
  """Chunk size after padding, from a small set of sizes so few shapes get compiled.

  Sizes above chunk_elems/8 round up to a multiple of chunk_elems/8 (≤ 12.5% waste, 8
  shapes); smaller ones to a power of two. Each of `devices` shards is then a whole number
  of `block`s, or a single short block.
  """
  unit = devices * block
  quantum = max(unit, -(-chunk_elems // (8 * unit)) * unit)
  if size > quantum // 2:
    return -(-size // quantum) * quantum
  target = 1 << max(0, (size - 1).bit_length())
  step = unit if target >= unit else devices
  return -(-target // step) * step


def chunks(name: str, shape: Sequence[int], chunk_elems: int, devices: int = 1,
           block: int = 1) -> list[Chunk]:
  """Row-range chunks of one tensor, each about ≤ `chunk_elems` elements (≥ 1 row).

  Rows are split evenly over the fewest chunks that fit, so chunks of a tensor share one
  padded shape.
  """
  num_rows, row_size = base_trajectory.rows_of(shape)
  count = max(1, min(num_rows, -(-num_rows * row_size // max(chunk_elems, 1))))
  per = -(-num_rows // count)
  starts = list(range(0, num_rows, per)) or [0]
  padded = padded_size(per * row_size, chunk_elems, devices, block)
  return [Chunk(name, slice(start, min(start + per, num_rows)),
                (min(start + per, num_rows) - start) * row_size, padded, i, len(starts))
          for i, start in enumerate(starts)]


@dataclasses.dataclass(frozen=True)
class Request:
  chunk: Chunk
  steps: tuple          # steps whose rows to read, in row order
  dtype: np.dtype       # dtype of the row block (the steps' stored dtype, or float32)
  sharding: object      # where θ₀'s [padded] vector goes
  rows_sharding: object # where the [R, padded] row block goes
  bf16_pairs: bool = False  # also place bf16 θ₀ and rows as uint32 pairs (`gram_inputs`)


@dataclasses.dataclass
class Loaded:
  chunk: Chunk
  theta0: jax.Array     # [padded] θ₀ chunk, stored dtype
  rows: jax.Array       # [R, padded] the chunk at each requested step
  nbytes: int           # bytes read from the checkpoints
  pool: 'BufferPool | None' = None
  buffers: tuple = ()   # the host buffers behind theta0 / rows
  pairs: tuple = ()     # (θ₀, rows) as uint32 bf16 pairs, aliasing the same host buffers

  @property
  def gram_inputs(self) -> tuple[jax.Array, jax.Array]:
    """What the Gram step reads: the uint32 pairs when placed, else θ₀ and rows."""
    return self.pairs or (self.theta0, self.rows)

  def release(self) -> None:
    """Frees the device arrays and hands the host buffers back for the next reads. Only
    after every computation reading them has finished (the caller has synced on it)."""
    for a in (self.theta0, self.rows, *self.pairs):
      a.delete()
    if self.pool is not None:
      self.pool.give(*self.buffers)
    self.buffers = ()


def block_dtype(source: base_trajectory.TrajectorySource, name: str, steps) -> np.dtype:
  """The steps' common stored dtype; float32 when checkpoints were saved in several."""
  dtypes = {np.dtype(source.stored_dtype(name, s)) for s in steps}
  return dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float32)


def host_buffer(shape: tuple[int, ...], dtype) -> np.ndarray:
  """Uninitialised array in its own anonymous memory map.

  Page alignment lets XLA:CPU adopt the buffer without a copy (measured: device_put of an
  80 MB unaligned array ~100 ms, aligned ~0.1 ms), and unmapping on release returns the
  memory at once instead of leaving it to malloc's arenas (RSS creep across chunks).
  """
  nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
  if nbytes == 0:
    return np.empty(shape, dtype)
  return np.frombuffer(mmap.mmap(-1, nbytes), np.uint8).view(dtype).reshape(shape)


class BufferPool:
  """Host buffers handed back after use, so the next reads land in pages already mapped.

  A fresh anonymous map page-faults on every 4 KiB it is written: measured, reads into
  fresh maps ran at 2 GB/s and into reused ones at 8 GB/s. At most `max_bytes` are kept.
  """

  def __init__(self, max_bytes: int):
    self._free = collections.defaultdict(list)
    self._lock = threading.Lock()
    self._bytes, self._max = 0, max_bytes

  def take(self, shape: tuple[int, ...], dtype) -> np.ndarray:
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with self._lock:
      free = self._free.get(nbytes)
      if free:
        self._bytes -= nbytes
        return free.pop().view(dtype).reshape(shape)
    return host_buffer(shape, dtype)

  def give(self, *arrays: np.ndarray) -> None:
    with self._lock:
      for a in arrays:
        if a.nbytes and self._bytes + a.nbytes <= self._max:
          self._free[a.nbytes].append(a.reshape(-1).view(np.uint8))
          self._bytes += a.nbytes


def load(source: base_trajectory.TrajectorySource, request: Request,
         pool: BufferPool | None = None) -> Loaded:
  """Reads one chunk at θ₀ and every requested step into one block and places it on device.

  Each row is read straight into the block. Buffers come fresh or from `pool` (given back
  only by `Loaded.release`) and are never written while a device array may alias them.
  """
  chunk, size = request.chunk, request.chunk.size
  new = pool.take if pool is not None else host_buffer
  theta0 = new((chunk.padded,), source.dtype(chunk.name))
  source.read_into(chunk.name, base_trajectory.BASE, chunk.rows, theta0[:size])
  theta0[size:] = 0
  rows = new((len(request.steps), chunk.padded), request.dtype)
  rows[:, size:] = 0
  for i, step in enumerate(request.steps):
    source.read_into(chunk.name, step, chunk.rows, rows[i, :size])
  nbytes = theta0[:size].nbytes + sum(
      size * np.dtype(source.stored_dtype(chunk.name, s)).itemsize for s in request.steps)
  pairs = ()
  shards = len(request.sharding.device_set)
  if (request.bf16_pairs and theta0.dtype == rows.dtype == ml_dtypes.bfloat16
      and chunk.padded % (2 * shards) == 0):  # views: no copy on host or CPU device
    pairs = (jax.device_put(theta0.view(np.uint32), request.sharding),
             jax.device_put(rows.view(np.uint32), request.rows_sharding))
  return Loaded(chunk, jax.device_put(theta0, request.sharding),
                jax.device_put(rows, request.rows_sharding), nbytes, pool, (theta0, rows),
                pairs)


class Prefetcher:
  """Iterates `load(source, r)` over `requests` in order, reading up to `depth` ahead."""

  _DONE = object()

  def __init__(self, source, requests: Iterable[Request], depth: int = 1,
               pool: BufferPool | None = None):
    self._pool = pool
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
        if not self._put(load(source, request, self._pool)):
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
