"""The interface RELEX reads a training trajectory through: θ₀ plus saved checkpoints.

A `TrajectorySource` gives per-tensor, per-step, row-sliced reads, so the extrapolator can
stream one tensor (and one chunk of it) at a time and never hold the whole trajectory
(../shared/papers/relex.md, "Reference implementation cost": the reference instead
precomputes every delta into fp16 memmaps and loads whole T×d matrices).

Tensor names are the checkpoint's own: HF keys (`model.layers.0.mlp.up_proj.weight`) for
safetensors trajectories, dotted param paths (`layers.0.mlp.up_proj.kernel`) for Orbax ones.
`rows` slices the leading dimension; a 0-d tensor is read whole.
"""
from __future__ import annotations

import abc
import pathlib
from typing import Mapping, Sequence

import numpy as np

from jaxpapers.core.config import ConfigError

BASE = 'base'  # the step label of θ₀ in error messages and `read`
Step = int | str


def step_label(step: Step) -> str:
  return BASE if step == BASE else f'step_{step}'


class TrajectorySource(abc.ABC):
  """θ₀ (`BASE`) and checkpoints at `steps`, each a directory in one format."""

  format: str = ''

  def __init__(self, base_dir: pathlib.Path, step_dirs: Mapping[int, pathlib.Path]):
    self.base_dir = pathlib.Path(base_dir)
    self.step_dirs = {int(s): pathlib.Path(p) for s, p in sorted(step_dirs.items())}

  @property
  def steps(self) -> tuple[int, ...]:
    """Saved step numbers, ascending (θ₀ excluded)."""
    return tuple(self.step_dirs)

  def path(self, step: Step) -> pathlib.Path:
    return self.base_dir if step == BASE else self.step_dirs[step]

  @abc.abstractmethod
  def tensor_names(self) -> list[str]:
    """Names of θ₀'s tensors, in the checkpoint's own order."""

  @abc.abstractmethod
  def shape(self, name: str) -> tuple[int, ...]:
    """θ₀'s shape of `name`."""

  @abc.abstractmethod
  def dtype(self, name: str) -> np.dtype:
    """θ₀'s stored dtype of `name`."""

  @abc.abstractmethod
  def read(self, name: str, step: Step, rows: slice = slice(None)) -> np.ndarray:
    """`name[rows]` at `step` (BASE for θ₀) in its stored dtype; only those rows are read."""

  def stored_dtype(self, name: str, step: Step) -> np.dtype:
    """Dtype of `name` as saved at `step` (checkpoints may differ from θ₀, e.g. fp32 base)."""
    del step
    return self.dtype(name)

  def read_into(self, name: str, step: Step, rows: slice, out: np.ndarray) -> None:
    """`read` into a caller's contiguous buffer (cast to its dtype); sources may avoid a copy."""
    out[...] = np.asarray(self.read(name, step, rows)).reshape(out.shape)

  @abc.abstractmethod
  def step_shapes(self, step: Step) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor saved at `step` (headers only, no data)."""

  def close(self) -> None:
    """Releases open file handles (optional)."""

  def check_steps(self, steps: Sequence[Step], names: Sequence[str]) -> None:
    """Every `names` tensor exists at every step with θ₀'s shape; else ConfigError.

    Reads headers only, so a bad checkpoint fails before any compute.
    """
    for step in steps:
      shapes = self.step_shapes(step)
      for name in names:
        if name not in shapes:
          raise ConfigError(f'trajectory {self.path(step)}: tensor {name!r} missing at '
                            f'{step_label(step)} (present in {step_label(BASE)})')
        if tuple(shapes[name]) != self.shape(name):
          raise ConfigError(f'trajectory {self.path(step)}: tensor {name!r} has shape '
                            f'{tuple(shapes[name])} at {step_label(step)} but '
                            f'{self.shape(name)} in {step_label(BASE)}')


def rows_of(shape: Sequence[int]) -> tuple[int, int]:
  """(leading rows, elements per row) of a tensor; a 0-d tensor is one row of one."""
  if len(shape) == 0:
    return 1, 1
  return int(shape[0]), int(np.prod(shape[1:], dtype=np.int64))
