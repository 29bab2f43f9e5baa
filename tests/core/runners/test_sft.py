"""End to end: the quickstart runs, resumes bit-identically after kill -9, and scales to
two processes."""
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxpapers.core import metrics as metrics_lib

REPO = pathlib.Path(__file__).resolve().parents[3]
QUICK = ['-m', 'jaxpapers.launch', '--config=configs/quickstart.py:test']


def _env(devices: int):
  env = dict(os.environ)
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  env['JAX_PLATFORMS'] = 'cpu'
  return env


def _cmd(workdir, *extra):
  return [sys.executable, *QUICK, f'--workdir={workdir}', *extra]


def kill9_when_exists(cmd, env, path, timeout_s: float = 400) -> None:
  """Starts `cmd` and kill -9s it as soon as `path` exists (or after `timeout_s`)."""
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + timeout_s
  while time.time() < deadline and not path.exists() and proc.poll() is None:
    time.sleep(0.1)
  proc.send_signal(signal.SIGKILL)
  proc.wait()


def _params(workdir, step):
  """Params of a checkpoint, restored onto one device whatever topology saved them."""
  path = pathlib.Path(workdir) / 'checkpoints' / str(step) / 'state'
  ckptr = ocp.StandardCheckpointer()
  meta = ckptr.metadata(path)
  meta = getattr(meta, 'item_metadata', meta)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        dict(meta))
  return ckptr.restore(path, target)['params']


def _flat(tree, prefix=''):
  out = {}
  for k, v in tree.items():
    out.update(_flat(v, f'{prefix}{k}.') if isinstance(v, dict) else {prefix + k: np.asarray(v)})
  return out


@pytest.fixture(scope='module')
def full_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('full')
  proc = subprocess.run(_cmd(workdir, '--config.steps=10'), cwd=REPO, env=_env(8),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


@pytest.mark.slow
def test_quickstart_writes_checkpoints_metrics_plot_and_learns(full_run):
  rows = metrics_lib.read_metrics(full_run)
  assert [r['step'] for r in rows] == [2, 4, 6, 8, 10]
  assert rows[-1]['loss'] < rows[0]['loss'] - 1.0
  assert (full_run / 'loss.png').stat().st_size > 1000
  assert {p.name for p in (full_run / 'checkpoints').iterdir()} >= {'6', '8', '10'}


def test_gradient_accumulation_follows_the_same_losses(full_run, tmp_path):
  """One device, the batch in 4 slices of 2 rows: the first steps' losses are the 8-device
  whole-batch run's."""
  proc = subprocess.run(_cmd(tmp_path, '--config.steps=10', '--config.grad_accum_steps=4'),
                        cwd=REPO, env=_env(1), capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  ref = {r['step']: r['loss'] for r in metrics_lib.read_metrics(full_run)}
  got = {r['step']: r['loss'] for r in metrics_lib.read_metrics(tmp_path)}
  assert got.keys() == ref.keys()
  np.testing.assert_allclose([got[s] for s in (2, 4)], [ref[s] for s in (2, 4)], rtol=1e-3)


@pytest.mark.slow
def test_quickstart_kill9_then_rerun_is_bit_identical(full_run, tmp_path):
  cmd = _cmd(tmp_path, '--config.steps=10')
  ckpts = tmp_path / 'checkpoints'
  kill9_when_exists(cmd, _env(8), ckpts / '4')
  assert (ckpts / '4').exists() and not (ckpts / '10').exists(), 'kill came too late'
  rerun = subprocess.run(cmd, cwd=REPO, env=_env(8), capture_output=True, text=True,
                         timeout=600)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert 'resumed from step' in rerun.stdout
  ref, got = _flat(_params(full_run, 10)), _flat(_params(tmp_path, 10))
  assert ref.keys() == got.keys()
  for k in ref:
    np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
  steps = ['--config.steps=4', '--config.checkpoint.every=4', '--config.checkpoint.async_save=False']
  one = subprocess.run(_cmd(tmp_path / 'one', *steps), cwd=REPO, env=_env(2),
                       capture_output=True, text=True, timeout=600)
  assert one.returncode == 0, one.stderr[-3000:]
  port = _free_port()
  procs = [subprocess.Popen(
      _cmd(tmp_path / 'two', *steps, f'--coordinator_address=127.0.0.1:{port}',
           '--num_processes=2', f'--process_id={i}', '--cpu_collectives=gloo'),
      cwd=REPO, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  assert '2 process(es)' in outs[0][0]
  ref, got = _flat(_params(tmp_path / 'one', 4)), _flat(_params(tmp_path / 'two', 4))
  for k in ref:
    np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
