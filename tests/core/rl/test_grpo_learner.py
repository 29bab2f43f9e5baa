"""GRPO learner: sequence assembly, completion log-probs, and the jitted update."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxpapers.core import logprobs as logprobs_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import qwen
from jaxpapers.core.rl import grpo as grpo_lib
from jaxpapers.core.rl import grpo_learner

CFG = qwen.preset('qwen3-tiny', vocab_size=64)


def _rollout(seed=0):
  rng = np.random.default_rng(seed)
  p_tokens = rng.integers(3, 64, (4, 6)).astype(np.int32)
  p_mask = np.ones((4, 6), np.int32)
  p_mask[1, :2] = 0      # left padding
  p_mask[3, :4] = 0
  c_tokens = rng.integers(3, 64, (4, 5)).astype(np.int32)
  c_mask = (np.arange(5)[None] < np.array([5, 3, 1, 4])[:, None]).astype(np.int32)
  return p_tokens, p_mask, c_tokens, c_mask


def test_completion_logps_match_unpadded_full_forward():
  model = qwen.init(CFG)
  p_tokens, p_mask, c_tokens, c_mask = _rollout()
  tokens, kv_mask = grpo_learner.assemble(p_tokens, p_mask, c_tokens, c_mask)
  got = grpo_learner.completion_logps(model, jnp.asarray(tokens), jnp.asarray(kv_mask), 5)
  for row in range(4):   # same row without its padding, plain positions
    real = tokens[row][kv_mask[row] > 0][None]
    ref = logprobs_lib.decoder_next_token_logprobs(model, jnp.asarray(real))
    n = int(c_mask[row].sum())
    np.testing.assert_allclose(got[row, :n], ref[0, -n:] if n else ref[0, :0], atol=1e-5)


def test_train_step_loss_equals_grpo_loss_and_moves_params():
  model = qwen.init(CFG)
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  p_tokens, p_mask, c_tokens, c_mask = _rollout()
  tokens, kv_mask = grpo_learner.assemble(p_tokens, p_mask, c_tokens, c_mask)
  adv = np.array([1.0, -1.0, 0.5, -0.5], np.float32)
  cfg = grpo_lib.GRPOLossConfig(loss_type='grpo', epsilon_high=0.28)
  zeros = np.zeros(c_mask.shape, np.float32)
  batch = grpo_learner.RolloutBatch(tokens, kv_mask, c_mask, adv, zeros, zeros)
  optimizer = train_lib.make_optimizer({'learning_rate': 1e-2, 'schedule': 'constant'}, 10)
  tstate = train_lib.state_from_params(params, optimizer, 0)
  step = jax.jit(grpo_learner.make_train_step(graphdef, optimizer, cfg, use_old_logps=False))
  new_state, metrics = step(tstate, batch, tstate.rng)
  logps = grpo_learner.completion_logps(model, tokens, kv_mask, 5)
  want, _ = grpo_lib.grpo_loss(logps, None, None, jnp.asarray(adv), jnp.asarray(c_mask), cfg)
  np.testing.assert_allclose(metrics['loss'], want, rtol=1e-5)
  # on-policy: ratio 1, loss = -mean advantage over sequences
  np.testing.assert_allclose(metrics['loss'], -adv.mean(), atol=1e-5)
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), new_state.params, params)
  assert max(jax.tree.leaves(moved)) > 0
  assert int(new_state.step) == 1


def test_group_advantages_zero_for_constant_groups():
  from jaxpapers.core.rl import advantages as adv_lib
  adv = grpo_learner.group_advantages(np.array([1, 1, 0, 1], np.float32), 2,
                                      adv_lib.AdvantageConfig())
  np.testing.assert_allclose(adv[:2], 0.0)
  assert adv[2] < 0 < adv[3]


def test_grpo_updates_raise_probability_of_rewarded_token():
  """Bandit check of the whole update direction: reward 1 when the sampled token is 7."""
  model = qwen.init(CFG)
  graphdef, state = nnx.split(model)
  optimizer = train_lib.make_optimizer({'learning_rate': 3e-3, 'schedule': 'constant'}, 50)
  tstate = train_lib.state_from_params(nnx.to_pure_dict(state), optimizer, 0)
  step = jax.jit(grpo_learner.make_train_step(graphdef, optimizer, grpo_lib.GRPOLossConfig(),
                                              use_old_logps=False))
  prompt = np.full((16, 3), 5, np.int32)
  p_mask = np.ones_like(prompt)

  def prob_of_7(params):
    logits, _ = nnx.merge(graphdef, params)(jnp.asarray(prompt[:1]))
    return float(jax.nn.softmax(logits[0, -1])[7])

  before = prob_of_7(tstate.params)
  rng = np.random.default_rng(0)
  for _ in range(15):
    logits, _ = nnx.merge(graphdef, tstate.params)(jnp.asarray(prompt))
    probs = np.asarray(jax.nn.softmax(logits[:, -1]), np.float64)
    sampled = np.array([rng.choice(64, p=p / p.sum()) for p in probs], np.int32)[:, None]
    sampled[:4] = 7                                   # make sure some rows are rewarded
    rewards = (sampled[:, 0] == 7).astype(np.float32)
    from jaxpapers.core.rl import advantages as adv_lib
    adv = grpo_learner.group_advantages(rewards, 16, adv_lib.AdvantageConfig())
    tokens, kv = grpo_learner.assemble(prompt, p_mask, sampled, np.ones_like(sampled))
    zeros = np.zeros(sampled.shape, np.float32)
    tstate, _ = step(tstate, grpo_learner.RolloutBatch(tokens, kv, np.ones_like(sampled), adv,
                                                       zeros, zeros), tstate.rng)
  assert prob_of_7(tstate.params) > 10 * before   # measured: 0.014 -> 0.45
