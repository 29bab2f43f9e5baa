"""Llama / SmolLM2 decoder: golden parity with transformers (with and without llama3 RoPE
scaling, tied and untied), HF round trip, config mapping, presets, KV cache, sharding.

Goldens (tests/golden/llama/<name>/, written by tests/golden/make_llama_goldens.py) hold a tiny
random HF checkpoint and the torch logits of a left-padded batch, so parity runs without torch.
Tests marked `parity` build fresh HF models and need torch; they skip when it is missing.
"""
import functools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from jaxpapers.core import assets
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.models import llama
from jaxpapers.core.models import loading

GOLDENS = ('llama_tied', 'llama_untied', 'llama3_scaled_tied', 'llama3_scaled_untied')
ATOL = 1e-4


def _golden(golden_dir, name):
  """(checkpoint dir, dict of the golden.npz arrays)."""
  path = golden_dir / 'llama' / name
  with np.load(path / 'golden.npz') as f:
    return path, dict(f)


@functools.partial(jax.jit, static_argnums=0)
def _logits(graphdef, state, tokens, positions, kv_mask):
  return nnx.merge(graphdef, state)(tokens, positions=positions, kv_mask=kv_mask)[0]


def _forward(model, batch):
  """Full-sequence logits [B, T, V] as float32 numpy (one compile per architecture)."""
  graphdef, state = nnx.split(model)
  out = _logits(graphdef, state, batch['input_ids'], batch['position_ids'],
                batch['attention_mask'])
  return np.asarray(out.astype(jnp.float32))


def _assert_close_on_real_tokens(actual, expected, mask, atol, rtol=0.0):
  """Compares [B, T, V] logits at query positions where mask [B, T] is 1 (pads are garbage)."""
  chex.assert_equal_shape([actual, expected])
  keep = np.asarray(mask) > 0
  np.testing.assert_allclose(actual[keep], expected[keep], atol=atol, rtol=rtol)


def _max_err(actual, expected, mask):
  keep = np.asarray(mask) > 0
  return float(np.abs(actual[keep] - expected[keep]).max())


# ----------------------------------------------------------------------------- golden parity


@pytest.mark.parametrize('name', GOLDENS)
def test_from_pretrained_golden_matches_torch_logits(golden_dir, name):
  path, batch = _golden(golden_dir, name)
  model = llama.from_pretrained(path)
  logits = _forward(model, batch)
  err = _max_err(logits, batch['logits'], batch['attention_mask'])
  print(f'{name}: max |ours - torch| = {err:.2e}')
  _assert_close_on_real_tokens(logits, batch['logits'], batch['attention_mask'], ATOL)


@pytest.mark.parametrize('name', GOLDENS)
def test_config_from_hf_golden_reads_tying_rope_and_scaling(golden_dir, name):
  path, _ = _golden(golden_dir, name)
  raw = hf.read_config(path)
  cfg = llama.config_from_hf(raw)
  assert cfg.family == 'llama' and not cfg.qk_norm and not cfg.attention_bias
  assert cfg.tie_word_embeddings == raw['tie_word_embeddings']
  assert cfg.rope_theta == raw['rope_parameters']['rope_theta']
  assert cfg.head_dim == raw.get('head_dim', raw['hidden_size'] // raw['num_attention_heads'])
  scaling = dict(cfg.rope_scaling or {})
  expected = {k: v for k, v in raw['rope_parameters'].items() if k != 'rope_theta'}
  assert scaling == ({} if expected['rope_type'] == 'default' else expected)


def test_from_pretrained_scaled_golden_differs_without_rope_scaling(golden_dir):
  """The llama3 fixtures exercise the scaling: dropping it moves the logits well past ATOL."""
  path, batch = _golden(golden_dir, 'llama3_scaled_tied')
  unscaled = _forward(llama.from_pretrained(path, rope_scaling=None), batch)
  assert _max_err(unscaled, batch['logits'], batch['attention_mask']) > 100 * ATOL


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize('name', ['llama_untied', 'llama3_scaled_tied'])
def test_save_pretrained_round_trip_params_and_config_exactly_equal(golden_dir, tmp_path, name):
  path, _ = _golden(golden_dir, name)
  model = llama.from_pretrained(path)
  llama.save_pretrained(model, tmp_path / 'out')
  reloaded = llama.from_pretrained(tmp_path / 'out')
  assert reloaded.config == model.config
  chex.assert_trees_all_equal(loading.params_of(reloaded), loading.params_of(model))
  written = json.loads((tmp_path / 'out' / 'config.json').read_text())
  assert written['architectures'] == ['LlamaForCausalLM']


@pytest.mark.parity
@pytest.mark.parametrize('name', ['llama_tied', 'llama3_scaled_untied'])
def test_save_pretrained_output_loads_in_transformers_with_golden_logits(golden_dir, tmp_path,
                                                                        name):
  torch = pytest.importorskip('torch')
  transformers = pytest.importorskip('transformers')
  path, batch = _golden(golden_dir, name)
  llama.save_pretrained(llama.from_pretrained(path), tmp_path / 'out')
  model = transformers.AutoModelForCausalLM.from_pretrained(
      tmp_path / 'out', dtype=torch.float32, attn_implementation='eager').eval()
  assert type(model).__name__ == 'LlamaForCausalLM'
  with torch.no_grad():
    logits = model(**{k: torch.as_tensor(batch[k], dtype=torch.long)
                      for k in ('input_ids', 'attention_mask', 'position_ids')}).logits
  _assert_close_on_real_tokens(logits.numpy(), batch['logits'], batch['attention_mask'], ATOL)


# ----------------------------------------------------------------------------- live parity

_LIVE = {
    # GQA down to one KV head, head_dim != hidden / heads.
    'kv1_heads8': (21, dict(tie_word_embeddings=False, num_attention_heads=8,
                            num_key_value_heads=1, head_dim=8)),
    # HF Llama's attention_bias puts a bias on q, k, v and o.
    'attention_bias': (22, dict(tie_word_embeddings=True, attention_bias=True)),
    # Llama 3.1's own scaling numbers with a short original context (all three bands at T=12).
    'llama31_scaling_mha': (23, dict(tie_word_embeddings=False, num_key_value_heads=4,
                                     rope_theta=500_000.0, max_position_embeddings=2048,
                                     rope=dict(rope_type='llama3', factor=8.0,
                                               low_freq_factor=1.0, high_freq_factor=4.0,
                                               original_max_position_embeddings=256))),
}


@pytest.mark.parity
@pytest.mark.parametrize('spec', list(_LIVE.values()), ids=list(_LIVE))
def test_from_pretrained_fresh_hf_model_matches_torch_logits(tmp_path, spec):
  pytest.importorskip('torch')
  from tests.golden import make_llama_goldens
  from tests.golden import make_qwen_goldens
  seed, overrides = spec
  hf_model = make_llama_goldens.build_model(seed, **overrides)
  hf_model.save_pretrained(tmp_path / 'hf')
  ids, mask, pos = make_qwen_goldens.make_inputs(seed, hf_model.config.vocab_size,
                                                 lengths=(12, 1, 7))
  expected = make_qwen_goldens.torch_logits(hf_model, ids, mask, pos)
  model = llama.from_pretrained(tmp_path / 'hf')
  batch = {'input_ids': ids, 'attention_mask': mask, 'position_ids': pos}
  _assert_close_on_real_tokens(_forward(model, batch), expected, mask, ATOL)


# ----------------------------------------------------------------------------- config, presets


def test_config_to_hf_then_from_hf_round_trips_every_preset():
  for name, cfg in llama.PRESETS.items():
    assert llama.config_from_hf(llama.config_to_hf(cfg)) == cfg, name


@pytest.mark.parametrize('name, billions', [
    ('llama2-7b', 6.74), ('llama3-8b', 8.03), ('llama3.1-8b', 8.03), ('llama3.2-1b', 1.24),
    ('llama3.2-3b', 3.21), ('smollm2-135m', 0.1346), ('smollm2-360m', 0.3619),
    ('smollm2-1.7b', 1.711),
])
def test_preset_num_params_matches_released_checkpoint(name, billions):
  assert llama.preset(name).num_params / 1e9 == pytest.approx(billions, rel=5e-3)


def test_config_from_hf_rejects_other_model_type_and_mlp_bias():
  raw = llama.config_to_hf(llama.preset('llama-tiny'))
  with pytest.raises(ValueError, match="'qwen3'"):
    llama.config_from_hf({**raw, 'model_type': 'qwen3'})
  with pytest.raises(ValueError, match='mlp_bias'):
    llama.config_from_hf({**raw, 'mlp_bias': True})


def test_families_resolve_llama_model_type_and_presets(golden_dir):
  assert families.module_for('llama') is llama
  assert families.config_for({'preset': 'smollm2-135m'}) == llama.preset('smollm2-135m')
  hf_dir = str(golden_dir / 'llama' / 'llama_untied')
  assert families.config_for({'hf_dir': hf_dir}).family == 'llama'


def test_asset_path_unknown_name_lists_valid_names():
  with pytest.raises(ValueError, match='smollm2-135m-instruct'):
    assets.path('nope')


# ----------------------------------------------------------------------------- dtype, cache, mesh


def test_from_pretrained_bfloat16_params_bf16_and_logits_close_to_fp32(golden_dir):
  path, batch = _golden(golden_dir, 'llama3_scaled_untied')
  model = llama.from_pretrained(path, dtype='bfloat16')
  assert {x.dtype for x in jax.tree.leaves(loading.params_of(model))} == {jnp.dtype('bfloat16')}
  _assert_close_on_real_tokens(_forward(model, batch), batch['logits'],
                               batch['attention_mask'], atol=0.08, rtol=0.02)


def test_decoder_prefill_then_decode_matches_full_forward(golden_dir):
  path, batch = _golden(golden_dir, 'llama3_scaled_tied')
  model = llama.from_pretrained(path)
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
  _assert_close_on_real_tokens(cached, batch['logits'], mask, ATOL)


def test_from_pretrained_on_mesh_shards_params_and_matches_golden(golden_dir):
  path, batch = _golden(golden_dir, 'llama_untied')
  mesh = mesh_lib.make_mesh({'data': 2, 'fsdp': 2, 'tensor': 2})
  model = llama.from_pretrained(path, mesh=mesh)
  gate = model.layers[0].mlp.gate_proj.kernel[...]               # [embed, mlp]
  assert gate.sharding.spec == P('fsdp', 'tensor')
  _assert_close_on_real_tokens(_forward(model, batch), batch['logits'],
                               batch['attention_mask'], ATOL)
