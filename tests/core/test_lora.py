"""LoRA adapters: exact no-op init, the LoRA step is the chain rule of the full step, training
learns, merged export loads (ours and transformers), config errors, adapter-only checkpoints."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import data as data_lib
from jaxpapers.core import hf
from jaxpapers.core import lora
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import layers
from jaxpapers.core.models import loading
from jaxpapers.core.models import qwen
from jaxpapers.core.rl import sft as sft_lib

LORA = lora.LoraConfig(rank=4, alpha=8.0)
OPT = {'learning_rate': 1e-2, 'schedule': 'constant', 'max_grad_norm': 1.0}
BATCH_NDIMS = {'tokens': 2, 'loss_mask': 2, 'attention_mask': 2}


def _batch(vocab, b=4, t=16, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, vocab, (b, t)).astype(np.int32)
  attn = np.ones((b, t), np.int32)
  attn[0, :3] = 0  # one left-padded row
  loss_mask = attn * (np.arange(t)[None] >= 4)
  return {'tokens': tokens, 'loss_mask': loss_mask.astype(np.float32), 'attention_mask': attn}


def _perturbed(adapters, seed=1, std=0.05):
  """Adapters with non-zero B (and A moved too), so both gradients are non-trivial."""
  leaves, treedef = jax.tree.flatten(adapters)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return treedef.unflatten([x + std * jax.random.normal(k, x.shape, x.dtype)
                            for x, k in zip(leaves, keys)])


def _logits(model_cfg, params, tokens):
  graphdef, _, _ = hf.abstract_params(lambda: layers.Decoder(model_cfg, nnx.Rngs(0)))
  fn = jax.jit(lambda p, t: nnx.merge(graphdef, p)(t)[0])
  return np.asarray(fn(params, tokens))


@pytest.fixture(scope='module')
def tiny(tiny_qwen3):
  """(model config, graphdef, base params, loss_fn, batch) of a random tiny Qwen3."""
  graphdef, state = nnx.split(qwen.init(tiny_qwen3, seed=0))
  params = nnx.to_pure_dict(state)
  loss_fn = lambda p, b: sft_lib.sft_loss(p, graphdef, b)  # noqa: E731
  return tiny_qwen3, graphdef, params, loss_fn, _batch(tiny_qwen3.vocab_size)


@pytest.fixture(scope='module')
def adapters(tiny):
  return _perturbed(lora.init_adapters(tiny[2], LORA, jax.random.key(0)))


merge_jit = jax.jit(lora.merge, static_argnums=2)


# ----------------------------------------------------------------------------- init / merge


def test_init_adapters_fresh_merge_equals_base_exactly_and_abstract_shapes_match(tiny):
  _, _, params, _, _ = tiny
  fresh = lora.init_adapters(params, LORA, jax.random.key(0))
  chex.assert_trees_all_equal(merge_jit(params, fresh, LORA), params)
  abstract = jax.eval_shape(lambda: params)
  shapes = jax.eval_shape(lambda: lora.init_adapters(abstract, LORA, jax.random.key(0)))
  chex.assert_trees_all_equal_shapes_and_dtypes(shapes, fresh)
  flat = hf.flatten(fresh)
  assert flat['layers.1.self_attn.k_proj.a'].shape == (64, 4)
  assert flat['layers.1.self_attn.k_proj.b'].shape == (4, 32)
  assert len(flat) == 2 * 7 * 2 and all(v.dtype == jnp.float32 for v in flat.values())
  assert not np.any(flat['layers.0.mlp.up_proj.b'])
  bound = 1 / np.sqrt(64)  # kaiming-uniform(a=sqrt(5)) bound for fan_in 64
  a = np.asarray(flat['layers.0.mlp.up_proj.a'])
  assert np.abs(a).max() <= bound and np.abs(a).max() > 0.9 * bound
  assert lora.num_trainable(fresh) == sum(v.size for v in flat.values())


def test_merge_adds_scaled_product_and_leaves_other_params_alone(tiny, adapters):
  _, _, params, _, _ = tiny
  merged, flat_p, flat_a = hf.flatten(merge_jit(params, adapters, LORA)), hf.flatten(params), \
      hf.flatten(adapters)
  assert LORA.scale == 2.0 and lora.LoraConfig(rank=4, alpha=8.0, rslora=True).scale == 4.0
  for key, value in merged.items():
    module = key.rsplit('.', 1)[0]
    if f'{module}.a' in flat_a:
      expected = flat_p[key] + LORA.scale * flat_a[f'{module}.a'] @ flat_a[f'{module}.b']
      np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)
    else:
      np.testing.assert_array_equal(value, flat_p[key])


def test_target_modules_suffix_selects_only_those_kernels(tiny):
  cfg = lora.LoraConfig(target_modules=('self_attn.q_proj', 'down_proj'))
  flat = hf.flatten(lora.init_adapters(tiny[2], cfg, jax.random.key(0)))
  assert sorted({k.split('.', 2)[2].rsplit('.', 1)[0] for k in flat}) == [
      'mlp.down_proj', 'self_attn.q_proj']


# ----------------------------------------------------------------------------- step


def test_lora_step_equals_full_step_chain_rule_and_base_is_untouched(tiny, adapters):
  _, _, params, loss_fn, batch = tiny
  grad = lambda f: jax.jit(jax.value_and_grad(f, has_aux=True))  # noqa: E731
  (lora_loss, _), g_ad = grad(lora.lora_loss(loss_fn, LORA))(adapters, params, batch)
  (full_loss, _), g_full = grad(loss_fn)(merge_jit(params, adapters, LORA), batch)
  np.testing.assert_allclose(lora_loss, full_loss, rtol=1e-6)
  flat_a, flat_g, flat_full = hf.flatten(adapters), hf.flatten(g_ad), hf.flatten(g_full)
  for key in flat_a:
    if not key.endswith('.a'):
      continue
    module = key[:-2]
    a, b, g = flat_a[module + '.a'], flat_a[module + '.b'], flat_full[module + '.kernel']
    np.testing.assert_allclose(flat_g[module + '.a'], LORA.scale * g @ b.T, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(flat_g[module + '.b'], LORA.scale * a.T @ g, rtol=1e-4, atol=1e-7)
    assert np.abs(flat_g[module + '.a']).max() > 0 and np.abs(flat_g[module + '.b']).max() > 0

  optimizer = train_lib.make_optimizer(OPT, 10)
  state = train_lib.state_from_params(adapters, optimizer, 0)
  base_before = jax.tree.map(np.array, params)
  new_state, metrics = jax.jit(lora.make_train_step(loss_fn, optimizer, LORA))(
      state, params, batch, state.rng)
  chex.assert_trees_all_equal(params, base_before)
  np.testing.assert_allclose(metrics['loss'], full_loss, rtol=1e-6)
  assert {'loss', 'perplexity', 'grad_norm'} <= set(metrics) and int(new_state.step) == 1
  changed = jax.tree.map(lambda x, y: bool(np.any(x != y)), new_state.params, adapters)
  assert all(jax.tree.leaves(changed))
  # Adam keeps two moments per adapter entry and nothing for the base.
  n_opt = sum(x.size for x in jax.tree.leaves(new_state.opt_state))
  assert n_opt < 2 * lora.num_trainable(adapters) + 8


def test_lora_sft_on_sharded_mesh_lowers_loss(tiny):
  model_cfg, graphdef, params, loss_fn, batch = tiny
  mesh = mesh_lib.make_mesh({'data': 1, 'fsdp': 2, 'tensor': 2}, jax.devices()[:4])
  _, abstract_state, abstract = hf.abstract_params(lambda: qwen.init(model_cfg))
  param_shardings = mesh_lib.param_shardings(abstract_state, mesh)
  shardings = lora.adapter_shardings(param_shardings, LORA)
  q = hf.flatten(shardings)['layers.0.self_attn.q_proj.a'], \
      hf.flatten(shardings)['layers.0.self_attn.q_proj.b']
  assert (q[0].spec, q[1].spec) == (P('fsdp', None), P(None, 'tensor'))

  steps, optimizer = 20, train_lib.make_optimizer({**OPT, 'learning_rate': 3e-2}, 20)
  init, _, state_shardings = train_lib.sharded_state(
      lambda: lora.init_adapters(abstract, LORA, jax.random.key(0)), shardings, optimizer, 0,
      mesh)
  base = jax.device_put(params, param_shardings)
  step = lora.compile_step(lora.make_train_step(loss_fn, optimizer, LORA), base, state_shardings,
                           param_shardings, mesh, BATCH_NDIMS)
  state, losses = init(), []
  for _ in range(steps):
    state, metrics = step(state, batch, state.rng)
    losses.append(float(metrics['loss']))
  assert losses[-1] < losses[0] - 0.75, losses  # 5.57 -> 4.49 at the time of writing


# ----------------------------------------------------------------------------- export


@pytest.fixture(scope='module', params=['qwen3-tiny', 'qwen2-tiny'])
def exported(request, tmp_path_factory):
  """(model config, merged params, export dir) for a perturbed adapter set."""
  model_cfg = qwen.preset(request.param, vocab_size=256)
  params = loading.params_of(qwen.init(model_cfg, seed=3))
  adapters = _perturbed(lora.init_adapters(params, LORA, jax.random.key(0)))
  path = tmp_path_factory.mktemp('export') / 'merged'
  lora.export_merged(path, params, adapters, LORA, model_cfg)
  return model_cfg, merge_jit(params, adapters, LORA), path


def test_export_merged_loads_back_with_same_params_and_logits(exported):
  model_cfg, merged, path = exported
  loaded = loading.params_of(qwen.from_pretrained(path))
  chex.assert_trees_all_equal(loaded, merged)
  tokens = _batch(model_cfg.vocab_size)['tokens']
  np.testing.assert_array_equal(_logits(model_cfg, loaded, tokens),
                                _logits(model_cfg, merged, tokens))


@pytest.mark.parity
def test_export_merged_loads_in_transformers_with_same_logits(exported):
  torch = pytest.importorskip('torch')
  import transformers
  model_cfg, merged, path = exported
  tokens = _batch(model_cfg.vocab_size)['tokens']
  model = transformers.AutoModelForCausalLM.from_pretrained(
      path, dtype=torch.float32, attn_implementation='eager').eval()
  with torch.no_grad():
    expected = model(input_ids=torch.as_tensor(tokens, dtype=torch.long)).logits.numpy()
  np.testing.assert_allclose(_logits(model_cfg, merged, tokens), expected, atol=1e-4)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize('kwargs, field', [
    ({'rank': 0}, 'lora.rank'),
    ({'rank': 2.0}, 'lora.rank'),
    ({'alpha': 0.0}, 'lora.alpha'),
    ({'target_modules': ()}, 'lora.target_modules'),
    ({'init': 'pissa'}, 'lora.init'),
])
def test_lora_config_bad_field_raises_naming_it(kwargs, field):
  with pytest.raises(ValueError, match=field):
    lora.LoraConfig(**kwargs)


def test_init_adapters_unknown_target_raises_listing_available_modules(tiny):
  cfg = lora.LoraConfig(target_modules=('q_proj', 'qkv_proj'))
  with pytest.raises(ValueError, match=r"lora\.target_modules: \['qkv_proj'\].*q_proj"):
    lora.init_adapters(tiny[2], cfg, jax.random.key(0))


# ----------------------------------------------------------------------------- checkpoint


def test_checkpoint_round_trips_adapter_state_without_base_kernels(tiny, adapters, tmp_path):
  _, _, params, _, _ = tiny
  optimizer = train_lib.make_optimizer(OPT, 10)
  state = train_lib.state_from_params(adapters, optimizer, 0)
  ckpt = ckpt_lib.Checkpointer(tmp_path / 'ckpt', every=1, async_save=False)
  ckpt.save(1, state, force=True)
  ckpt.wait()
  restored = ckpt.restore(1, ckpt_lib.abstract_like(state))
  ckpt.close()
  chex.assert_trees_all_equal(restored, state)
  assert not any(k.endswith('kernel') for k in hf.flatten(restored.params))
  on_disk = sum(f.stat().st_size for f in (tmp_path / 'ckpt').rglob('*') if f.is_file())
  base_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
  assert on_disk < base_bytes, (on_disk, base_bytes)


@pytest.mark.parametrize('use_lora', [False, True])
def test_trainable_step_matches_the_plain_steps_and_full_params(tiny, adapters, use_lora):
  """lora.Trainable: one interface; its step equals the full / adapter step it stands for."""
  model_cfg, graphdef, params, loss_fn, batch = tiny
  mesh = mesh_lib.make_mesh({'data': -1})
  shardings = mesh_lib.param_shardings(
      hf.abstract_params(lambda: layers.Decoder(model_cfg, nnx.Rngs(0)))[1], mesh)
  policy = lora.Trainable(LORA if use_lora else None, shardings, params if use_lora else None)
  start = adapters if use_lora else params
  optimizer = train_lib.make_optimizer(OPT, 10)
  state = train_lib.state_from_params(start, optimizer, 0)
  _, _, state_shardings = train_lib.sharded_state(lambda: start, policy.shardings, optimizer, 0,
                                                  mesh)
  plain = (jax.jit(lora.make_train_step(loss_fn, optimizer, LORA)) if use_lora
           else jax.jit(train_lib.loss_step(loss_fn, optimizer)))
  want, want_m = (plain(state, params, batch, state.rng) if use_lora
                  else plain(state, batch, state.rng))
  fresh = train_lib.state_from_params(jax.tree.map(jnp.copy, start), optimizer, 0)  # donated
  got, got_m = policy.compile(loss_fn, optimizer, state_shardings, mesh)(fresh, batch, state.rng)
  np.testing.assert_allclose(got_m['loss'], want_m['loss'], rtol=1e-6)
  # Adam's first step is about lr * sign(g): sharded vs single-device sums differ where g ~ 0
  chex.assert_trees_all_close(got.params, want.params, rtol=1e-5, atol=1e-4)
  full = policy.full(got.params)
  expected_full = merge_jit(params, got.params, LORA) if use_lora else got.params
  chex.assert_trees_all_close(full, expected_full, rtol=1e-6)
  assert policy.init_fn(lambda: 'full', params, 0)() == 'full' if not use_lora else (
      jax.tree.structure(policy.init_fn(None, params, 0)()) == jax.tree.structure(adapters))


def test_sft_loss_is_unchanged_by_trimming_right_padding(tiny):
  """What `data.trim_padding` relies on: columns past every row's last token change
  neither the loss nor its gradient."""
  _, _, params, loss_fn, _ = tiny
  rows = [data_lib.pad_example(list(range(5, 5 + n)), [7, 8, 9], seq_len=32, pad_id=0)
          for n in (4, 9)]
  batch = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
  trimmed = data_lib.trim_padding(batch, multiple=8)
  assert trimmed['tokens'].shape == (2, 16)
  grad_fn = jax.value_and_grad(lambda p, b: loss_fn(p, b)[0])
  (full, g_full), (cut, g_cut) = grad_fn(params, batch), grad_fn(params, trimmed)
  np.testing.assert_allclose(cut, full, rtol=1e-5)
  chex.assert_trees_all_close(g_cut, g_full, rtol=1e-4, atol=1e-6)
