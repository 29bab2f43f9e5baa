"""Trainer stages: NaN stop, sharded == single-device steps."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import layers
from jaxpapers.core.models import qwen
from jaxpapers.core.rl import sft as sft_lib

OPT = {'learning_rate': 1e-2, 'warmup_steps': 0, 'schedule': 'constant', 'max_grad_norm': 1.0}


def _batch(cfg, b=8, t=12, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, cfg.vocab_size, (b, t)).astype(np.int32)
  lengths = rng.integers(t // 2, t + 1, b)
  attn = (np.arange(t)[None] < lengths[:, None]).astype(np.int32)
  loss_mask = attn * (np.arange(t)[None] >= 3)
  return {'tokens': tokens, 'loss_mask': loss_mask.astype(np.float32), 'attention_mask': attn}


def _run_sft_steps(mesh, cfg, n_steps=3):
  make = lambda: layers.Decoder(cfg, nnx.Rngs(params=0))  # noqa: E731
  graphdef, abstract, _ = hf.abstract_params(make)
  optimizer = train_lib.make_optimizer(OPT, n_steps)
  init, _, shardings = train_lib.sharded_state(
      lambda: nnx.to_pure_dict(nnx.state(make(), nnx.Param)),
      mesh_lib.param_shardings(abstract, mesh), optimizer, 0, mesh)
  step = train_lib.compile_step(sft_lib.make_train_step(graphdef, optimizer), shardings, mesh,
                                {'tokens': 2, 'loss_mask': 2, 'attention_mask': 2})
  state = init()
  losses = []
  for i in range(n_steps):
    batch = {k: jax.device_put(v, mesh_lib.batch_sharding(mesh)) for k, v in
             _batch(cfg).items()}
    state, m = step(state, batch, state.rng)
    losses.append(float(m['loss']))
  return jax.device_get(state.params), losses


@pytest.mark.parametrize('axes', [{'data': 2, 'fsdp': 2, 'tensor': 2}, {'fsdp': 4, 'tensor': 2},
                                  {'data': 8}])
def test_sft_step_sharded_matches_single_device(axes):
  cfg = qwen.preset('qwen3-tiny', vocab_size=256)
  ref_params, ref_losses = _run_sft_steps(
      mesh_lib.make_mesh({'data': 1}, devices=jax.devices()[:1]), cfg)
  params, losses = _run_sft_steps(mesh_lib.make_mesh(axes), cfg)
  np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4), params,
               ref_params)
  assert losses[-1] < losses[0]


def test_run_loop_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
  state = train_lib.TrainState(step=jnp.zeros((), jnp.int32), params={'w': jnp.ones(())},
                               opt_state=(), rng=jax.random.PRNGKey(0))

  def step(st, batch, rng):
    loss = jnp.where(batch['i'] >= 5, jnp.nan, 1.0)
    return st.replace(step=st.step + 1, params={'w': st.params['w'] * loss}), {'loss': loss}

  ck = ckpt_lib.Checkpointer(tmp_path / 'ckpt', every=2, keep=10, async_save=False)
  batches = ({'i': jnp.array(i)} for i in range(1, 100))
  with pytest.raises(train_lib.NonFiniteError, match='loss is not finite at step 5'):
    train_lib.run_loop(step, state, batches, start_step=0, total_steps=10, log_every=3,
                       checkpointer=ck, writer=metrics_lib.MetricWriter(tmp_path))
  ck.wait()
  assert ck.all_steps() == [2, 4]   # step 6 would hold NaN params: never written


def test_make_optimizer_bad_schedule_names_field():
  with pytest.raises(ValueError, match='optimizer.schedule'):
    train_lib.make_optimizer({**OPT, 'schedule': 'exp'}, 10)
