"""Device mesh and logical-axis sharding rules.

Layers name their axes logically (`embed`, `mlp`, `heads`, `kv_heads`, `vocab`, `batch`,
`seq`); `RULES` maps each name to mesh axes (`data`, `fsdp`, `tensor`). A dimension whose
size is not divisible by its mesh axes is replicated instead, so tiny test models run on
any mesh. The mesh uses Auto axis types (classic sharding propagation).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxpapers.core import config as config_lib

if TYPE_CHECKING:  # NNX is imported where param states are handled, not by every mesh user
  from flax import nnx

MESH_AXES = ('data', 'fsdp', 'tensor')

# One entry per logical name; weights first, then activations.
RULES: dict[str, Any] = {
    # weights
    'vocab': 'tensor',
    'embed': 'fsdp',
    'mlp': 'tensor',
    'heads': 'tensor',
    'kv_heads': 'tensor',
    # activations
    'batch': ('data', 'fsdp'),
    'seq': None,
}


def mesh_shape(shape: Mapping[str, int], num_devices: int | None = None) -> tuple[int, ...]:
  """Resolves a {'data': -1, 'fsdp': 1, 'tensor': 1} dict (-1 = the rest) to a tuple."""
  n = jax.device_count() if num_devices is None else num_devices
  unknown = set(shape) - set(MESH_AXES)
  if unknown:
    raise ValueError(f'mesh: unknown axes {sorted(unknown)}; valid: {MESH_AXES}')
  sizes = [int(shape.get(a, 1)) for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f'mesh: at most one axis may be -1, got {dict(zip(MESH_AXES, sizes))}')
  fixed = int(np.prod([s for s in sizes if s != -1]))
  if fixed <= 0 or n % fixed:
    raise ValueError(f'mesh: {dict(zip(MESH_AXES, sizes))} does not divide {n} devices')
  return tuple(n // fixed if s == -1 else s for s in sizes)


def make_mesh(shape: Mapping[str, int] | None = None, devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  dims = mesh_shape(shape or {'data': -1}, len(devices))
  if int(np.prod(dims)) != len(devices):
    raise ValueError(f'mesh: shape {dims} uses {int(np.prod(dims))} of {len(devices)} devices')
  return jax.make_mesh(dims, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * 3,
                       devices=devices)


def axis_size(mesh: Mesh, axes) -> int:
  if axes is None:
    return 1
  axes = (axes,) if isinstance(axes, str) else axes
  return int(np.prod([mesh.shape[a] for a in axes]))


def logical_spec(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
                 rules: Mapping[str, Any] = RULES) -> P:
  """PartitionSpec for one array; indivisible or repeated mesh axes fall back to replication."""
  used, spec = set(), []
  for name, size in zip(names, shape):
    axes = rules.get(name) if name is not None else None
    flat = () if axes is None else ((axes,) if isinstance(axes, str) else tuple(axes))
    flat = tuple(a for a in flat if a not in used and mesh.shape[a] > 1)
    if not flat or size % axis_size(mesh, flat):
      spec.append(None)
      continue
    used.update(flat)
    spec.append(flat[0] if len(flat) == 1 else flat)
  return P(*spec)


def _axes_of(variable: nnx.Variable):
  return variable.get_metadata().get('axes')


def param_shardings(state: nnx.State, mesh: Mesh, rules: Mapping[str, Any] = RULES):
  """Pure-dict tree of NamedShardings for an (abstract) NNX param state."""
  from flax import nnx
  def one(v):
    axes = _axes_of(v) or (None,) * len(v.shape)
    return NamedSharding(mesh, logical_spec(axes, v.shape, mesh, rules))
  tree = jax.tree.map(one, state, is_leaf=lambda x: isinstance(x, nnx.Variable))
  return nnx.to_pure_dict(tree)


def batch_sharding(mesh: Mesh, ndim: int = 2, rules: Mapping[str, Any] = RULES) -> NamedSharding:
  """Leading dim on the batch axes, the rest replicated."""
  axes = rules['batch']
  return NamedSharding(mesh, P(axes, *([None] * (ndim - 1))))


def batch_divisor(mesh: Mesh, rules: Mapping[str, Any] = RULES) -> int:
  return axis_size(mesh, rules['batch'])


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def describe(mesh: Mesh) -> str:
  return (f'{jax.process_count()} process(es), {jax.device_count()} {jax.devices()[0].platform} '
          f'device(s), mesh {dict(mesh.shape)}')


def make_batch_mesh(config, batch_field: str | None = 'batch_size') -> Mesh:
  """The run's mesh from `config.mesh`, after checking that the global batch splits over
  its batch axes (a ConfigError naming the field otherwise; `batch_field=None` skips the
  check for runs that size their batches per stage); prints what it built."""
  mesh = make_mesh(config.mesh)
  if batch_field is not None:
    config_lib.check_divisible(config, batch_field, batch_divisor(mesh),
                               f'data x fsdp mesh axes of {dict(mesh.shape)}')
  print(f'mesh: {describe(mesh)}', flush=True)
  return mesh
