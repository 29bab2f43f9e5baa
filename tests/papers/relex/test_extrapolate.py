"""RELEX end to end on tiny HF trajectories: equality with the float64 reference, exactness,
chunking and sharding invariance, tied embeddings, copied keys, atomic output."""
import json

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.papers.relex import extrapolate
from jaxpapers.papers.relex import output
from jaxpapers.papers.relex import svd
from tests.papers.relex import conftest as fx


def _mesh1():
  return mesh_lib.make_mesh({'data': -1}, devices=jax.devices()[:1])


def _targets(config):
  return [int(t) for t in config.target_steps.split(',')]


@pytest.mark.parametrize('options', [
    {},                                                    # paper default: rank 1, linear
    {'rank': 2},
    {'fit': 'polynomial', 'degree': 2},
    {'window': 3},
    {'step_scale': 2.0, 'target_steps': '6,10'},
    {'refit_every': 2, 'target_steps': '7,9'},
    {'mode': 'fit_reconstruct', 'target_steps': '2,5'},
    {'mode': 'reconstruct', 'rank': 2, 'target_steps': '3,6'},  # 6 is past the history
    {'delta_dtype': 'float16'},                            # the reference's fp16 delta files
])
def test_relex_random_trajectory_matches_float64_reference(hf_trajectory, tmp_path, options):
  traj, base, data = hf_trajectory()
  config = fx.make_config(traj, **options)
  extrapolate.run(config, tmp_path / 'w', mesh=_mesh1())
  keys = {'mode', 'rank', 'fit', 'degree', 'window', 'step_scale', 'refit_every',
          'delta_dtype'}
  ref = fx.reference_relex(base, data, 5, _targets(config),
                           **{k: v for k, v in options.items() if k in keys})
  for target in _targets(config):
    ours = fx.read_output(tmp_path / 'w', target)
    fx.assert_matches_reference(ours, ref[target], base)
    np.testing.assert_array_equal(ours['lm_head.weight'], ours['model.embed_tokens.weight'])


def test_relex_exact_rank1_linear_trajectory_extrapolated_exactly(tmp_path):
  base, data = fx.random_trajectory([1, 2, 3, 4, 5, 100], rank1=True)
  truth = data.pop(100)
  traj = fx.write_hf(tmp_path / 'traj', base, data)
  extrapolate.run(fx.make_config(traj, target_steps='100'), tmp_path / 'w', mesh=_mesh1())
  ours = fx.read_output(tmp_path / 'w', 100)
  fx.assert_matches_reference(ours, {k: v.astype(np.float64) for k, v in truth.items()}, base)


def test_relex_reconstruct_full_rank_reproduces_checkpoints(hf_trajectory, tmp_path):
  traj, base, data = hf_trajectory()
  config = fx.make_config(traj, mode='reconstruct', rank=-1, target_steps='1,2,3,4,5')
  extrapolate.run(config, tmp_path / 'w', mesh=_mesh1())
  for t in range(1, 6):
    fx.assert_matches_reference(fx.read_output(tmp_path / 'w', t),
                                {k: v.astype(np.float64) for k, v in data[t].items()}, base)


def test_relex_full_rank_linear_equals_per_parameter_extrapolation(hf_trajectory, tmp_path):
  traj, base, data = hf_trajectory()
  extrapolate.run(fx.make_config(traj, rank=-1, target_steps='20'), tmp_path / 'w',
                  mesh=_mesh1())
  ours = fx.read_output(tmp_path / 'w', 20)
  for name, theta0 in base.items():
    deltas = np.stack([data[t][name].astype(np.float64) - theta0 for t in range(1, 6)])
    slope, intercept = np.polyfit(np.arange(5.0), deltas.reshape(5, -1), 1)
    expected = {name: theta0 + (intercept + slope * 19).reshape(theta0.shape)}
    fx.assert_matches_reference({name: ours[name]}, expected, base)


def _run_outputs(traj, path, mesh, **options):
  config = fx.make_config(traj, **options)
  extrapolate.run(config, path, mesh=mesh)
  return {t: fx.read_output(path, t) for t in _targets(config)}


def _assert_same(a, b, rtol=2e-6):
  for target in a:
    for name in a[target]:
      np.testing.assert_allclose(a[target][name], b[target][name], rtol=rtol, atol=rtol)


def test_relex_chunked_equals_unchunked(hf_trajectory, tmp_path):
  traj, _, _ = hf_trajectory()
  whole = _run_outputs(traj, tmp_path / 'a', _mesh1(), prefetch=0)
  chunked = _run_outputs(traj, tmp_path / 'b', _mesh1(), chunk_size=16, prefetch=2)
  _assert_same(whole, chunked)


def test_relex_chunked_with_extra_rows_equals_unchunked(hf_trajectory, tmp_path):
  # Held-out rows ride along in pass 1; held multi-chunk tensors (up_proj, down_proj) and
  # re-read ones (embed_tokens: 12 chunks) must give them zero weight alike.
  traj, _, _ = hf_trajectory(steps=range(1, 9))
  options = dict(target_steps='9', project_heldout=True)
  whole = _run_outputs(traj, tmp_path / 'a', _mesh1(), prefetch=0, **options)
  chunked = _run_outputs(traj, tmp_path / 'b', _mesh1(), chunk_size=16, **options)
  _assert_same(whole, chunked)


def test_relex_sharded_8_devices_equals_1_device(hf_trajectory, tmp_path):
  assert jax.device_count() == 8
  traj, _, _ = hf_trajectory(shapes={'a.weight': (7, 5), 'b.bias': (13,), 'c.weight': (520, 9)})
  one = _run_outputs(traj, tmp_path / 'a', _mesh1())
  eight = _run_outputs(traj, tmp_path / 'b', mesh_lib.make_mesh({'data': -1}), chunk_size=2700,
                       shard_min_size=1)
  _assert_same(one, eight)


def test_relex_bf16_default_output_skip_pattern_and_report(hf_trajectory, tmp_path):
  traj, base, _ = hf_trajectory(steps=range(1, 9))
  config = fx.make_config(traj, output_dtype='bfloat16', skip_pattern=r'norm\.weight$',
                          target_steps='9', project_heldout=True)
  result = extrapolate.run(config, tmp_path / 'w', mesh=_mesh1())
  out_dir = tmp_path / 'w' / 'extrapolated' / 'step_9'
  ours = fx.read_output(tmp_path / 'w', 9)
  assert all(str(v.dtype) == 'bfloat16' for v in ours.values())
  np.testing.assert_array_equal(ours['model.norm.weight'],
                                base['model.norm.weight'].astype(ours['model.norm.weight'].dtype))
  assert (out_dir / 'tokenizer.json').exists()
  assert json.loads((out_dir / 'config.json').read_text())['torch_dtype'] == 'bfloat16'
  assert json.loads((out_dir / 'relex.json').read_text())['relex']['target_step'] == 9
  report = json.loads((tmp_path / 'w' / 'relex_report.json').read_text())
  assert result['tensors'] == len(report['tensors']) == 4  # norm copied, lm_head tied
  first = report['tensors'][0]
  assert 0.0 < first['energy_top1'] <= 1.0 and first['heldout_steps'] == [6, 7, 8]
  assert first['r2_in_sample'][0] > 0.9 and len(first['r2_out_of_sample']) == 1
  assert (tmp_path / 'w' / 'relex_coefficients.png').exists()


def test_relex_crash_leaves_previous_output_and_no_partial_dir(hf_trajectory, tmp_path,
                                                               monkeypatch):
  traj, _, _ = hf_trajectory()
  work = tmp_path / 'w'
  extrapolate.run(fx.make_config(traj, target_steps='8'), work, mesh=_mesh1())
  before = fx.read_output(work, 8)
  calls = {'n': 0}
  real_write = output.HFOutput.write

  def failing_write(self, *args):
    calls['n'] += 1
    if calls['n'] == 3:
      raise RuntimeError('simulated crash')
    return real_write(self, *args)
  monkeypatch.setattr(output.HFOutput, 'write', failing_write)
  with pytest.raises(RuntimeError, match='simulated crash'):
    extrapolate.run(fx.make_config(traj, target_steps='8,30', window=3), work, mesh=_mesh1())
  assert sorted(p.name for p in (work / 'extrapolated').iterdir()) == ['step_8']
  after = fx.read_output(work, 8)
  for name in before:
    np.testing.assert_array_equal(before[name], after[name])


def test_relex_bf16_trajectory_matches_reference_chunked_and_sharded(tmp_path):
  # bf16 checkpoints take the uint32-pair Gram path on CPU (even and odd columns apart).
  base, data = fx.random_trajectory(list(range(1, 6)))
  as_bf16 = lambda p: {k: v.astype(ml_dtypes.bfloat16) for k, v in p.items()}
  traj = fx.write_hf(tmp_path / 'traj', as_bf16(base), {t: as_bf16(p) for t, p in data.items()})
  upcast = lambda p: {k: v.astype(ml_dtypes.bfloat16).astype(np.float32) for k, v in p.items()}
  ref = fx.reference_relex(upcast(base), {t: upcast(p) for t, p in data.items()}, 5, [12])[12]
  for name, mesh, options in [('one', _mesh1(), {}), ('chunked', _mesh1(), {'chunk_size': 16}),
                              ('sharded', mesh_lib.make_mesh({'data': -1}),
                               {'chunk_size': 2700, 'shard_min_size': 1})]:
    extrapolate.run(fx.make_config(traj, target_steps='12', **options), tmp_path / name,
                    mesh=mesh)
    fx.assert_matches_reference(fx.read_output(tmp_path / name, 12), ref, upcast(base))


def test_gram_of_bf16_pairs_equals_plain_gram():
  rng = np.random.default_rng(0)
  rows = rng.standard_normal((7, 4096)).astype(ml_dtypes.bfloat16)
  theta0 = rng.standard_normal(4096).astype(ml_dtypes.bfloat16)
  plain = svd.gram(jnp.asarray(theta0), jnp.asarray(rows), block=2048)
  pairs = svd.gram(jnp.asarray(theta0.view(np.uint32)), jnp.asarray(rows.view(np.uint32)),
                   block=2048)
  m = rows.astype(np.float64) - theta0.astype(np.float64)
  np.testing.assert_allclose(np.asarray(pairs), m @ m.T, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(pairs), np.asarray(plain), rtol=1e-5)


def test_relex_streams_give_identical_outputs_and_report(hf_trajectory, tmp_path):
  traj, _, _ = hf_trajectory()
  outs, reports = [], []
  for streams in (1, 3):
    path = tmp_path / f's{streams}'
    outs.append(_run_outputs(traj, path, _mesh1(), streams=streams, chunk_size=16))
    reports.append(json.loads((path / 'relex_report.json').read_text())['tensors'])
  for target in outs[0]:
    for name in outs[0][target]:
      np.testing.assert_array_equal(outs[0][target][name], outs[1][target][name])
  assert [t['name'] for t in reports[0]] == [t['name'] for t in reports[1]]


def test_split_streams_balances_work_in_order():
  assert extrapolate.split_streams([5, 1, 1, 1, 1, 1], 2) == [[0], [1, 2, 3, 4, 5]]
  assert extrapolate.split_streams([1, 1, 1], 2) == [[0, 2], [1]]
  assert extrapolate.split_streams([3], 4) == [[0]]
  assert extrapolate.split_streams([], 2) == [[]]
