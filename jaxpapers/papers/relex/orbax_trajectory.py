"""Trajectory of our Orbax checkpoints, read one array (and one row range) at a time.

Layout written by `core/checkpoint.py`: `<ckpt>/<step>/state/` is a StandardSave pytree
`{'params': {...}, 'opt_state', 'step', 'rng'}`; only `params` is read. A trajectory entry
(`base/`, `step_<k>/` or `<k>/`) may be that `state/` directory itself, its parent, or a
CheckpointManager directory holding exactly one step.

Reads bypass a full restore: shapes and dtypes come from Orbax's checkpoint metadata, and
each array is opened as its own TensorStore (zarr / zarr3 inside OCDBT, exactly the spec
Orbax writes) and indexed by rows, so only the chunks covering those rows are read. Choice:
Orbax stores an array as one compressed chunk unless the saver sets a chunk size, in which
case a row slice still decodes the whole array (host memory stays one array; time grows
with the number of RELEX chunks of that tensor).
"""
from __future__ import annotations

import collections
import pathlib
import threading
from typing import Mapping

import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
import numpy as np

from jaxpapers.core.config import ConfigError
from jaxpapers.papers.relex import base_trajectory

_OPEN_TENSORS = 4  # tensors whose TensorStore handles stay open (one per stream at a time)

PARAMS = 'params'
_MARKERS = ('_METADATA', '_CHECKPOINT_METADATA')


def _is_state_dir(path: pathlib.Path) -> bool:
  return any((path / m).exists() for m in _MARKERS) and not (path / 'state').is_dir()


def state_dir(path: pathlib.Path) -> pathlib.Path | None:
  """The StandardSave directory of one checkpoint entry, or None if it is not Orbax."""
  path = pathlib.Path(path)
  if (path / 'state').is_dir() and _is_state_dir(path / 'state'):
    return path / 'state'
  if _is_state_dir(path):
    return path
  numbered = sorted(p for p in path.iterdir() if p.is_dir() and p.name.isdigit()
                    and (p / 'state').is_dir()) if path.is_dir() else []
  if len(numbered) > 1:
    raise ConfigError(f'trajectory {path}: holds several Orbax steps '
                      f'{[p.name for p in numbered]}; point each step_<k>/ at one checkpoint')
  return numbered[0] / 'state' if numbered else None


def _leaves(tree, prefix: str = '') -> dict[str, object]:
  out = {}
  for key, value in tree.items():
    name = f'{prefix}{key}'
    if isinstance(value, Mapping):
      out.update(_leaves(value, name + '.'))
    elif hasattr(value, 'shape') and hasattr(value, 'dtype'):
      out[name] = value
  return out


def _param_metadata(state: pathlib.Path) -> tuple[dict[str, object], bool]:
  """({dotted param name: ArrayMetadata}, use_zarr3) of one StandardSave directory."""
  import orbax.checkpoint as ocp  # local: HF-only runs skip Orbax's import time and memory
  meta = ocp.StandardCheckpointer().metadata(state)
  item = getattr(meta, 'item_metadata', meta)
  tree = getattr(item, 'tree', item)
  if PARAMS not in tree:
    raise ConfigError(f'trajectory {state}: Orbax checkpoint has no {PARAMS!r} item '
                      f'(top-level keys: {sorted(tree)})')
  return _leaves(tree[PARAMS]), bool(getattr(item, 'use_zarr3', False))


class OrbaxTrajectory(base_trajectory.TrajectorySource):
  """θ₀ and checkpoints as Orbax StandardSave directories of `{'params': ...}`."""

  format = 'orbax'

  def __init__(self, base_dir: pathlib.Path, step_dirs: Mapping[int, pathlib.Path]):
    super().__init__(base_dir, step_dirs)
    self._states = {s: state_dir(self.path(s)) for s in (base_trajectory.BASE, *self.steps)}
    self._meta: dict[object, tuple[dict, bool]] = {}
    base, _ = self._metadata(base_trajectory.BASE)
    self._shapes = {k: tuple(v.shape) for k, v in base.items()}
    self._dtypes = {k: np.dtype(v.dtype) for k, v in base.items()}
    self._open = collections.OrderedDict()  # name -> {step: open TensorStore}, recent last
    self._lock = threading.RLock()

  def _metadata(self, step):
    if step not in self._meta:
      self._meta[step] = _param_metadata(self._states[step])
    return self._meta[step]

  def tensor_names(self) -> list[str]:
    return list(self._shapes)

  def shape(self, name: str) -> tuple[int, ...]:
    return self._shapes[name]

  def dtype(self, name: str) -> np.dtype:
    return self._dtypes[name]

  def stored_dtype(self, name: str, step) -> np.dtype:
    leaves, _ = self._metadata(step)
    return np.dtype(leaves[name].dtype)

  def step_shapes(self, step) -> dict[str, tuple[int, ...]]:
    leaves, _ = self._metadata(step)
    return {k: tuple(v.shape) for k, v in leaves.items()}

  def _store(self, name: str, step):
    import tensorstore as ts  # local, as Orbax above
    with self._lock:  # streams read from several threads
      handles = self._open.setdefault(name, {})
      self._open.move_to_end(name)
      if len(self._open) > _OPEN_TENSORS:  # keep handles of the tensors being read only
        self._open.popitem(last=False)
      if step not in handles:
        leaves, zarr3 = self._metadata(step)
        handles[step] = ts.open(_read_spec(self._states[step], leaves[name].name, zarr3),
                                read=True).result()
      return handles[step]

  def read(self, name, step, rows: slice = slice(None)) -> np.ndarray:
    store = self._store(name, step)
    view = store if store.rank == 0 else store[rows]
    return np.asarray(view.read().result())

  def close(self) -> None:
    self._open.clear()


def _read_spec(state: pathlib.Path, array_name: str, zarr3: bool) -> dict:
  """TensorStore spec of one array, matching how Orbax wrote it (OCDBT or per-array dirs)."""
  base = f'file://{state.absolute()}/'
  if (state / 'manifest.ocdbt').exists():
    kvstore = {'driver': 'ocdbt', 'base': base, 'path': array_name}
  else:
    kvstore = f'{base}{array_name}'
  return {'driver': 'zarr3' if zarr3 else 'zarr', 'kvstore': kvstore}


def is_orbax_dir(path: pathlib.Path) -> bool:
  return state_dir(path) is not None
