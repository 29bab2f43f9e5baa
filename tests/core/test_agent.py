"""Agent loop: policy/env token masks, logprobs that match a fresh forward, per-turn
segments, stop strings ending turns, env errors / malformed observations / done / budgets."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import agent
from jaxpapers.core import env as env_lib
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


def test_call_step_normalises_and_isolates_failures():
  def env(rows, turns):
    if 1 in rows and len(rows) > 1:
      raise ValueError('batch failed')
    return [{0: ('a', True), 1: 'b', 2: None, 3: Obs('c')}[r] for r in rows]
  got = [(r.text, r.done, r.error) for r in env_lib.call_step(env, [0, 1, 2, 3], ['t'] * 4)]
  assert got == [('a', True, ''), ('b', False, ''), ('', True, ''), ('c', False, '')]
  short = env_lib.call_step(lambda rows, turns: [], [5], ['t'])
  assert short[0].error.startswith('ValueError: env returned 0 observations')
  per_row = agent.each(lambda row, text: f'{row}:{text}')
  assert [r.text for r in env_lib.call_step(per_row, [4, 7], ['x', 'y'])] == ['4:x', '7:y']


def test_agent_config_rejects_bad_on_error():
  with pytest.raises(ValueError, match='on_error'):
    _config(on_error='ignore')


class StaggeredEnv:
  """Row r's episode ends after its (r % 3 + 1)-th turn; observations of varying length."""

  def __init__(self):
    self.turn = {}

  def __call__(self, rows, turns):
    out = []
    for r in rows:
      self.turn[r] = self.turn.get(r, 0) + 1
      out.append(Obs(' obs' * (1 + (r + self.turn[r]) % 4), self.turn[r] >= r % 3 + 1))
    return out


MORE = QUESTIONS + ['Two plus two?', 'Say hi.']


@pytest.mark.parametrize('temperature', [0.0, 1.0])
def test_cached_turns_equal_reprefill_token_for_token(pair, tok, temperature):
  """Kept caches (prefill only the new tokens) == re-prefilling the whole context, for
  rows that end at different turns (by env, EOS or budget) and a compacted batch."""
  prompts = [tok_lib.encode(tok, q) for q in MORE]
  cfg = _config(max_turns=4, max_turn_tokens=6, max_total_tokens=60, temperature=temperature,
                stop=('e',))
  runs = {}
  for reuse in (True, False):
    out, episodes = agent.rollout(pair, tok, prompts, StaggeredEnv(),
                                  dataclasses.replace(cfg, kv_reuse=reuse),
                                  rng=jax.random.key(3))
    runs[reuse] = (out, episodes)
  (cached, cached_eps), (full, full_eps) = runs[True], runs[False]
  assert len({ep.num_policy_turns for ep in cached_eps}) >= 2    # rows end at different turns
  if temperature == 0.0:     # the sampling streams differ by design (rows keep their ids)
    for a, b in zip(cached_eps, full_eps):
      assert a.tokens == b.tokens and a.end_reason == b.end_reason
      assert [t['role'] for t in a.turns] == [t['role'] for t in b.turns]
      np.testing.assert_allclose(a.logprobs, b.logprobs, atol=2e-4)
  _assert_logprobs_match_forward(pair, cached, temperature or 1.0)


@pytest.mark.parametrize('compress', [False, True])
def test_reprefill_shared_system_prompt_equals_prefilling_each_row(pair, tok, compress,
                                                                  monkeypatch):
  """A long common prefix prefilled once (shared_prefix) == every row prefilled whole: same
  tokens and logprobs, re-prefilling (with and without history compression) and with
  kept caches."""
  system = tok_lib.encode(tok, 'You are a careful agent. ' * 16)
  assert len(system) >= sampler.PREFIX_BUCKET
  prompts = [system + tok_lib.encode(tok, q) for q in MORE]
  briefs = [system + tok_lib.encode(tok, f'Q{i}') for i in range(len(MORE))]
  cfg = _config(max_turns=3, max_turn_tokens=6, max_total_tokens=60, temperature=0.0,
                kv_reuse=False, compress_history=compress, prompt_bucket=16)
  prefills = []
  real = sampler._prefix_cache
  monkeypatch.setattr(sampler, '_prefix_cache',
                      lambda params, prefix, **kw: prefills.append(prefix.shape) or real(
                          params, prefix, **kw))
  settings = [dict(shared_prefix=0), dict(shared_prefix=1)] + (
      [] if compress else [dict(shared_prefix=1, kv_reuse=True)])
  runs = [agent.rollout(pair, tok, prompts, PagesEnv(), dataclasses.replace(cfg, **kw),
                        rng=jax.random.key(3), brief_prompts=briefs if compress else None)[1]
          for kw in settings]
  # Once per round re-prefilling (3 rounds), once per rollout with kept caches.
  assert len(prefills) == 3 + (not compress) and prefills[0][1] >= sampler.PREFIX_BUCKET
  for other in runs[1:]:
    for a, b in zip(runs[0], other):
      assert a.tokens == b.tokens and a.end_reason == b.end_reason
      np.testing.assert_allclose(a.logprobs, b.logprobs, atol=2e-4)


def test_cached_rollout_grows_and_compacts_with_few_compiles(pair, tok, monkeypatch):
  calls = {'grow': 0, 'take_rows': 0}
  for name in calls:
    def counted(*a, _fn=getattr(sampler, name), _name=name):
      calls[_name] += 1
      return _fn(*a)
    monkeypatch.setattr(sampler, name, counted)
  prompts = [tok_lib.encode(tok, q) for q in MORE]
  cfg = _config(max_turns=4, max_turn_tokens=6, max_total_tokens=120, chunk_bucket=8,
                temperature=0.0)

  class LongObs(StaggeredEnv):   # each round some row gets a long observation
    def __call__(self, rows, turns):
      out = super().__call__(rows, turns)
      return [Obs(' obs' * (60 if (r + self.turn[r]) % 3 == 0 else 1), o.done and r > 2)
              for r, o in zip(rows, out)]
  before = sampler.compile_count()
  out, episodes = agent.rollout(pair, tok, prompts, LongObs(), cfg, rng=jax.random.key(4))
  _, full = agent.rollout(pair, tok, prompts, LongObs(), dataclasses.replace(cfg, kv_reuse=False),
                          rng=jax.random.key(4))
  assert [ep.tokens for ep in episodes] == [ep.tokens for ep in full]
  assert calls['grow'] >= 1 and calls['take_rows'] >= 1
  assert sampler.compile_count() - before < 30


class HangingEnv:
  def __init__(self, hang_rows):
    self.hang_rows = set(hang_rows)

  def __call__(self, rows, turns):
    if self.hang_rows & set(rows):
      import time
      time.sleep(5)
    return [Obs('ok') for _ in rows]


def test_env_timeout_is_an_error_observation_and_counted(pair, tok, prompts):
  cfg = _config(max_turns=2, env_timeout_s=0.5)
  _, episodes = agent.rollout(pair, tok, prompts, HangingEnv({1}), cfg, rng=jax.random.key(5))
  assert [ep.env_errors for ep in episodes] == [1, 1, 1]   # the whole batch call timed out
  assert all('TimeoutError' in ep.turns[1]['text'] for ep in episodes)
  _, episodes = agent.rollout(pair, tok, prompts, HangingEnv({1}),
                              dataclasses.replace(cfg, on_error='end'), rng=jax.random.key(5))
  assert all(ep.end_reason == 'env_error' for ep in episodes)


def test_call_score_failures_score_zero():
  class Broken(env_lib.Environment):
    def score(self, row, episode):
      return [lambda: 1 / 0, lambda: float('nan'), lambda: 'x', lambda: {'reward': 0.5}][row]()
  outcomes = [env_lib.call_score(Broken(), r, None) for r in range(4)]
  assert [o.reward for o in outcomes] == [0.0, 0.0, 0.0, 0.5]
  assert [o.info.get('score_error', 0) for o in outcomes] == [1, 1, 1, 0]


def test_chat_turn_delta_appends_exactly_what_the_template_renders(tok):
  history = [{'role': 'user', 'content': 'q?'}, {'role': 'assistant', 'content': 'a1'}]
  full = tok_lib.chat_prompt(tok, history + [{'role': 'user', 'content': 'obs'}])
  turn = tok_lib.chat_prompt(tok, history[:1]) + 'a1<|im_end|>'
  assert turn + tok_lib.chat_turn_delta(tok, 'user', 'obs') == full
  ids = tok_lib.encode(tok, turn) + tok_lib.encode(tok, tok_lib.chat_turn_delta(tok, 'user', 'obs'))
  assert tok.decode(ids) == full        # token in, token out: the delta tokenises on its own


def test_rollout_chat_observations(pair, tok):
  prompts = [tok_lib.encode(tok, tok_lib.chat_prompt(tok, q)) for q in QUESTIONS[:2]]
  cfg = _config(max_turns=2, env_template='chat:user', end_on_eos=False, temperature=0.0)
  _, episodes = agent.rollout(pair, tok, prompts, ScriptedEnv(), cfg, rng=jax.random.key(0))
  for i, ep in enumerate(episodes):
    env_turn = ep.turns[1]
    ids = ep.tokens[env_turn['start']:env_turn['end']]
    assert tok.decode(ids) == tok_lib.chat_turn_delta(tok, 'user', f'<i>{i}</i>')


class PagesEnv:
  """Each answer shows a long page; its brief is a short placeholder (history compression)."""

  def __init__(self, brief='<p>'):
    self.brief, self.round = brief, {}

  def __call__(self, rows, turns):
    out = []
    for r in rows:
      k = self.round[r] = self.round.get(r, 0) + 1
      text = f'<page {r} round {k}: ' + 'x ' * 6 + '>'
      out.append(env_lib.Observation(text, brief=text if self.brief is None else self.brief))
    return out


def test_compressed_history_keeps_policy_turns_and_only_the_newest_page(pair, tok, prompts):
  cfg = _config(max_turns=4, max_total_tokens=96, kv_reuse=False, compress_history=True)
  briefs = [tok_lib.encode(tok, f'Q{i}') for i in range(len(prompts))]
  out, episodes = agent.rollout(pair, tok, prompts, PagesEnv(), cfg, rng=jax.random.key(3),
                                brief_prompts=briefs)
  placeholder = tok_lib.encode(tok, cfg.env_template.format(text='<p>'))
  for i, ep in enumerate(episodes):
    env_turns = [t for t in ep.turns if t['role'] == 'env']
    assert len(env_turns) == 3 and ep.prompt == briefs[i]   # the prompt's page is gone too
    for t in env_turns[:-1]:
      assert ep.tokens[t['start']:t['end']] == placeholder and t['text'] == '<p>'
      assert t['full_text'].startswith(f'<page {i} round')
    last = env_turns[-1]
    assert last['text'] == f'<page {i} round 3: ' + 'x ' * 6 + '>'
    spans = [(t['start'], t['end']) for t in ep.turns]   # spans tile the token store
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert spans[-1][1] == len(ep.tokens) == len(ep.mask) == len(ep.logprobs)
    assert np.asarray(out.prompt_tokens[i])[np.asarray(out.prompt_mask[i]) > 0].tolist() == \
        briefs[i]
  # The last policy turn was sampled on exactly the final (compressed) context.
  last_turn = np.asarray(out.segment_ids) == np.asarray(out.segment_ids).max(1, keepdims=True)
  out = out.replace(policy_mask=np.asarray(out.policy_mask) * last_turn)
  _assert_logprobs_match_forward(pair, out, cfg.temperature)


def test_compression_with_unchanged_briefs_equals_the_plain_rollout(pair, tok, prompts):
  plain_cfg = _config(max_turns=3, max_total_tokens=80, kv_reuse=False)
  plain, plain_eps = agent.rollout(pair, tok, prompts, PagesEnv(brief=None), plain_cfg,
                                   rng=jax.random.key(5))
  same, same_eps = agent.rollout(pair, tok, prompts, PagesEnv(brief=None),
                                 dataclasses.replace(plain_cfg, compress_history=True),
                                 rng=jax.random.key(5), brief_prompts=prompts)
  np.testing.assert_array_equal(np.asarray(plain.tokens), np.asarray(same.tokens))
  np.testing.assert_array_equal(np.asarray(plain.policy_mask), np.asarray(same.policy_mask))
  assert [ep.end_reason for ep in plain_eps] == [ep.end_reason for ep in same_eps]


def test_compression_config_errors(pair, tok, prompts):
  with pytest.raises(ValueError, match='kv_reuse=False'):
    _config(compress_history=True)
  with pytest.raises(ValueError, match='compress_history'):
    agent.rollout(pair, tok, prompts, PagesEnv(), _config(), rng=jax.random.key(0),
                  brief_prompts=prompts)
  with pytest.raises(ValueError, match='brief_prompts: 1 for 3'):
    agent.rollout(pair, tok, prompts, PagesEnv(),
                  _config(kv_reuse=False, compress_history=True), rng=jax.random.key(0),
                  brief_prompts=prompts[:1])
