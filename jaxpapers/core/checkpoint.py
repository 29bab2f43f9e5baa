"""Orbax checkpoints of the train state and the Grain iterator, saved together.

Layout: `<workdir>/checkpoints/<step>/{state,data}`; `state` is a pytree
`{'step', 'params', 'opt_state', 'rng'}` (StandardSave), `data` is the Grain iterator.
Saves are asynchronous with a keep-N policy; Orbax writes into a temporary directory and
renames it when complete, so a killed run never leaves a checkpoint that looks finished.

Restore order (see `restore_or_init` callers): own latest readable checkpoint, then an
explicit resume path, then params-only init (HF weights), then scratch. A checkpoint that
fails to restore is moved aside to `checkpoints/unreadable-<step>` (never deleted) and the
previous one is tried.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging


def abstract_like(tree, shardings=None):
  """ShapeDtypeStructs (with target shardings) to restore `tree`'s structure onto a mesh."""
  if shardings is None:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                       sharding=getattr(x, 'sharding', None)),
                        tree)
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      tree, shardings)


@dataclasses.dataclass
class Restored:
  step: int
  state: Any


class Checkpointer:
  """One CheckpointManager with named items `state` and (optionally) `data`."""

  def __init__(self, directory: str | os.PathLike, every: int = 100, keep: int = 3,
               async_save: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    self.every = every
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, save_interval_steps=1, create=True,
        enable_async_checkpointing=async_save)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def save(self, step: int, state, data_iter=None, force: bool = False) -> bool:
    """Saves when `step` is due (or `force`); returns whether a save started."""
    if not force and (self.every <= 0 or step % self.every):
      return False
    if step in self.manager.all_steps():
      return False
    items = {'state': ocp.args.StandardSave(state)}
    if data_iter is not None:
      items['data'] = grain.checkpoint.CheckpointSave(data_iter)
    return self.manager.save(step, args=ocp.args.Composite(**items), force=True)

  def restore(self, step: int, abstract_state, data_iter=None) -> Any:
    items = {'state': ocp.args.StandardRestore(abstract_state)}
    if data_iter is not None:
      items['data'] = grain.checkpoint.CheckpointRestore(data_iter)
    return self.manager.restore(step, args=ocp.args.Composite(**items))['state']

  def restore_latest(self, abstract_state, data_iter=None) -> Restored | None:
    """Newest readable checkpoint; unreadable ones are moved aside with a warning."""
    for step in reversed(self.all_steps()):
      try:
        return Restored(step, self.restore(step, abstract_state, data_iter))
      except Exception as e:  # any read/shape/decode failure means this step is unusable
        aside = self._move_aside(step)
        logging.warning('checkpoint step %d is unreadable (%s: %s); moved to %s, trying the '
                        'previous one', step, type(e).__name__, str(e).splitlines()[0][:200],
                        aside)
        print(f'warning: checkpoint step {step} is unreadable; moved to {aside}; '
              f'falling back to the previous checkpoint', flush=True)
    return None

  def _move_aside(self, step: int) -> pathlib.Path:
    src = self.directory / str(step)
    dst = self.directory / f'unreadable-{step}-{int(time.time())}'
    if jax.process_index() == 0 and src.exists():
      src.rename(dst)
    self.manager.reload()
    return dst

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
