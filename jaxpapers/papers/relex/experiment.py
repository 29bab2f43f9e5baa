"""The `relex` experiment: config validation, then the streaming extrapolator.

`python -m jaxpapers.launch --config=configs/relex.py --workdir=W --config.trajectory_dir=DIR
--config.history_steps=N --config.target_steps=M` (configs/relex.py documents every field).
Validation names the field and the value received before anything is read; mistakes in the
trajectory itself (missing steps, shape mismatches, non-finite values, mixed formats) are
reported as ConfigError naming the step and tensor (see plan.py, base_trajectory.py).
"""
from __future__ import annotations

import re

from jaxpapers.core import config as config_lib
from jaxpapers.core import registry
from jaxpapers.core.config import require
from jaxpapers.papers.relex import extrapolate
from jaxpapers.papers.relex import fit as fit_lib
from jaxpapers.papers.relex import plan as plan_lib
from jaxpapers.papers.relex import toy_experiments  # noqa: F401  (registers relex_grpo_toy)

DTYPES = ('bfloat16', 'float32', 'float16')


def validate(config) -> None:
  """Checks every field before any checkpoint is read; raises ConfigError naming the field."""
  require(bool(config.trajectory_dir), 'trajectory_dir', 'is required (a dir with base/ and '
          'step_<k>/ checkpoints)')
  require(config.history_steps >= 1, 'history_steps',
          f'must be >= 1 (the last observed step), got {config.history_steps}')
  plan_lib.parse_targets(config.target_steps)
  config_lib.check_choice(config, 'mode', plan_lib.MODES)
  config_lib.check_choice(config, 'fit', fit_lib.FITS.names())
  config_lib.check_choice(config, 'output_dtype', DTYPES)
  config_lib.check_choice(config, 'delta_dtype', ('float32', 'float16'))
  require(config.rank >= 1 or config.rank == -1, 'rank', f'must be >= 1 or -1, got {config.rank}')
  require(config.degree >= 1, 'degree', f'must be >= 1, got {config.degree}')
  require(config.window >= 1 or config.window == -1, 'window',
          f'must be >= 1 or -1 (all), got {config.window}')
  require(config.refit_every >= 1 or config.refit_every == -1, 'refit_every',
          f'must be >= 1 or -1 (fit once), got {config.refit_every}')
  require(config.refit_every == -1 or config.mode == 'extrapolate', 'refit_every',
          f'{config.refit_every} needs mode=extrapolate, got {config.mode!r}')
  config_lib.check_positive(config, 'step_scale', 'shard_min_size')
  require(config.chunk_mb >= 0, 'chunk_mb', f'must be >= 0 (0 = auto), got {config.chunk_mb}')
  require(config.chunk_size >= 0, 'chunk_size', f'must be >= 0, got {config.chunk_size}')
  require(config.streams >= 0, 'streams', f'must be >= 0 (0 = auto), got {config.streams}')
  require(config.prefetch >= 0, 'prefetch', f'must be >= 0, got {config.prefetch}')
  require(config.plot_tensors >= 0, 'plot_tensors', f'must be >= 0, got {config.plot_tensors}')
  require(config.save_hf or config.save_orbax, 'save_hf', 'False and save_orbax False: '
          'nothing would be written')
  try:
    re.compile(config.skip_pattern)
  except re.error as e:
    raise config_lib.ConfigError(f'config.skip_pattern: {config.skip_pattern!r} is not a '
                                 f'regex ({e})') from None


@registry.experiment('relex')
def run(config, workdir: str) -> dict:
  """Validates, then extrapolates every target; returns the run summary."""
  validate(config)
  return extrapolate.run(config, workdir)
