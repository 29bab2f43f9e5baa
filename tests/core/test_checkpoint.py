import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import mesh as mesh_lib
from jax.sharding import NamedSharding, PartitionSpec as P


def _state(x):
  return {'params': {'w': jnp.full((8, 4), x, jnp.float32)}, 'step': jnp.array(int(x))}


def test_restore_latest_skips_corrupt_newest_and_keeps_files(tmp_path, capsys):
  ck = ckpt_lib.Checkpointer(tmp_path, every=1, keep=5, async_save=False)
  for s in (1, 2, 3):
    ck.save(s, _state(s))
  ck.wait()
  for f in (tmp_path / '3').rglob('*'):  # truncate every file of the newest checkpoint
    if f.is_file():
      f.write_bytes(b'')
  restored = ck.restore_latest(ckpt_lib.abstract_like(_state(0)))
  assert restored.step == 2
  np.testing.assert_array_equal(restored.state['params']['w'], np.full((8, 4), 2.0))
  assert 'checkpoint step 3 is unreadable' in capsys.readouterr().out
  assert (tmp_path / '1').exists() and (tmp_path / '2').exists()
  assert list(tmp_path.glob('unreadable-3-*'))  # moved aside, not deleted


def test_restore_onto_different_device_count(tmp_path):
  mesh8 = mesh_lib.make_mesh({'data': 8})
  state = jax.device_put(_state(5.0), NamedSharding(mesh8, P()))
  state['params']['w'] = jax.device_put(state['params']['w'], NamedSharding(mesh8, P('data')))
  ck = ckpt_lib.Checkpointer(tmp_path, every=1, keep=2)
  ck.save(1, state)
  ck.close()
  mesh2 = mesh_lib.make_mesh({'data': 2}, devices=jax.devices()[:2])
  target = {'params': {'w': NamedSharding(mesh2, P('data'))}, 'step': NamedSharding(mesh2, P())}
  abstract = ckpt_lib.abstract_like(_state(0), target)
  restored = ckpt_lib.Checkpointer(tmp_path).restore_latest(abstract)
  assert restored.state['params']['w'].sharding.mesh.size == 2
  np.testing.assert_array_equal(restored.state['params']['w'], np.full((8, 4), 5.0))


def test_save_skips_steps_not_due(tmp_path):
  ck = ckpt_lib.Checkpointer(tmp_path, every=3, keep=5, async_save=False)
  assert [s for s in range(1, 8) if ck.save(s, _state(s))] == [3, 6]
