"""Agent loop: policy/env token masks, logprobs that match a fresh forward, per-turn
segments, stop strings ending turns, env errors / malformed observations / done / budgets."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import agent
from jaxpapers.core import logprobs as logprobs_lib
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.models import qwen

QUESTIONS = ['What is 2 + 3?', 'Name a colour.', 'Capital of France?']


@dataclasses.dataclass
class Obs:
  text: str
  done: bool = False


class ScriptedEnv:
  """Answers every turn with a fixed observation; `fail` rows raise, `junk` rows return 42."""

  def __init__(self, fail=(), junk=(), done=()):
    self.fail, self.junk, self.done, self.calls = set(fail), set(junk), set(done), []

  def __call__(self, rows, turns):
    self.calls.append(list(rows))
    if self.fail & set(rows):
      raise RuntimeError('retriever down')
    return [42 if r in self.junk else Obs(f'<i>{r}</i>', r in self.done) for r in rows]


@pytest.fixture(scope='module')
def tok():
  return tok_lib.load('qwen')


@pytest.fixture(scope='module')
def pair():
  return sampler.split(qwen.init(qwen.preset('qwen3-tiny'), seed=0))  # real 151936 vocab


@pytest.fixture(scope='module')
def prompts(tok):
  return [tok_lib.encode(tok, q) for q in QUESTIONS]


def _config(**kw):
  base = dict(max_turns=3, max_turn_tokens=4, max_total_tokens=48, temperature=1.0,
              prompt_bucket=64,                    # every round compiles one context shape
              env_template=' {text}')
  return agent.AgentConfig(**{**base, **kw})


def test_rollout_mask_is_one_on_policy_zero_on_env_and_logprobs_match(pair, tok, prompts):
  cfg = _config(stop=('e',))
  out, episodes = agent.rollout(pair, tok, prompts, ScriptedEnv(), cfg, rng=jax.random.key(0))
  for i, ep in enumerate(episodes):
    assert ep.end_reason == 'max_turns' and int(out.num_turns[i]) == 3
    assert [t['role'] for t in ep.turns] == ['policy', 'env'] * 2 + ['policy']
    for k, turn in enumerate(ep.turns):
      span = slice(turn['start'], turn['end'])
      assert (np.asarray(out.segment_ids[i, span]) == k).all()
      mask = np.asarray(out.policy_mask[i, span])
      if turn['role'] == 'env':
        assert (mask == 0).all() and (np.asarray(out.logprobs[i, span]) == 0).all()
        expected = tok_lib.encode(tok, cfg.env_template.format(text=f'<i>{i}</i>'))
        assert np.asarray(out.tokens[i, span]).tolist() == expected
      else:
        assert (mask == 1).all() and (np.asarray(out.logprobs[i, span]) < 0).all()
        ids = np.asarray(out.tokens[i, span]).tolist()    # the stop string ends the turn
        assert 'e' not in tok.decode(ids[:-1])
        assert 'e' in tok.decode(ids) or len(ids) == cfg.max_turn_tokens
    n = len(ep.tokens)
    assert (np.asarray(out.attention_mask[i, n:]) == 0).all()
    assert (np.asarray(out.policy_mask[i, n:]) == 0).all()
  _assert_logprobs_match_forward(pair, out, cfg.temperature)


def _assert_logprobs_match_forward(pair, out, temperature):
  """Recomputes log p(token) over [prompt | completion] in one forward."""
  tokens = jnp.concatenate([out.prompt_tokens, out.tokens], axis=1)
  mask = jnp.concatenate([out.prompt_mask, out.attention_mask], axis=1)
  positions = jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0)
  logps = logprobs_lib.decoder_next_token_logprobs(nnx.merge(*pair), tokens, positions, mask,
                                                   temperature=temperature)
  p = out.prompt_tokens.shape[1]
  policy = np.asarray(out.policy_mask) > 0
  np.testing.assert_allclose(np.asarray(logps[:, p - 1:])[policy],
                             np.asarray(out.logprobs)[policy], atol=2e-4)


@pytest.mark.parametrize('on_error', ['message', 'end'])
def test_rollout_env_exception_and_malformed_observation_never_crash(pair, tok, prompts,
                                                                     on_error):
  env = ScriptedEnv(fail={1}, junk={2})
  out, episodes = agent.rollout(pair, tok, prompts, env, _config(max_turns=2, on_error=on_error),
                                rng=jax.random.key(1))
  assert episodes[0].end_reason == 'max_turns' and '<i>0</i>' in episodes[0].turns[1]['text']
  for row, error in [(1, 'RuntimeError: retriever down'), (2, 'TypeError: malformed')]:
    ep = episodes[row]
    if on_error == 'end':
      assert ep.end_reason == 'env_error' and len(ep.turns) == 1
      assert int(np.asarray(out.policy_mask[row]).sum()) == len(ep.tokens)
    else:
      assert ep.turns[1]['role'] == 'env' and error in ep.turns[1]['text']
      span = slice(ep.turns[1]['start'], ep.turns[1]['end'])
      assert (np.asarray(out.policy_mask[row, span]) == 0).all()
      assert ep.end_reason == 'max_turns'


def test_rollout_env_done_drops_row_and_budget_cuts(pair, tok, prompts):
  env = ScriptedEnv(done={0})
  out, episodes = agent.rollout(pair, tok, prompts, env, _config(max_total_tokens=8),
                                rng=jax.random.key(2))
  assert episodes[0].end_reason == 'env_done' and int(out.num_turns[0]) == 1
  assert all(0 not in rows for rows in env.calls[1:])      # finished rows cost nothing more
  for ep in episodes[1:]:
    assert ep.end_reason == 'token_budget' and len(ep.tokens) == 8
  assert out.tokens.shape == (3, 8)


def test_call_env_normalises_and_isolates_failures():
  def env(rows, turns):
    if 1 in rows and len(rows) > 1:
      raise ValueError('batch failed')
    return [{0: ('a', True), 1: 'b', 2: None, 3: Obs('c')}[r] for r in rows]
  assert agent.call_env(env, [0, 1, 2, 3], ['t'] * 4) == [
      ('a', True, ''), ('b', False, ''), ('', True, ''), ('c', False, '')]
  short = agent.call_env(lambda rows, turns: [], [5], ['t'])
  assert short[0][2].startswith('ValueError: env returned 0 observations')
  per_row = agent.each(lambda row, text: f'{row}:{text}')
  assert agent.call_env(per_row, [4, 7], ['x', 'y']) == [('4:x', False, ''), ('7:y', False, '')]


def test_rollout_rejects_bad_on_error(pair, tok, prompts):
  with pytest.raises(ValueError, match='on_error'):
    agent.rollout(pair, tok, prompts, ScriptedEnv(), _config(on_error='ignore'),
                  rng=jax.random.key(0))
