"""Qwen2/Qwen3 decoder: golden parity with transformers, HF round trip, load errors, KV cache.

Goldens (tests/golden/qwen/<name>/, written by tests/golden/make_qwen_goldens.py) hold a tiny
random HF checkpoint and the torch logits of a left-padded batch, so parity runs without torch.
Tests marked `parity` build fresh HF models and need torch; they skip when it is missing.
"""
import json
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P
from safetensors import numpy as st_numpy

from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import layers
from jaxpapers.core.models import loading
from jaxpapers.core.models import qwen

GOLDENS = ('qwen2_tied', 'qwen2_untied', 'qwen3_tied', 'qwen3_untied')
ATOL = 1e-4


def _golden(golden_dir, name):
  """(checkpoint dir, dict of the golden.npz arrays)."""
  path = golden_dir / 'qwen' / name
  with np.load(path / 'golden.npz') as f:
    return path, dict(f)


def _forward(model, batch):
  """Full-sequence logits [B, T, V] as float32 numpy, through one jitted pure function."""
  graphdef, state = nnx.split(model)

  @jax.jit
  def logits_fn(state, tokens, positions, kv_mask):
    return nnx.merge(graphdef, state)(tokens, positions=positions, kv_mask=kv_mask)[0]

  out = logits_fn(state, batch['input_ids'], batch['position_ids'], batch['attention_mask'])
  return np.asarray(out.astype(jnp.float32))


def _assert_close_on_real_tokens(actual, expected, mask, atol, rtol=0.0):
  """Compares [B, T, V] logits at query positions where mask [B, T] is 1 (pads are garbage)."""
  chex.assert_equal_shape([actual, expected])
  keep = np.asarray(mask) > 0
  np.testing.assert_allclose(actual[keep], expected[keep], atol=atol, rtol=rtol)


def _mutated_checkpoint(src, dst, mutate):
  """Copies an HF dir's config.json and rewrites its safetensors through `mutate(tensors)`."""
  dst.mkdir(parents=True, exist_ok=True)
  (dst / 'config.json').write_text((src / 'config.json').read_text())
  tensors = st_numpy.load_file(src / hf.SAFETENSORS_FILE)
  mutate(tensors)
  st_numpy.save_file(tensors, dst / hf.SAFETENSORS_FILE, metadata={'format': 'pt'})
  return dst


# ----------------------------------------------------------------------------- golden parity


@pytest.mark.parametrize('name', GOLDENS)
def test_from_pretrained_golden_matches_torch_logits(golden_dir, name):
  path, batch = _golden(golden_dir, name)
  model = qwen.from_pretrained(path)
  _assert_close_on_real_tokens(_forward(model, batch), batch['logits'],
                               batch['attention_mask'], ATOL)


@pytest.mark.parametrize('name', GOLDENS)
def test_config_from_hf_golden_reads_family_tying_and_rope(golden_dir, name):
  path, _ = _golden(golden_dir, name)
  hf_config = hf.read_config(path)
  cfg = qwen.config_from_hf(hf_config)
  assert cfg.family == hf_config['model_type']
  assert cfg.tie_word_embeddings == hf_config['tie_word_embeddings']
  assert cfg.rope_theta == hf_config['rope_parameters']['rope_theta']
  assert cfg.rope_scaling is None
  assert cfg.attention_bias == (cfg.family == 'qwen2')
  assert cfg.qk_norm == (cfg.family == 'qwen3')


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize('name', GOLDENS)
def test_save_pretrained_round_trip_params_exactly_equal(golden_dir, tmp_path, name):
  path, _ = _golden(golden_dir, name)
  model = qwen.from_pretrained(path)
  qwen.save_pretrained(model, tmp_path / 'out')
  reloaded = qwen.from_pretrained(tmp_path / 'out')
  assert reloaded.config == model.config
  chex.assert_trees_all_equal(loading.params_of(reloaded), loading.params_of(model))


@pytest.mark.parametrize('dtype', ['bfloat16', jnp.bfloat16, np.dtype('bfloat16'), 'float32',
                                   jnp.float32, np.float32], ids=str)
def test_from_pretrained_dtype_as_name_jnp_or_numpy_round_trips_through_save(
    golden_dir, tmp_path, dtype):
  path, _ = _golden(golden_dir, 'qwen2_tied')
  model = qwen.from_pretrained(path, dtype=dtype)
  name = layers.dtype_name(dtype)
  assert (model.config.dtype, model.config.param_dtype) == (name, name)   # stored as a name
  qwen.save_pretrained(model, tmp_path / 'out', dtype=dtype)
  assert json.loads((tmp_path / 'out' / 'config.json').read_text())['dtype'] == name
  reloaded = qwen.from_pretrained(tmp_path / 'out', dtype=dtype)
  assert reloaded.config == model.config
  chex.assert_trees_all_equal(loading.params_of(reloaded), loading.params_of(model))


def test_dtype_name_unknown_dtype_raises_listing_valid_names():
  with pytest.raises(ValueError, match='bfloat16'):
    layers.dtype_name(np.int32)


@pytest.mark.parity
@pytest.mark.parametrize('name', GOLDENS)
def test_save_pretrained_output_loads_in_transformers_with_golden_logits(golden_dir, tmp_path,
                                                                        name):
  torch = pytest.importorskip('torch')
  transformers = pytest.importorskip('transformers')
  path, batch = _golden(golden_dir, name)
  qwen.save_pretrained(qwen.from_pretrained(path), tmp_path / 'out')
  model = transformers.AutoModelForCausalLM.from_pretrained(
      tmp_path / 'out', dtype=torch.float32, attn_implementation='eager').eval()
  with torch.no_grad():
    logits = model(**{k: torch.as_tensor(batch[k], dtype=torch.long)
                      for k in ('input_ids', 'attention_mask', 'position_ids')}).logits
  _assert_close_on_real_tokens(logits.numpy(), batch['logits'], batch['attention_mask'], ATOL)


# ----------------------------------------------------------------------------- live parity

_LIVE = {
    'qwen2_untied_theta5e4': ('qwen2', 21, dict(tie_word_embeddings=False, rope_theta=50_000.0)),
    'qwen3_tied_theta1e4': ('qwen3', 22, dict(tie_word_embeddings=True, rope_theta=10_000.0)),
    'qwen3_kv1_heads8': ('qwen3', 23, dict(tie_word_embeddings=False, num_attention_heads=8,
                                           num_key_value_heads=1, head_dim=8)),
    # HF Qwen3 with attention_bias=True also has an o_proj bias.
    'qwen3_attention_bias': ('qwen3', 24, dict(tie_word_embeddings=True, attention_bias=True)),
}


@pytest.mark.parity
@pytest.mark.parametrize('spec', list(_LIVE.values()), ids=list(_LIVE))
def test_from_pretrained_fresh_hf_model_matches_torch_logits(tmp_path, spec):
  pytest.importorskip('torch')
  from tests.golden import make_qwen_goldens as goldens_lib
  family, seed, overrides = spec
  hf_model = goldens_lib.build_model(family, seed, **overrides)
  hf_model.save_pretrained(tmp_path / 'hf')
  ids, mask, pos = goldens_lib.make_inputs(seed, hf_model.config.vocab_size,
                                           lengths=(12, 1, 7))
  expected = goldens_lib.torch_logits(hf_model, ids, mask, pos)
  model = qwen.from_pretrained(tmp_path / 'hf')
  batch = {'input_ids': ids, 'attention_mask': mask, 'position_ids': pos}
  _assert_close_on_real_tokens(_forward(model, batch), expected, mask, ATOL)


# ----------------------------------------------------------------------------- dtype


def test_from_pretrained_bfloat16_params_bf16_and_logits_close_to_fp32(golden_dir):
  path, batch = _golden(golden_dir, 'qwen3_untied')
  model = qwen.from_pretrained(path, dtype='bfloat16')
  dtypes = {x.dtype for x in jax.tree.leaves(loading.params_of(model))}
  assert dtypes == {jnp.dtype(jnp.bfloat16)}
  # bf16 keeps ~3 significant digits; logits here are O(1).
  _assert_close_on_real_tokens(_forward(model, batch), batch['logits'],
                               batch['attention_mask'], atol=0.08, rtol=0.02)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize('name, key', [
    ('qwen3_tied', 'model.layers.1.self_attn.k_proj.weight'),
    ('qwen3_tied', 'model.layers.0.self_attn.q_norm.weight'),
    ('qwen2_tied', 'model.layers.1.self_attn.v_proj.bias'),
    ('qwen2_untied', 'lm_head.weight'),
])
def test_from_pretrained_missing_tensor_raises_naming_key(golden_dir, tmp_path, name, key):
  path, _ = _golden(golden_dir, name)
  bad = _mutated_checkpoint(path, tmp_path / 'bad', lambda t: t.pop(key))
  with pytest.raises(hf.CheckpointKeyError, match=re.escape(key)):
    qwen.from_pretrained(bad)


@pytest.mark.parametrize('key, bad_shape', [
    ('model.layers.0.mlp.up_proj.weight', (64, 31)),    # transposed into a kernel
    ('model.norm.weight', (33,)),                       # copied as is
])
def test_from_pretrained_wrong_shape_raises_naming_key_and_shapes(golden_dir, tmp_path, key,
                                                                  bad_shape):
  path, _ = _golden(golden_dir, 'qwen3_untied')
  good_shape = {}

  def mutate(tensors):
    good_shape['shape'] = tensors[key].shape
    tensors[key] = np.zeros(bad_shape, np.float32)

  bad = _mutated_checkpoint(path, tmp_path / 'bad', mutate)
  with pytest.raises(hf.CheckpointKeyError) as err:
    qwen.from_pretrained(bad)
  message = str(err.value)
  assert key in message
  assert str(bad_shape) in message
  assert str(tuple(good_shape['shape'])) in message


def test_from_pretrained_unexpected_tensor_raises_naming_it(golden_dir, tmp_path):
  path, _ = _golden(golden_dir, 'qwen2_untied')
  key = 'model.layers.0.mlp.extra_proj.weight'
  bad = _mutated_checkpoint(path, tmp_path / 'bad',
                            lambda t: t.update({key: np.zeros((4, 4), np.float32)}))
  with pytest.raises(hf.CheckpointKeyError, match=re.escape(key)):
    qwen.from_pretrained(bad)


def test_from_pretrained_tied_checkpoint_with_lm_head_loads(golden_dir, tmp_path):
  path, batch = _golden(golden_dir, 'qwen3_tied')

  def add_lm_head(tensors):
    tensors['lm_head.weight'] = tensors['model.embed_tokens.weight'].copy()

  model = qwen.from_pretrained(_mutated_checkpoint(path, tmp_path / 'ok', add_lm_head))
  assert model.lm_head is None
  _assert_close_on_real_tokens(_forward(model, batch), batch['logits'],
                               batch['attention_mask'], ATOL)


# ----------------------------------------------------------------------------- KV cache


@pytest.mark.parametrize('name', ['qwen2_untied', 'qwen3_tied'])
def test_decoder_prefill_then_decode_matches_full_forward(golden_dir, name):
  path, batch = _golden(golden_dir, name)
  model = qwen.from_pretrained(path)
  ids, pos, mask = batch['input_ids'], batch['position_ids'], batch['attention_mask']
  b, t = ids.shape
  prefill = 6   # row 2 has 7 pads: its prefill is all padding
  graphdef, state = nnx.split(model)

  @jax.jit
  def step(state, cache, tokens, positions, index):
    return nnx.merge(graphdef, state)(tokens, positions=positions, kv_mask=mask, cache=cache,
                                      cache_index=index)

  cache = layers.init_cache(model.config, b, t)
  logits, cache = step(state, cache, ids[:, :prefill], pos[:, :prefill], 0)
  chunks = [np.asarray(logits)]
  for i in range(prefill, t):
    logits, cache = step(state, cache, ids[:, i:i + 1], pos[:, i:i + 1], i)
    chunks.append(np.asarray(logits))
  cached = np.concatenate(chunks, axis=1)
  _assert_close_on_real_tokens(cached, _forward(model, batch), mask, atol=1e-5)
  _assert_close_on_real_tokens(cached, batch['logits'], mask, ATOL)


# ----------------------------------------------------------------------------- sharding


def test_from_pretrained_on_mesh_shards_params_and_matches_golden(golden_dir):
  path, batch = _golden(golden_dir, 'qwen3_untied')
  mesh = mesh_lib.make_mesh({'data': 2, 'fsdp': 2, 'tensor': 2})
  model = qwen.from_pretrained(path, mesh=mesh)
  gate = model.layers[0].mlp.gate_proj.kernel[...]               # [embed, mlp]
  assert gate.sharding.spec == P('fsdp', 'tensor')
  assert not gate.sharding.is_fully_replicated
  for leaf in jax.tree.leaves(loading.params_of(model)):
    assert leaf.sharding.mesh.shape == mesh.shape
  _assert_close_on_real_tokens(_forward(model, batch), batch['logits'],
                               batch['attention_mask'], ATOL)
