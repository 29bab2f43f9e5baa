"""RELEX experiments on a GRPO toy trajectory: predicted vs real checkpoints, held-out accuracy.

Issue "RELEX", Experiments (../shared/papers/relex.md). For every N in `history_steps`:
  1. run the `relex` experiment once per variant (VARIANTS: rank 1 / 2 / 5, polynomial fit,
     window, and rank T = per-parameter OLS of the raw deltas) on the saved steps <= N,
     writing each prediction as an Orbax `{'params'}` checkpoint;
  2. score greedy held-out accuracy with the GRPO runner's `evaluate` on the run's own eval
     prompts, for every real checkpoint and every prediction;
  3. measure, in parameter space, how far each prediction lands from the real checkpoint at
     its step, relative to the last observed one (ratio < 1: closer than standing still), and
     the cosine between the predicted and the real move from step N;
  4. denoising analysis from the rank-1 run's report: S₁²/ΣS² per tensor and the in- and
     out-of-sample R² of c_t (held-out = every saved step after N, projected on v).
Writes W/results.json, W/results.md, W/accuracy.png and W/coefficients_h<N>.png; the
RELEX outputs stay under W/relex/h<N>/<variant>/.

Choices where the paper is silent: predictions are kept in fp32 (the reference writes
bf16) so only the fit is compared; "per-parameter linear extrapolation" is RELEX with rank
T: OLS is linear, so fitting every coefficient of the full basis and mixing back equals an
OLS line through each raw parameter's deltas (same window and index as rank 1).
"""
from __future__ import annotations

import json
import pathlib
import shutil
import time

import jax
import numpy as np
from flax import nnx

from jaxpapers.core import config as config_lib
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core.config import require
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.runners import grpo as grpo_runner
from jaxpapers.papers.relex import base_trajectory
from jaxpapers.papers.relex import orbax_trajectory
from jaxpapers.papers.relex import toy_report
from jaxpapers.papers.relex import trajectory as trajectory_lib

MAIN = 'rank1'
VARIANTS = {  # name -> overrides of configs/relex.py
    'rank1': {},                    # the method: rank 1, linear fit, all observed steps
    'rank2': {'rank': 2},
    'rank5': {'rank': 5},           # clamped to T when fewer steps are observed
    'per_parameter': {'rank': -1},  # rank T: OLS line through every raw delta (baseline)
    'polynomial': {'fit': 'polynomial'},
    'window2': {'window': 2},       # fit on the last 2 observed coefficients
    'window3': {'window': 3},
}


def _steps(config, field: str) -> list[int]:
  value = str(config[field])
  try:
    out = sorted({int(v) for v in value.split(',') if v.strip()})
  except ValueError:
    raise config_lib.ConfigError(f'config.{field}: {value!r} is not a comma-separated list '
                                 'of integers') from None
  require(bool(out), field, 'is empty')
  return out


def validate(config) -> None:
  require(bool(config.grpo_workdir), 'grpo_workdir', 'is required (the GRPO run workdir, '
          'with checkpoints/<k>/state)')
  _steps(config, 'history_steps')
  _steps(config, 'target_steps')
  names = [v.strip() for v in config.variants.split(',') if v.strip()]
  require(bool(names), 'variants', 'is empty')
  bad = [v for v in names if v not in VARIANTS]
  require(not bad, 'variants', f'unknown {bad}; valid: {", ".join(VARIANTS)}')


class Evaluator:
  """Reads Orbax params checkpoints and scores them with the GRPO runner's greedy eval."""

  def __init__(self, grpo_config, mesh):
    self.config, self.mesh = grpo_config, mesh
    mcfg = families.config_for(grpo_config.model)
    self.graphdef, state, self.like = hf.abstract_params(
        lambda: layers.Decoder(mcfg, nnx.Rngs(params=grpo_config.seed)))
    self.shardings = mesh_lib.param_shardings(state, mesh)
    task = grpo_runner.TASKS.get(grpo_config.task.name)
    # The runner's held-out prompts: same task config, count and seed offset.
    self.prompts = task(grpo_config.task, grpo_config.task.num_eval,
                        grpo_config.seed + grpo_runner.EVAL_SEED_OFFSET, 'test')
    self._flat: dict[str, dict[str, np.ndarray]] = {}

  def flat(self, path) -> dict[str, np.ndarray]:
    """{dotted param name: fp32 array} of one checkpoint (`<k>/` or its `state/`), cached."""
    key = str(path)
    if key not in self._flat:
      source = orbax_trajectory.OrbaxTrajectory(pathlib.Path(path), {})
      try:
        self._flat[key] = {n: np.asarray(source.read(n, base_trajectory.BASE), np.float32)
                           for n in source.tensor_names()}
      finally:
        source.close()
    return self._flat[key]

  def accuracy(self, path) -> float:
    params = hf.unflatten_like(self.flat(path), self.like)
    params = jax.tree.map(lambda x, a: np.asarray(x, a.dtype), params, self.like)
    params = jax.device_put(params, self.shardings)
    return grpo_runner.evaluate(params, self.graphdef, self.prompts, self.config,
                                self.mesh)['eval_accuracy']


def distances(pred, real, last, names) -> dict:
  """Parameter-space errors of a prediction of the checkpoint `real` made at `last`.

  Returns ratio = ‖θ̂ − θ_M‖ / ‖θ_N − θ_M‖ (< 1: closer than the last observed checkpoint)
  and cos = cos(θ̂ − θ_N, θ_M − θ_N) (does the predicted move point at the real one).
  """
  flat = lambda tree: np.concatenate([np.ravel(tree[n]).astype(np.float64) for n in names])
  p, r, n = flat(pred), flat(real), flat(last)
  move, real_move = p - n, r - n
  denom = np.linalg.norm(real_move)
  return {'ratio': float(np.linalg.norm(p - r) / denom) if denom > 0 else float('nan'),
          'cos': float(move @ real_move / max(np.linalg.norm(move) * denom, 1e-30))}


def _relex_config(config, traj_dir, history: int, targets, variant: str, plot: bool):
  relex_config = config_lib.load_file('configs/relex.py')
  relex_config.update(dict(
      trajectory_dir=str(traj_dir), history_steps=history,
      target_steps=','.join(map(str, targets)), degree=config.degree,
      output_dtype=config.output_dtype, save_hf=False, save_orbax=True, project_heldout=True,
      plot_tensors=config.plot_tensors if plot else 0, chunk_mb=config.chunk_mb))
  relex_config.mesh = config.mesh
  relex_config.update(VARIANTS[variant])
  return relex_config


def _history(config, workdir, traj_dir, steps, history, targets, variants, ev) -> dict:
  """All variants for one N: accuracies, distances and the rank-1 denoising analysis."""
  names = sorted(ev.flat(steps[0]))
  rows, denoising = [], None
  for variant in variants:
    out = workdir / 'relex' / f'h{history}' / variant
    t0 = time.time()
    registry.EXPERIMENTS.get('relex')(
        _relex_config(config, traj_dir, history, targets, variant, variant == MAIN), out)
    for target in targets:
      pred = out / 'extrapolated_orbax' / str(target)
      rows.append({'variant': variant, 'target': target, 'accuracy': ev.accuracy(pred),
                   **distances(ev.flat(pred), ev.flat(steps[target]), ev.flat(steps[history]),
                               names)})
    print(f'h{history} {variant}: ' + ', '.join(
        f"{r['target']}: acc {r['accuracy']:.3f} ratio {r['ratio']:.3f}"
        for r in rows if r['variant'] == variant) + f' ({time.time() - t0:.1f} s)', flush=True)
    if variant == MAIN:
      report = json.loads((out / 'relex_report.json').read_text())
      denoising = toy_report.denoising(report['tensors'], targets[-1])
      if (out / 'relex_coefficients.png').exists():
        shutil.copy(out / 'relex_coefficients.png', workdir / f'coefficients_h{history}.png')
  fit_steps = [s for s in steps if 0 < s <= history]
  return {'history': history, 'observed_steps': fit_steps, 'targets': targets,
          'effective_rank': {v: _effective_rank(VARIANTS[v], len(fit_steps)) for v in variants},
          'predictions': rows, 'denoising': denoising}


def _effective_rank(overrides: dict, t: int) -> int:
  rank = overrides.get('rank', 1)
  return t if rank == -1 else min(rank, t)


@registry.experiment('relex_grpo_toy')
def run(config, workdir: str) -> dict:
  validate(config)
  start, workdir = time.time(), pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  grpo_config = config_lib.load_file(f'configs/{config.grpo_config}.py',
                                     config.grpo_config_arg or None)
  traj_dir = pathlib.Path(config.grpo_workdir) / 'checkpoints'
  base, saved = trajectory_lib.discover(traj_dir)
  steps = dict(sorted({0: base, **saved}.items()))
  variants = [v.strip() for v in config.variants.split(',') if v.strip()]
  mesh = mesh_lib.make_mesh(config.mesh)
  ev = Evaluator(grpo_config, mesh)

  # Every real checkpoint, for the accuracy-vs-step curve and the baselines.
  real = {s: ev.accuracy(p) for s, p in steps.items()}
  print('real accuracy: ' + ', '.join(f'{s}: {a:.3f}' for s, a in real.items()), flush=True)
  histories = []
  for history in _steps(config, 'history_steps'):
    require(history in steps and history > 0, 'history_steps',
            f'{history} is not a saved step > 0 (saved: {sorted(steps)})')
    targets = [m for m in _steps(config, 'target_steps') if m > history and m in steps]
    require(bool(targets), 'target_steps', f'no saved step after N={history} among '
            f'{config.target_steps} (saved: {sorted(steps)})')
    histories.append(_history(config, workdir, traj_dir, steps, history, targets, variants,
                              ev))

  results = {'grpo_workdir': str(config.grpo_workdir), 'variants': variants,
             'real_accuracy': {str(s): a for s, a in real.items()},
             'logged_eval_accuracy': toy_report.logged_eval(config.grpo_workdir),
             'histories': histories, 'wall_s': round(time.time() - start, 1)}
  metrics_lib.write_json(workdir / 'results.json', results)
  (workdir / 'results.md').write_text(toy_report.markdown(results))
  toy_report.plot_accuracy(results, workdir / 'accuracy.png')
  print(toy_report.markdown(results), flush=True)
  return results
