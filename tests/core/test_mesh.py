import jax
import pytest
from jax.sharding import PartitionSpec as P

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import qwen


def test_mesh_shape_minus_one_fills_rest():
  assert mesh_lib.mesh_shape({'data': -1, 'fsdp': 2, 'tensor': 2}, 8) == (2, 2, 2)
  assert mesh_lib.mesh_shape({'data': -1}, 1) == (1, 1, 1)


@pytest.mark.parametrize('shape', [{'data': 3}, {'data': -1, 'fsdp': -1}, {'pipe': 2}])
def test_mesh_shape_bad_raises_naming_mesh(shape):
  with pytest.raises(ValueError, match='mesh'):
    mesh_lib.mesh_shape(shape, 8)


def test_make_mesh_uses_auto_axes():
  mesh = mesh_lib.make_mesh({'data': 2, 'fsdp': 2, 'tensor': 2})
  assert dict(mesh.shape) == {'data': 2, 'fsdp': 2, 'tensor': 2}
  assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)


def test_logical_spec_indivisible_dim_replicated():
  mesh = mesh_lib.make_mesh({'data': 1, 'fsdp': 2, 'tensor': 4})
  assert mesh_lib.logical_spec(('embed', 'mlp'), (64, 128), mesh) == P('fsdp', 'tensor')
  assert mesh_lib.logical_spec(('embed', 'kv_heads'), (64, 6), mesh) == P('fsdp', None)
  assert mesh_lib.logical_spec(('batch', 'seq'), (8, 3), mesh) == P('fsdp', None)


@pytest.mark.parametrize('n', [1, 2, 8])
def test_param_shardings_cover_every_param(n):
  from jaxpapers.core import hf
  from flax import nnx
  cfg = qwen.preset('qwen3-tiny', vocab_size=256)
  _, state, abstract = hf.abstract_params(lambda: qwen.init(cfg))
  mesh = mesh_lib.make_mesh({'data': -1}, devices=jax.devices()[:n])
  shardings = mesh_lib.param_shardings(state, mesh)
  assert jax.tree.structure(shardings) == jax.tree.structure(abstract)
  del nnx
