"""The jitted DPO train step: its loss is `dpo_loss` of naively computed log-probs, the
reference log-probs come from the frozen params, and a sharded mesh matches one device."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import tasks
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import layers
from jaxpapers.core.models import qwen
from jaxpapers.core.rl import dpo as dpo_lib
from jaxpapers.core.runners import dpo as dpo_runner

OPT = {'learning_rate': 3e-3, 'warmup_steps': 0, 'schedule': 'constant', 'max_grad_norm': 1.0}
CFG = qwen.preset('qwen3-tiny', vocab_size=len(tasks.CharTokenizer()))
SEQ_LEN = 12


def _batch(n=8, seed=0):
  pairs = tasks.preference_pairs(n, seed)
  return dpo_runner.stacked(pairs, dpo_runner.EncodePair(tasks.CharTokenizer(), SEQ_LEN))


def _naive_logps(params, graphdef, tokens, loss_mask, attention_mask):
  """Summed completion log-probs from full [B, T, V] logits (no chunking)."""
  logits, _ = nnx.merge(graphdef, params)(tokens, kv_mask=attention_mask)
  logp = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), -1)
  picked = jnp.take_along_axis(logp, tokens[:, 1:, None], -1)[..., 0]
  mask = loss_mask[:, 1:]
  return (picked * mask).sum(-1), mask.sum(-1)


def _params(seed):
  model = layers.Decoder(CFG, nnx.Rngs(params=seed))
  return nnx.graphdef(model), nnx.to_pure_dict(nnx.state(model, nnx.Param))


def _setup(mesh, loss_cfg, n_steps):
  make = lambda: layers.Decoder(CFG, nnx.Rngs(params=0))  # noqa: E731
  graphdef, abstract, _ = hf.abstract_params(make)
  optimizer = train_lib.make_optimizer(OPT, n_steps)
  init, _, shardings = train_lib.sharded_state(
      lambda: nnx.to_pure_dict(nnx.state(make(), nnx.Param)),
      mesh_lib.param_shardings(abstract, mesh), optimizer, 0, mesh)
  fields = {**{k: 2 for k in dpo_lib.PAIR_FIELDS}, **{k: 1 for k in dpo_lib.REF_FIELDS}}
  step = train_lib.compile_step(dpo_lib.make_train_step(graphdef, optimizer, loss_cfg),
                                shardings, mesh, fields)
  return graphdef, init, step


def _global(batch, mesh):
  return {k: jax.device_put(v, mesh_lib.batch_sharding(mesh, v.ndim)) for k, v in batch.items()}


@pytest.mark.parametrize('loss_type,sft_weight', [('sigmoid', 0.0), ('ipo', 0.5)])
def test_dpo_step_loss_equals_dpo_loss_of_naive_logps(loss_type, sft_weight):
  loss_cfg = dpo_lib.DPOLossConfig(loss_type=loss_type, beta=0.5, sft_weight=sft_weight)
  graphdef, params = _params(seed=0)
  _, ref_params = _params(seed=1)     # a reference that differs from the policy
  optimizer = train_lib.make_optimizer(OPT, 1)
  step = jax.jit(dpo_lib.make_train_step(graphdef, optimizer, loss_cfg), donate_argnums=(0,))
  batch = _batch()
  ref = jax.jit(dpo_lib.make_reference_logps_fn(graphdef))(ref_params, batch)

  @jax.jit
  def naive(params, ref_params):
    """Per side (logps, lengths) of policy and reference, then dpo_loss on them directly."""
    sides = {}
    for p, who in ((params, 'policy'), (ref_params, 'ref')):
      for side in ('chosen', 'rejected'):
        sides[who, side] = _naive_logps(p, graphdef, *(batch[f'{side}_{k}'] for k in
                                                       ('tokens', 'loss_mask', 'attention_mask')))
    (c, len_c), (r, len_r) = sides['policy', 'chosen'], sides['policy', 'rejected']
    ref_c, ref_r = sides['ref', 'chosen'][0], sides['ref', 'rejected'][0]
    return ref_c, ref_r, dpo_lib.dpo_loss(c, r, ref_c, ref_r, loss_cfg, chosen_lengths=len_c,
                                          rejected_lengths=len_r)

  ref_c, ref_r, (want, want_m) = naive(params, ref_params)
  np.testing.assert_allclose(ref['ref_chosen_logps'], ref_c, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ref['ref_rejected_logps'], ref_r, rtol=1e-5, atol=1e-5)
  state = train_lib.state_from_params(jax.tree.map(jnp.copy, params), optimizer, 0)
  new_state, m = step(state, {**batch, **ref}, state.rng)
  np.testing.assert_allclose(m['loss'], want, rtol=1e-5, atol=1e-6)
  for k in ('rewards/margins', 'rewards/accuracies', 'logps/chosen', 'nll'):
    np.testing.assert_allclose(m[k], want_m[k], rtol=1e-5, atol=1e-5, err_msg=k)
  assert int(new_state.step) == 1 and np.isfinite(float(m['grad_norm']))


def _run_steps(mesh, n_steps=2):
  graphdef, init, step = _setup(mesh, dpo_lib.DPOLossConfig(), n_steps)
  _, ref_params = _params(seed=1)
  ref_fn = jax.jit(dpo_lib.make_reference_logps_fn(graphdef))
  state, losses = init(), []
  for i in range(n_steps):
    batch = _global(_batch(seed=i), mesh)
    state, m = step(state, {**batch, **ref_fn(ref_params, batch)}, state.rng)
    losses.append(float(m['loss']))
  return jax.device_get(state.params), losses


def test_dpo_step_sharded_mesh_matches_single_device():
  ref_params, ref_losses = _run_steps(mesh_lib.make_mesh({'data': 1},
                                                         devices=jax.devices()[:1]))
  params, losses = _run_steps(mesh_lib.make_mesh({'data': 2, 'fsdp': 2, 'tensor': 2}))
  np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4), params,
               ref_params)
