"""The `relex_grpo_toy` experiment end to end on a synthetic, exactly rank-1 linear trajectory.

θ_t = θ₀ + t·v for the `grpo_toy.py:test` model, saved as Orbax checkpoints in the GRPO
runner's layout (`checkpoints/<k>/state`): every variant must predict the real checkpoint,
so its accuracy equals the real one and the parameter distances vanish.
"""
import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

from configs import grpo_toy
from configs import relex_grpo_toy
from jaxpapers import launch
from jaxpapers.core import config as config_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.papers.relex import toy_experiments

STEPS = range(0, 13, 2)


@pytest.fixture(scope='module')
def linear_run(tmp_path_factory):
  """A GRPO-layout workdir whose checkpoints move along one direction per tensor."""
  root = tmp_path_factory.mktemp('grpo_linear')
  mcfg = families.config_for(grpo_toy.get_config('test').model)
  base = nnx.to_pure_dict(nnx.state(layers.Decoder(mcfg, nnx.Rngs(params=0)), nnx.Param))
  rng = np.random.default_rng(0)
  base = jax.tree.map(np.asarray, base)
  direction = jax.tree.map(lambda x: 0.02 * rng.standard_normal(x.shape).astype(x.dtype), base)
  checkpointer = ocp.StandardCheckpointer()
  for t in STEPS:
    params = jax.tree.map(lambda b, v: b + np.float32(t) * v, base, direction)
    checkpointer.save(root / 'checkpoints' / str(t) / 'state', {'params': params})
  checkpointer.wait_until_finished()
  return root


@pytest.fixture(scope='module')
def results(linear_run, tmp_path_factory):
  workdir = tmp_path_factory.mktemp('relex_toy')
  config = relex_grpo_toy.get_config('test')
  config.grpo_workdir = str(linear_run)
  launch.run(config, str(workdir))
  return workdir, json.loads((workdir / 'results.json').read_text())


def test_toy_experiment_linear_trajectory_predicts_real_checkpoints(results):
  workdir, res = results
  (h,) = res['histories']
  assert h['history'] == 4 and h['targets'] == [8, 12] and h['observed_steps'] == [2, 4]
  assert h['effective_rank'] == {'rank1': 1, 'per_parameter': 2, 'window2': 1}
  assert len(h['predictions']) == 3 * 2
  for p in h['predictions']:
    assert p['accuracy'] == res['real_accuracy'][str(p['target'])], p
    assert p['ratio'] < 1e-4 and p['cos'] > 0.9999, p
  assert all(0.0 <= a <= 1.0 for a in res['real_accuracy'].values())
  assert sorted(map(int, res['real_accuracy'])) == list(STEPS)


def test_toy_experiment_denoising_sees_one_linear_component(results):
  _, res = results
  d = res['histories'][0]['denoising']
  assert d['energy_top1_min'] > 0.9999 and d['energy_top1_global'] > 0.9999
  assert d['r2_in_median'] > 0.999
  assert d['r2_out_median'] > 0.999 and d['r2_out_positive'] == len(d['tensors'])
  assert abs(d['growth_median'] - 1.0) < 1e-4 and d['last_target'] == 12


def test_toy_experiment_writes_tables_and_plots(results):
  workdir, res = results
  md = (workdir / 'results.md').read_text()
  assert '## N = 4' in md and 'per_parameter (k=2)' in md and 'Denoising' in md
  for name in ('accuracy.png', 'coefficients_h4.png'):
    assert (workdir / name).stat().st_size > 0
  assert (workdir / 'relex' / 'h4' / 'rank1' / 'extrapolated_orbax' / '12').is_dir()


def test_toy_experiment_unknown_variant_names_field():
  config = relex_grpo_toy.get_config('test')
  config.grpo_workdir, config.variants = '/nonexistent', 'rank1,rank7'
  with pytest.raises(config_lib.ConfigError, match='variants'):
    toy_experiments.validate(config)
