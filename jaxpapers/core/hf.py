"""HF safetensors <-> our param trees, both directions, one key table per family.

A key table is a list of `(our_path_regex, hf_template, transpose)`; `{0}`... in the
template are the regex groups (layer index). Model families register their table in
`KEY_TABLES`; a family module supplies only that table and its config.json mapping.

Loading reads one tensor at a time (lazy safetensors reads) and places it straight onto
its sharding with `jax.make_array_from_callback`, so no device receives more than its
shard and the host holds one tensor at a time.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from jaxpapers.core import registry

if TYPE_CHECKING:
  from flax import nnx

KeyTable = list[tuple[str, str, bool]]
KEY_TABLES = registry.Registry('HF key table')

# Qwen2/2.5/3 and Llama share the HF `model.layers.N...` layout.
DECODER_KEYS: KeyTable = [
    (r'embed_tokens\.embedding', 'model.embed_tokens.weight', False),
    (r'norm\.scale', 'model.norm.weight', False),
    (r'lm_head\.kernel', 'lm_head.weight', True),
    (r'layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.scale',
     'model.layers.{0}.{1}.weight', False),
    (r'layers\.(\d+)\.self_attn\.(q|k)_norm\.scale', 'model.layers.{0}.self_attn.{1}_norm.weight',
     False),
    (r'layers\.(\d+)\.self_attn\.(q|k|v|o)_proj\.kernel',
     'model.layers.{0}.self_attn.{1}_proj.weight', True),
    (r'layers\.(\d+)\.self_attn\.(q|k|v|o)_proj\.bias', 'model.layers.{0}.self_attn.{1}_proj.bias',
     False),
    (r'layers\.(\d+)\.mlp\.(gate|up|down)_proj\.kernel', 'model.layers.{0}.mlp.{1}_proj.weight',
     True),
]
KEY_TABLES.register('decoder')(DECODER_KEYS)

SAFETENSORS_FILE = 'model.safetensors'
INDEX_FILE = 'model.safetensors.index.json'
TOKENIZER_FILES = ('tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt',
                   'special_tokens_map.json', 'generation_config.json', 'vocab.txt',
                   'chat_template.jinja')


class CheckpointKeyError(ValueError):
  """Missing, unexpected or mis-shaped tensor in an HF checkpoint."""


def flatten(tree: Mapping, prefix: str = '') -> dict[str, Any]:
  """{'a': {0: {'b': x}}} -> {'a.0.b': x}."""
  out = {}
  for k, v in tree.items():
    key = f'{prefix}{k}'
    if isinstance(v, Mapping):
      out.update(flatten(v, key + '.'))
    else:
      out[key] = v
  return out


def unflatten_like(flat: Mapping[str, Any], like: Mapping, prefix: str = '') -> dict:
  """Inverse of `flatten`, keeping the key types (int layer keys) of `like`."""
  return {k: (unflatten_like(flat, v, f'{prefix}{k}.') if isinstance(v, Mapping)
              else flat[f'{prefix}{k}']) for k, v in like.items()}


def hf_key(our_path: str, table: KeyTable) -> tuple[str, bool]:
  for pattern, template, transpose in table:
    m = re.fullmatch(pattern, our_path)
    if m:
      return template.format(*m.groups()), transpose
  raise CheckpointKeyError(f'no HF key for parameter {our_path!r}')


# ----------------------------------------------------------------------------- reading


class SafetensorsReader:
  """Lazy tensor access over model.safetensors or a sharded index."""

  def __init__(self, path: str | os.PathLike):
    self.path = pathlib.Path(path)
    if (self.path / INDEX_FILE).exists():
      weight_map = json.loads((self.path / INDEX_FILE).read_text())['weight_map']
      self.files = {k: self.path / f for k, f in weight_map.items()}
    elif (self.path / SAFETENSORS_FILE).exists():
      with safe_open(self.path / SAFETENSORS_FILE, 'np') as f:
        self.files = {k: self.path / SAFETENSORS_FILE for k in f.keys()}
    elif self.path.suffix == '.safetensors' and self.path.exists():
      with safe_open(self.path, 'np') as f:
        self.files = {k: self.path for k in f.keys()}
    else:
      raise FileNotFoundError(f'{self.path}: no {SAFETENSORS_FILE} or {INDEX_FILE}')

  def keys(self) -> list[str]:
    return list(self.files)

  def shape(self, key: str) -> tuple[int, ...]:
    with safe_open(self.files[key], 'np') as f:
      return tuple(f.get_slice(key).get_shape())

  def get(self, key: str) -> np.ndarray:
    with safe_open(self.files[key], 'np') as f:
      return f.get_tensor(key)

  def get_rows(self, key: str, start: int, stop: int) -> np.ndarray:
    """Slice [start:stop] of the flattened-leading-dim tensor without reading the rest."""
    with safe_open(self.files[key], 'np') as f:
      return f.get_slice(key)[start:stop]


def load_params(path, abstract: Mapping, table: KeyTable, shardings: Mapping | None = None,
                dtype=None, skip: Iterable[str] = ()) -> dict:
  """Reads an HF checkpoint into a pure-dict param tree shaped like `abstract`.

  Args:
    path: HF directory (model.safetensors or sharded index).
    abstract: pure dict of ShapeDtypeStructs (our layout).
    table: the family's key table.
    shardings: optional pure dict of NamedShardings; default single device.
    dtype: cast to this dtype (default: the abstract dtype).
    skip: HF keys allowed to be present but unused (e.g. tied lm_head, rotary buffers).
  """
  reader = SafetensorsReader(path)
  flat_abs = flatten(abstract)
  flat_shard = flatten(shardings) if shardings is not None else {}
  wanted = {}
  for our_path, spec in flat_abs.items():
    key, transpose = hf_key(our_path, table)
    wanted[key] = (our_path, spec, transpose)
  missing = sorted(set(wanted) - set(reader.keys()))
  if missing:
    raise CheckpointKeyError(f'{path}: missing tensors {missing[:5]}'
                             f'{" (+%d more)" % (len(missing) - 5) if len(missing) > 5 else ""}')
  unexpected = sorted(set(reader.keys()) - set(wanted) - set(skip))
  if unexpected:
    raise CheckpointKeyError(f'{path}: unexpected tensors {unexpected[:5]}')
  out = {}
  for key, (our_path, spec, transpose) in wanted.items():
    hf_shape = reader.shape(key)
    our_shape = tuple(reversed(hf_shape)) if transpose else hf_shape
    if our_shape != tuple(spec.shape):
      raise CheckpointKeyError(f'{path}: tensor {key} has shape {hf_shape}, expected '
                               f'{tuple(reversed(spec.shape)) if transpose else spec.shape} '
                               f'(for {our_path})')
    value = reader.get(key)
    value = value.T if transpose else value
    value = np.asarray(value, dtype=dtype or spec.dtype)
    out[our_path] = _place(value, flat_shard.get(our_path))
  return unflatten_like(out, abstract)


def _place(value: np.ndarray, sharding) -> jax.Array:
  if sharding is None:
    return jnp.asarray(value)
  return jax.make_array_from_callback(value.shape, sharding, lambda idx: value[idx])


# ----------------------------------------------------------------------------- writing


def to_hf_tensors(params: Mapping, table: KeyTable, dtype=None) -> dict[str, np.ndarray]:
  out = {}
  for our_path, value in flatten(params).items():
    key, transpose = hf_key(our_path, table)
    value = np.asarray(jax.device_get(value))
    if dtype is not None:
      value = value.astype(dtype)
    out[key] = np.ascontiguousarray(value.T if transpose else value)
  return out


def commit_dir(tmp: pathlib.Path, path: pathlib.Path) -> None:
  """Renames a finished staging dir into place, replacing `path` (the old one is moved
  aside first and deleted only once the new one is in place)."""
  if path.exists():
    old = path.with_name(f'.old-{path.name}-{os.getpid()}')
    path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old)
  else:
    tmp.rename(path)


def atomic_dir(path: str | os.PathLike, write: Callable[[pathlib.Path], None]) -> pathlib.Path:
  """Writes into a temporary sibling directory, then renames it into place.

  A crash leaves at most a `.tmp-*` directory, never a half-written `path`. An existing
  `path` is replaced only after the new one is complete.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.tmp-{path.name}-', dir=path.parent))
  try:
    write(tmp)
    commit_dir(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return path


def save_hf_dir(path, tensors: Mapping[str, np.ndarray], config: Mapping,
                copy_from: str | os.PathLike | None = None,
                max_shard_bytes: int = 4 * 1024**3) -> pathlib.Path:
  """Writes config.json + safetensors (sharded past `max_shard_bytes`) atomically."""
  def write(tmp: pathlib.Path):
    (tmp / 'config.json').write_text(json.dumps(dict(config), indent=2, sort_keys=True))
    shards, current, size = [], {}, 0
    for key in sorted(tensors):
      nbytes = tensors[key].nbytes
      if current and size + nbytes > max_shard_bytes:
        shards.append(current)
        current, size = {}, 0
      current[key] = tensors[key]
      size += nbytes
    shards.append(current)
    if len(shards) == 1:
      save_file(shards[0], str(tmp / SAFETENSORS_FILE), metadata={'format': 'pt'})
    else:
      weight_map = {}
      for i, shard in enumerate(shards):
        name = f'model-{i + 1:05d}-of-{len(shards):05d}.safetensors'
        save_file(shard, str(tmp / name), metadata={'format': 'pt'})
        weight_map.update({k: name for k in shard})
      total = sum(t.nbytes for t in tensors.values())
      (tmp / INDEX_FILE).write_text(json.dumps(
          {'metadata': {'total_size': total}, 'weight_map': weight_map}, indent=2))
    if copy_from is not None:
      copy_tokenizer_files(copy_from, tmp)
  return atomic_dir(path, write)


def copy_tokenizer_files(src, dst) -> None:
  src, dst = pathlib.Path(src), pathlib.Path(dst)
  for name in TOKENIZER_FILES:
    if (src / name).exists():
      shutil.copy2(src / name, dst / name)


def read_config(path) -> dict:
  path = pathlib.Path(path)
  if not (path / 'config.json').exists():
    raise FileNotFoundError(f'{path}: no config.json (is this an HF model directory?)')
  return json.loads((path / 'config.json').read_text())


def abstract_params(model_factory: Callable[[], nnx.Module]) -> tuple[Any, nnx.State, dict]:
  """(graphdef, abstract NNX state, abstract pure dict) without allocating weights."""
  from flax import nnx  # local: checkpoint tools (RELEX) read and write HF files without NNX
  graphdef, state = nnx.split(nnx.eval_shape(model_factory))
  return graphdef, state, nnx.to_pure_dict(state)
