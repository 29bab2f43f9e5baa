"""Finds the checkpoints of a trajectory directory and opens them in their one format.

Layout (docs: configs/relex.py): `DIR/base/` holds θ₀ and `DIR/step_<k>/` (or `DIR/<k>/`,
the CheckpointManager layout of `core/checkpoint.py`) holds the checkpoint after step k.
Each entry is an HF safetensors directory or one of our Orbax checkpoints; all entries must
share one format (mixed formats name different tensors, so they are a ConfigError). Without
`base/`, a `step_0/` entry is θ₀. Other names (Orbax temp dirs, `unreadable-*`) are ignored.
"""
from __future__ import annotations

import pathlib
import re

from jaxpapers.core.config import ConfigError
from jaxpapers.papers.relex import base_trajectory
from jaxpapers.papers.relex import hf_trajectory
from jaxpapers.papers.relex import orbax_trajectory

_STEP_DIR = re.compile(r'(?:step_)?(\d+)')
SOURCES = {'hf': hf_trajectory.HFTrajectory, 'orbax': orbax_trajectory.OrbaxTrajectory}


def discover(root, base_dir=None) -> tuple[pathlib.Path, dict[int, pathlib.Path]]:
  """(θ₀ directory, {step: directory}) of a trajectory directory."""
  root = pathlib.Path(root)
  if not str(root) or not root.is_dir():
    raise ConfigError(f'config.trajectory_dir: {str(root)!r} is not a directory')
  steps: dict[int, pathlib.Path] = {}
  for entry in sorted(root.iterdir()):
    m = _STEP_DIR.fullmatch(entry.name)
    if not (m and entry.is_dir()):
      continue
    step = int(m.group(1))
    if step in steps:
      raise ConfigError(f'config.trajectory_dir: step {step} appears twice '
                        f'({steps[step].name} and {entry.name})')
    steps[step] = entry
  if base_dir:
    base = pathlib.Path(base_dir)
    if not base.is_dir():
      raise ConfigError(f'config.base_dir: {str(base)!r} is not a directory')
  elif (root / base_trajectory.BASE).is_dir():
    base = root / base_trajectory.BASE
  elif 0 in steps:
    base = steps.pop(0)
  else:
    raise ConfigError(f'config.trajectory_dir: {root} has no base/ (θ₀) directory and no '
                      'step_0/; set config.base_dir')
  if not steps:
    raise ConfigError(f'config.trajectory_dir: {root} has no step_<k>/ checkpoints')
  return base, steps


def detect_format(path: pathlib.Path, label: str) -> str:
  if hf_trajectory.is_hf_dir(path):
    return 'hf'
  if orbax_trajectory.is_orbax_dir(path):
    return 'orbax'
  raise ConfigError(f'trajectory {path}: {label} is neither an HF safetensors directory '
                    '(model.safetensors / index) nor an Orbax checkpoint (state/)')


def open_trajectory(root, base_dir=None) -> base_trajectory.TrajectorySource:
  """Opens `root` as an HF or Orbax trajectory; mixed formats raise ConfigError."""
  base, steps = discover(root, base_dir)
  labels = {base_trajectory.BASE: base, **{base_trajectory.step_label(s): p
                                           for s, p in steps.items()}}
  formats = {label: detect_format(path, label) for label, path in labels.items()}
  kinds = sorted(set(formats.values()))
  if len(kinds) > 1:
    by_kind = {k: [label for label, f in formats.items() if f == k] for k in kinds}
    detail = '; '.join(f'{k}: {", ".join(v[:4])}{" ..." if len(v) > 4 else ""}'
                       for k, v in by_kind.items())
    raise ConfigError(f'config.trajectory_dir: mixed checkpoint formats ({detail}); '
                      'every entry must be HF safetensors or every entry Orbax')
  return SOURCES[kinds[0]](base, steps)
