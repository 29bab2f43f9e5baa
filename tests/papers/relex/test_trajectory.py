"""Trajectory sources (HF safetensors, Orbax) and every input error naming its step/tensor."""
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.config import ConfigError
from jaxpapers.papers.relex import experiment
from jaxpapers.papers.relex import extrapolate
from jaxpapers.papers.relex import trajectory
from tests.papers.relex import conftest as fx

REPO = pathlib.Path(__file__).resolve().parents[3]
OUR_SHAPES = {'embed_tokens.embedding': (10, 4), 'layers.0.mlp.up_proj.kernel': (4, 6),
              'layers.1.mlp.up_proj.kernel': (4, 6), 'norm.scale': (4,)}


def _mesh1():
  return mesh_lib.make_mesh({'data': -1}, devices=jax.devices()[:1])


def _save_orbax(path, flat):
  """A core/checkpoint.py-style StandardSave state of {'params', 'step', ...}."""
  params = {}
  for name, value in flat.items():
    node = params
    *parents, leaf = [int(p) if p.isdigit() else p for p in name.split('.')]
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = jnp.asarray(value)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(path, {'params': params, 'step': 0, 'opt_state': {'mu': jnp.zeros(2)}})
  checkpointer.wait_until_finished()


def _orbax_trajectory(root, steps=range(1, 6), manager_layout=True):
  """<root>/0/state is θ₀ and <root>/<k>/state the checkpoints (CheckpointManager layout),
  or base/state and step_<k>/state."""
  base, data = fx.random_trajectory(list(steps), shapes=OUR_SHAPES)
  _save_orbax(root / ('0' if manager_layout else 'base') / 'state', base)
  for t, params in data.items():
    _save_orbax(root / (str(t) if manager_layout else f'step_{t}') / 'state', params)
  return root, base, data


def test_hf_source_reads_rows_shapes_and_steps(hf_trajectory):
  traj, base, data = hf_trajectory()
  source = trajectory.open_trajectory(traj)
  name = 'model.embed_tokens.weight'
  assert source.format == 'hf' and source.steps == (1, 2, 3, 4, 5, 6)
  assert source.shape(name) == (24, 8) and source.dtype(name) == np.float32
  np.testing.assert_array_equal(source.read(name, 3, slice(5, 9)), data[3][name][5:9])
  np.testing.assert_array_equal(source.read(name, 'base'), base[name])


@pytest.mark.parametrize('manager_layout', [True, False])
def test_orbax_source_reads_single_leaves_by_rows(tmp_path, manager_layout):
  root, base, data = _orbax_trajectory(tmp_path / 'ckpt', manager_layout=manager_layout)
  source = trajectory.open_trajectory(root)
  assert source.format == 'orbax' and source.steps == (1, 2, 3, 4, 5)
  assert sorted(source.tensor_names()) == sorted(OUR_SHAPES)
  name = 'layers.1.mlp.up_proj.kernel'
  np.testing.assert_array_equal(source.read(name, 4, slice(1, 3)), data[4][name][1:3])
  np.testing.assert_array_equal(source.read(name, 'base'), base[name])


def test_relex_orbax_trajectory_matches_reference_and_writes_hf_and_orbax(tmp_path):
  root, base, data = _orbax_trajectory(tmp_path / 'ckpt')
  (tmp_path / 'cfg').mkdir()
  (tmp_path / 'cfg' / 'config.json').write_text('{"model_type": "qwen3"}')
  config = fx.make_config(root, target_steps='12', save_orbax=True,
                          hf_config_dir=str(tmp_path / 'cfg'), streams=3, chunk_size=16)
  # 3 streams read concurrently; chunked, the transposed kernels reach HF output in row blocks
  extrapolate.run(config, tmp_path / 'w', mesh=_mesh1())
  ref = fx.reference_relex(base, data, 5, [12])[12]
  restored = ocp.StandardCheckpointer().restore(tmp_path / 'w' / 'extrapolated_orbax' / '12'
                                                / 'state')['params']
  ours = {k: np.asarray(v) for k, v in hf.flatten(restored).items()}
  fx.assert_matches_reference(ours, ref, base)
  hf_out = fx.read_output(tmp_path / 'w', 12)
  np.testing.assert_array_equal(hf_out['model.layers.1.mlp.up_proj.weight'],
                                ours['layers.1.mlp.up_proj.kernel'].T)


def test_relex_steps_saved_in_mixed_dtypes_match_reference(tmp_path):
  base, data = fx.random_trajectory(list(range(1, 6)))
  stored = {t: {k: (v if t == 3 else v.astype(ml_dtypes.bfloat16)) for k, v in p.items()}
            for t, p in data.items()}  # step_3 in fp32, the others in bf16, θ₀ in fp32
  traj = fx.write_hf(tmp_path / 'traj', base, stored)
  extrapolate.run(fx.make_config(traj, target_steps='12'), tmp_path / 'w', mesh=_mesh1())
  upcast = {t: {k: v.astype(np.float32) for k, v in p.items()} for t, p in stored.items()}
  fx.assert_matches_reference(fx.read_output(tmp_path / 'w', 12),
                              fx.reference_relex(base, upcast, 5, [12])[12], base)


def test_mixed_formats_is_config_error(hf_trajectory, tmp_path):
  traj, _, data = hf_trajectory()
  _save_orbax(traj / 'step_7' / 'state', {'x': np.zeros(3, np.float32)})
  with pytest.raises(ConfigError, match='mixed checkpoint formats.*step_7'):
    trajectory.open_trajectory(traj)


def _run(traj, tmp_path, **options):
  return extrapolate.run(fx.make_config(traj, **options), tmp_path / 'w', mesh=_mesh1())


def test_error_missing_step_named(hf_trajectory, tmp_path):
  traj, _, _ = hf_trajectory()
  (traj / 'step_3').rename(traj / 'gone')
  with pytest.raises(ConfigError, match='step_3 missing'):
    _run(traj, tmp_path)


def test_error_reconstruct_target_missing_named(hf_trajectory, tmp_path):
  traj, _, _ = hf_trajectory()
  with pytest.raises(ConfigError, match='step_9 missing'):
    _run(traj, tmp_path, mode='reconstruct', target_steps='2,9')


def test_error_shape_mismatch_names_step_and_tensor(hf_trajectory, tmp_path):
  traj, _, data = hf_trajectory()
  bad = dict(data[4], **{'model.norm.weight': np.zeros(9, np.float32)})
  hf.save_hf_dir(traj / 'step_4', bad, fx.HF_CONFIG)
  with pytest.raises(ConfigError, match=r"'model.norm.weight' has shape \(9,\) at step_4"):
    _run(traj, tmp_path)


def test_error_missing_tensor_names_step_and_tensor(hf_trajectory, tmp_path):
  traj, _, data = hf_trajectory()
  bad = {k: v for k, v in data[2].items() if k != 'model.layers.0.mlp.up_proj.weight'}
  hf.save_hf_dir(traj / 'step_2', bad, fx.HF_CONFIG)
  with pytest.raises(ConfigError, match='up_proj.weight.*missing at step_2'):
    _run(traj, tmp_path)


def test_error_non_finite_names_step_and_tensor_and_writes_nothing(hf_trajectory, tmp_path):
  traj, _, data = hf_trajectory()
  bad = dict(data[3])
  bad['model.norm.weight'] = bad['model.norm.weight'].copy()
  bad['model.norm.weight'][2] = np.nan
  hf.save_hf_dir(traj / 'step_3', bad, fx.HF_CONFIG)
  with pytest.raises(ConfigError, match=r"'model.norm.weight' has non-finite values at step_3"):
    _run(traj, tmp_path)
  assert not list((tmp_path / 'w' / 'extrapolated').iterdir())


def test_error_non_finite_counts_every_chunk_and_base(hf_trajectory, tmp_path):
  # up_proj (12 x 8) in 3-row chunks: the infs sit in chunks 2 and 4; θ₀'s NaN in chunk 3.
  traj, base, data = hf_trajectory()
  name = 'model.layers.0.mlp.up_proj.weight'
  bad = dict(data[2])
  bad[name] = bad[name].copy()
  bad[name][4, 1] = bad[name][10, 7] = np.inf
  hf.save_hf_dir(traj / 'step_2', bad, fx.HF_CONFIG)
  bad_base = dict(base)
  bad_base[name] = bad_base[name].copy()
  bad_base[name][7, 0] = np.nan
  hf.save_hf_dir(traj / 'base', bad_base, fx.HF_CONFIG)
  with pytest.raises(ConfigError, match=rf"'{name}' has non-finite values at step_2 \(2\), "
                                        r'.*base \(1\)'):
    _run(traj, tmp_path, chunk_size=24)


def test_error_gram_overflow_named(hf_trajectory, tmp_path):
  # Finite values whose fp16 deltas (delta_dtype='float16', as the reference) overflow.
  traj, _, data = hf_trajectory()
  bad = dict(data[4])
  bad['model.norm.weight'] = bad['model.norm.weight'].copy()
  bad['model.norm.weight'][0] = 1e6
  hf.save_hf_dir(traj / 'step_4', bad, fx.HF_CONFIG)
  with pytest.raises(ConfigError, match=r"'model.norm.weight': the Gram matrix .* overflows"):
    _run(traj, tmp_path, delta_dtype='float16')


def test_error_fewer_than_two_observed_checkpoints(hf_trajectory, tmp_path):
  traj, _, _ = hf_trajectory()
  with pytest.raises(ConfigError, match=r'history_steps.*T=1.*T >= 2'):
    _run(traj, tmp_path, history_steps=1)


def test_error_target_before_window_named(hf_trajectory, tmp_path):
  traj, _, _ = hf_trajectory()
  with pytest.raises(ConfigError, match='target 1 .*before the fit window.*step 4'):
    _run(traj, tmp_path, window=2, target_steps='1,8')


@pytest.mark.parametrize('field, value', [
    ('mode', 'forecast'), ('fit', 'sin'), ('rank', 0), ('window', 0), ('output_dtype', 'int8'),
    ('target_steps', 'a,b'), ('history_steps', -1), ('trajectory_dir', ''),
    ('skip_pattern', '('), ('refit_every', 0)])
def test_validate_names_bad_field(tmp_path, field, value):
  config = fx.make_config(tmp_path)
  config[field] = value
  with pytest.raises(ConfigError, match=f'config.{field}'):
    experiment.validate(config)


@pytest.mark.slow
def test_launch_command_writes_hf_dir(hf_trajectory, tmp_path):
  traj, _, _ = hf_trajectory(steps=range(1, 4))
  proc = subprocess.run(
      [sys.executable, '-m', 'jaxpapers.launch', '--config=configs/relex.py',
       f'--workdir={tmp_path / "w"}', f'--config.trajectory_dir={traj}',
       '--config.history_steps=3', '--config.target_steps=10', '--config.plot_tensors=0'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = tmp_path / 'w' / 'extrapolated' / 'step_10'
  assert (out / 'model.safetensors').exists() and (out / 'config.json').exists()
