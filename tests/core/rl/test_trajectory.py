"""GRPO over multi-turn trajectories: loss masks from turn spans, observation tokens outside
the loss, turn-level credit, and one-turn agent rollouts == the single-turn runner."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import agent
from jaxpapers.core import env as env_lib
from jaxpapers.core import lookup_env
from jaxpapers.core import tasks as tasks_lib
from jaxpapers.core.models import layers
from jaxpapers.core.rl import advantages as adv_lib
from jaxpapers.core.rl import grpo as grpo_lib
from jaxpapers.core.rl import grpo_learner
from jaxpapers.core.rl import trajectory
from jaxpapers.core.runners import grpo as grpo_runner

G = 4
ADV = adv_lib.AdvantageConfig()
LOSS = grpo_lib.GRPOLossConfig(loss_type='dapo')


def _model(vocab: int, seed: int = 0):
  cfg = layers.DecoderConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             head_dim=8, qk_norm=True, dtype='float32', param_dtype='float32')
  return nnx.split(layers.Decoder(cfg, nnx.Rngs(params=seed)))


@pytest.fixture(scope='module')
def lookup():
  prompts = lookup_env.prompt_set(8, seed=0)
  graphdef, state = _model(len(prompts.tokenizer))
  return prompts, (graphdef, nnx.to_pure_dict(state))


def _lookup_rollout(lookup, rows, seed=0):
  prompts, pair = lookup
  env = lookup_env.LookupEnv()
  env.reset([prompts.tasks[i] for i in rows])
  cfg = agent.AgentConfig(max_turns=3, max_turn_tokens=12, max_total_tokens=48,
                          stop=lookup_env.STOP, temperature=1.0, prompt_bucket=16)
  scripted = _Scripted(env)      # half the rows search, the others answer at once
  out, episodes = agent.rollout(pair, prompts.tokenizer, [prompts.prompt_ids[i] for i in rows],
                                scripted, cfg, rng=jax.random.key(seed))
  return out, episodes


class _Scripted(env_lib.Environment):
  """The lookup env, seen through a fixed observation per row so every row has env turns."""

  def __init__(self, inner):
    super().__init__()
    self.inner = inner

  def step(self, rows, turns):
    return [env_lib.Observation(lookup_env.observation(str(100 + r)), tool_call=True)
            for r in rows]


def _loss_and_grad(pair, arrays, adv):
  graphdef, params = pair
  loss_fn = grpo_learner.make_loss_fn(graphdef, LOSS, use_old_logps=False)
  zeros = np.zeros(arrays['loss_mask'].shape, np.float32)
  batch = grpo_learner.RolloutBatch(arrays['tokens'], arrays['kv_mask'], arrays['loss_mask'],
                                    jnp.asarray(adv), zeros, zeros)
  (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
  return float(loss), grads


def test_loss_mask_is_the_policy_spans_and_observations_stay_out_of_the_loss(lookup):
  out, episodes = _lookup_rollout(lookup, [0, 1, 2, 3] * 2)
  arrays = trajectory.batch_arrays(out, episodes)
  assert any(t['role'] == 'env' for ep in episodes for t in ep.turns)
  for i, ep in enumerate(episodes):
    for turn in ep.turns:
      span = arrays['loss_mask'][i, turn['start']:turn['end']]
      assert (span == (turn['role'] == 'policy')).all()
    assert (arrays['loss_mask'][i, len(ep.tokens):] == 0).all()
  # The loss has no term on observation tokens: d loss / d logp is 0 there.
  adv = np.linspace(-1, 1, len(episodes)).astype(np.float32)
  logps = jnp.asarray(np.random.default_rng(0).normal(size=arrays['loss_mask'].shape) - 2.0,
                      jnp.float32)
  grad = jax.grad(lambda lp: grpo_lib.grpo_loss(lp, logps + 0.1, None, jnp.asarray(adv),
                                                jnp.asarray(arrays['loss_mask']), LOSS)[0])(logps)
  env_tokens = (np.asarray(out.attention_mask) > 0) & (arrays['loss_mask'] == 0)
  assert env_tokens.any() and (np.asarray(grad)[env_tokens] == 0).all()
  assert (np.asarray(grad)[arrays['loss_mask'] > 0] != 0).all()


def test_loss_and_grads_ignore_observation_ids_that_condition_nothing(lookup):
  """Replacing the ids of a trailing observation (nothing sampled after it) leaves loss and
  gradients bit-identical; replacing an observation before a policy turn does not."""
  out, episodes = _lookup_rollout(lookup, [0, 1, 2, 3] * 2)
  arrays = trajectory.batch_arrays(out, episodes)
  adv = np.linspace(-1, 1, len(episodes)).astype(np.float32)
  p = out.prompt_tokens.shape[1]
  base_loss, base_grads = _loss_and_grad(lookup[1], arrays, adv)
  trailing, inner = arrays['tokens'].copy(), arrays['tokens'].copy()
  changed_trailing = changed_inner = False
  for i, ep in enumerate(episodes):
    for k, turn in enumerate(ep.turns):
      if turn['role'] != 'env':
        continue
      span = slice(p + turn['start'], p + turn['end'])
      target = trailing if k == len(ep.turns) - 1 else inner
      target[i, span] = 3 + (target[i, span] + 7) % 40
      changed_trailing |= target is trailing
      changed_inner |= target is inner
  assert changed_inner
  if changed_trailing:
    loss, grads = _loss_and_grad(lookup[1], {**arrays, 'tokens': trailing}, adv)
    assert loss == base_loss
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 grads, base_grads)
  _, grads = _loss_and_grad(lookup[1], {**arrays, 'tokens': inner}, adv)
  diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), grads,
                                       base_grads))
  assert max(diffs) > 0      # the observation conditions the later policy tokens


def test_turn_credit_modes():
  turn = np.array([[0, 0, -1, 1, 1, -1], [0, 0, -1, -1, -1, -1]] * 2, np.int32)
  num_turns = np.array([2, 1, 2, 1], np.int32)
  arrays = {'turn': turn, 'num_turns': num_turns}
  rewards = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
  traj = trajectory.advantages(rewards, arrays, 2, ADV, 'trajectory')
  np.testing.assert_allclose(traj, grpo_learner.group_advantages(rewards, 2, ADV))
  disc = trajectory.advantages(rewards, arrays, 2, ADV, 'discounted', gamma=0.5)
  np.testing.assert_allclose(disc[0], traj[0] * np.array([0.5, 0.5, 1, 1, 1, 1]))
  np.testing.assert_allclose(disc[1], np.full(6, traj[1]))
  tg = trajectory.advantages(rewards, arrays, 2, adv_lib.AdvantageConfig(scale_rewards='none'),
                             'turn_group', gamma=0.5)
  # group 0, turn 0: returns 0.5 (row 0) and 0.0 (row 1) -> +-0.25; turn 1: only row 0 -> 0.
  np.testing.assert_allclose(tg[0], [0.25, 0.25, 0, 0, 0, 0])
  np.testing.assert_allclose(tg[1][:2], [-0.25, -0.25])
  with pytest.raises(ValueError, match='credit'):
    trajectory.advantages(rewards, arrays, 2, ADV, 'per_token')


def _length_reward(text, answer):   # a random model never adds right: reward with signal
  del answer
  return len(text) / 5.0


@env_lib.REWARDS.register('test_length')
def _episode_length_reward(task, episode):
  return _length_reward(episode.policy_text(), task.answer)


def _addition_config(source):
  c = ml_collections.ConfigDict()
  c.seed, c.prompts_per_step, c.max_new_tokens = 0, 4, 5
  c.temperature, c.top_k, c.top_p, c.prompt_bucket = 1.0, 0, 1.0, 8
  c.grpo = ml_collections.ConfigDict(dict(num_generations=G))
  c.advantages = ml_collections.ConfigDict(dict(ADV.__dict__))
  c.rollout = ml_collections.ConfigDict(dict(
      source=source, max_turns=1, max_turn_tokens=5, stop=(), env_template='{text}',
      end_on_eos=True, on_error='message', env_timeout_s=0.0, kv_reuse=True,
      credit='trajectory', gamma=1.0))
  c.env = ml_collections.ConfigDict(dict(name='noop', reward='test_length'))
  return c


def test_one_turn_agent_grpo_equals_the_single_turn_runner():
  prompts = tasks_lib.addition_prompts(16, seed=0)
  prompts.tasks = [env_lib.Task(prompt=None, answer=a) for a in prompts.answers]
  prompts.reward = _length_reward
  pair = _model(len(prompts.tokenizer), seed=1)
  params = nnx.to_pure_dict(pair[1])
  idx = [0, 1, 2, 3]
  rng = jax.random.key(7)
  got = {}
  for source in ('sampler', 'agent'):
    config = _addition_config(source)
    fn = grpo_runner.ROLLOUTS.get(source)
    arrays, stats, _ = fn(params, pair[0], prompts, idx, config, rng, None)
    adv = grpo_runner.advantages_for(arrays, config)
    got[source] = (arrays, stats, _loss_and_grad((pair[0], params), arrays, adv))
  (a, sa, (la, ga)), (b, sb, (lb, gb)) = got['sampler'], got['agent']
  np.testing.assert_array_equal(a['rewards'], b['rewards'])
  assert a['rewards'].std() > 0                      # the comparison has signal
  assert a['loss_mask'].sum() == b['loss_mask'].sum() == sa['completion_tokens']
  np.testing.assert_allclose(la, lb, rtol=1e-5, atol=1e-6)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5),
               ga, gb)


def test_dynamic_sampling_replaces_groups_whose_rewards_agree():
  """DAPO dynamic sampling: groups with one reward value are dropped and refilled."""
  calls = []

  @grpo_runner.ROLLOUTS.register('test_scripted')
  def scripted(params, graphdef, prompts, idx, config, rng, mesh):
    calls.append(list(idx))
    n = len(idx) * G
    # first call: groups 0 and 2 agree (all 1 / all 0); later calls: every group varies
    rewards = np.tile(np.array([0, 1, 0, 1], np.float32), len(idx))
    if len(calls) == 1:
      rewards[0:G], rewards[2 * G:3 * G] = 1.0, 0.0
    arrays = {'tokens': np.full((n, 6 + len(calls)), len(calls), np.int32),
              'kv_mask': np.ones((n, 6 + len(calls)), np.int32),
              'loss_mask': np.ones((n, 3 + len(calls)), np.int32), 'rewards': rewards,
              'rollout_logps': np.zeros((n, 3 + len(calls)), np.float32)}
    return arrays, {'reward': float(rewards.mean())}, ''
  config = _addition_config('test_scripted')
  config.grpo.dynamic_sampling, config.grpo.max_resample_rounds = True, 3
  prompts = tasks_lib.addition_prompts(16, seed=0)
  arrays, stats, _ = grpo_runner.collect(None, None, prompts, config, 1, jax.random.key(0), None)
  assert len(calls) == 2 and stats['dynamic/resample_rounds'] == 1
  assert stats['dynamic/kept_groups'] == 4
  groups = arrays['rewards'].reshape(-1, G)
  assert groups.shape == (4, G) and (groups.std(1) > 0).all()
  assert arrays['tokens'].shape == (16, 8) and arrays['loss_mask'].shape == (16, 5)
  # a first-call row (prompt 3, completion 4) is right-padded to the longer completion
  first, later = arrays['tokens'][0], arrays['tokens'][-1]
  assert (first[:7] == 1).all() and first[7] == 0 and (later == 2).all()
  # no variance anywhere and no rounds left: the batch is filled with dropped groups
  config.grpo.max_resample_rounds = 0
  calls.clear()
  _, stats, _ = grpo_runner.collect(None, None, prompts, config, 1, jax.random.key(0), None)
  assert stats['dynamic/kept_groups'] == 2 and len(calls) == 1


def test_truncated_is_weights_and_weighted_loss():
  trainer = np.log(np.array([[0.5, 0.2, 0.9]], np.float32))
  rollout = np.log(np.array([[0.25, 0.4, 0.3]], np.float32))
  w = grpo_learner.truncated_is_weights(trainer, rollout, np.array([[1, 1, 0]]), cap=1.5)
  np.testing.assert_allclose(w, [[1.5, 0.5, 0.0]], rtol=1e-6)   # 2.0 capped, 0.5, masked
  logps = jnp.asarray(trainer)
  adv, mask = jnp.array([1.0]), jnp.array([[1.0, 1.0, 0.0]])
  loss, _ = grpo_lib.grpo_loss(logps, None, None, adv, mask, LOSS, token_weights=jnp.asarray(w))
  np.testing.assert_allclose(float(loss), -(1.5 + 0.5) / 2, rtol=1e-6)   # -sum(A w m)/sum(m)


def test_mask_truncated_completions_zeroes_cut_episodes(lookup):
  out, episodes = _lookup_rollout(lookup, [0, 1, 2, 3])
  for i, ep in enumerate(episodes):
    ep.end_reason = 'token_budget' if i == 1 else 'eos'
  arrays = trajectory.batch_arrays(out, episodes, mask_truncated=True)
  assert arrays['loss_mask'][1].sum() == 0 and arrays['loss_mask'][0].sum() > 0
