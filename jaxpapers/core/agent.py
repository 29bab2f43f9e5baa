"""Multi-turn rollouts: policy turn (jitted sampler) -> environment turn (plain Python) -> ...

Each round, every live episode's context (prompt + all turns so far, token ids exactly as
sampled or tokenised, never re-tokenised) is prefilled and the policy samples one turn of
up to `max_turn_tokens`, stopping at EOS or a stop string (e.g. `</search>`, `</answer>`).
The environment callback then sees each turn's text and answers with an observation, which
is formatted with `env_template`, tokenised and appended with mask 0. Episodes end when the
env says done, on EOS (`end_on_eos`), after `max_turns` policy turns, or at
`max_total_tokens` completion tokens (policy + env; the excess is cut); the env is not
called after the last allowed turn. Search-R1 style appends observations inline
(`env_template='{text}'`); chat style closes the turn instead, e.g. for Qwen
`'<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n'` with
`end_on_eos=False`.

Environment callback: `env(rows, turns) -> observations`, batched over the episodes awaiting
a response (`rows` index the prompts, `turns` are the policy turns' text), so a retriever
can answer one batch per round and a per-episode env (a web page, a judge) can look up its
row. An observation is an object with `.text` and `.done` (e.g.
`retrieval.env.Observation`), a `(text, done)` pair, a string (not done) or None (done).
`each(fn)` adapts a per-row `fn(row, text)`; `lambda rows, turns: env.step(turns)` adapts
`jaxpapers.core.retrieval.env.SearchEnv`. If the batched call raises, rows are retried one
at a time; a row whose call raises, or returns something malformed, gets an error message
(`on_error='message'`, the episode goes on) or ends (`on_error='end'`). Malformed tool calls
are the env's to answer (e.g. Search-R1's invalid-action message); the loop never crashes.

Choices: each round re-prefills the whole context instead of keeping per-episode caches
(simple, exact, and the prefill is one parallel pass); finished episodes are dropped from
the batch, which is padded to a power of two so few shapes compile.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from absl import logging
import flax.struct
import jax
import numpy as np

from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib

ERROR_TEMPLATE = '\n[environment error: {error}]\n'


@dataclasses.dataclass(frozen=True)
class AgentConfig:
  max_turns: int = 4               # policy turns per episode
  max_turn_tokens: int = 256       # tokens one policy turn may sample
  max_total_tokens: int = 1024     # completion tokens (policy + env) per episode
  stop: tuple[str, ...] = ()       # stop strings that end a policy turn (kept in the turn)
  env_template: str = '{text}'     # how an observation's text is appended
  end_on_eos: bool = True          # an EOS from the policy ends the episode
  on_error: str = 'message'        # env exception / malformed observation: 'message' | 'end'
  temperature: float = 1.0         # sampling (jaxpapers.core.sampler.generate)
  top_k: int = 0
  top_p: float = 1.0
  prompt_bucket: int = 0           # context lengths round up to multiples (0 = powers of two)


@flax.struct.dataclass
class Rollout:
  prompt_tokens: jax.Array   # [B, P] int32 prompts, left-padded
  prompt_mask: jax.Array     # [B, P] int32 1 on prompt tokens
  tokens: jax.Array          # [B, T] int32 completion (policy and env turns), right-padded
  policy_mask: jax.Array     # [B, T] int32 1 on policy tokens, 0 on env tokens and padding
  attention_mask: jax.Array  # [B, T] int32 1 on every completion token
  logprobs: jax.Array        # [B, T] float32 policy logprob of each policy token, else 0
  segment_ids: jax.Array     # [B, T] int32 index of the turn (Episode.turns) a token is
                             # in: policy and env turns alternate; -1 on padding
  num_turns: jax.Array       # [B] int32 policy turns taken


@dataclasses.dataclass
class Episode:
  """One row's host-side record."""
  prompt: list[int]
  tokens: list[int] = dataclasses.field(default_factory=list)
  mask: list[int] = dataclasses.field(default_factory=list)
  logprobs: list[float] = dataclasses.field(default_factory=list)
  turns: list[dict] = dataclasses.field(default_factory=list)  # role, start, end, text
  done: bool = False
  end_reason: str = ''   # eos | env_done | env_error | max_turns | token_budget

  def add(self, role: str, tokens, logprobs, text: str, budget: int) -> bool:
    """Appends a segment (cut to the budget); False when the budget ran out."""
    room = budget - len(self.tokens)
    tokens, logprobs = list(tokens)[:room], list(logprobs)[:room]
    start = len(self.tokens)
    self.tokens += tokens
    self.mask += [int(role == 'policy')] * len(tokens)
    self.logprobs += logprobs
    self.turns.append({'role': role, 'start': start, 'end': len(self.tokens), 'text': text})
    return len(self.tokens) < budget

  def finish(self, reason: str) -> None:
    if not self.done:
      self.done, self.end_reason = True, reason


def each(fn: Callable[[int, str], Any]) -> Callable[[Sequence[int], Sequence[str]], list]:
  """Adapts a per-episode `fn(row, text) -> observation` to the batched env interface."""
  return lambda rows, turns: [fn(r, t) for r, t in zip(rows, turns)]


def _normalise(obs) -> tuple[str, bool]:
  """Observation -> (text, done); raises TypeError when malformed."""
  if obs is None:
    return '', True
  if isinstance(obs, str):
    return obs, False
  if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[0], str):
    return obs[0], bool(obs[1])
  if isinstance(getattr(obs, 'text', None), str) and hasattr(obs, 'done'):
    return obs.text, bool(obs.done)
  raise TypeError(f'malformed observation {obs!r:.80}; expected (text, done), str, None or '
                  'an object with .text and .done')


def _error(e: Exception) -> str:
  return f'{type(e).__name__}: {e}'


def call_env(env, rows: Sequence[int], turns: Sequence[str]) -> list[tuple[str, bool, str]]:
  """(text, done, error) per row; one failing row never takes the others down."""
  try:
    out = list(env(list(rows), list(turns)))
    if len(out) != len(rows):
      raise ValueError(f'env returned {len(out)} observations for {len(rows)} turns')
  except Exception as e:  # noqa: BLE001 - an env bug becomes a message, not a crash
    if len(rows) > 1:     # retry one row at a time to find the failing ones
      return [r for row, turn in zip(rows, turns) for r in call_env(env, [row], [turn])]
    logging.warning('agent: env failed on row %s: %s', rows[0], _error(e))
    return [('', False, _error(e))]
  results = []
  for obs in out:
    try:
      results.append((*_normalise(obs), ''))
    except TypeError as e:
      results.append(('', False, _error(e)))
  return results


def _pad_rows(seqs: Sequence[list], width: int, value, dtype, left: bool = False) -> np.ndarray:
  """Rows of `seqs` in a [len(seqs), width] array, right-padded (left-padded if `left`)."""
  out = np.full((len(seqs), width), value, dtype)
  for i, s in enumerate(seqs):
    s = list(s)[:width]
    if left and s:
      out[i, width - len(s):] = s
    elif s:
      out[i, :len(s)] = s
  return out


def _policy_round(pair, tokenizer, episodes, live, cfg: AgentConfig, rng, mesh, eos_ids, pad_id):
  """One policy turn for the live episodes; returns [(row, turn text)] awaiting the env."""
  out = sampler.generate(
      pair, [episodes[i].prompt + episodes[i].tokens for i in live],
      max_new_tokens=cfg.max_turn_tokens, rng=rng, temperature=cfg.temperature,
      top_k=cfg.top_k, top_p=cfg.top_p, stop=list(cfg.stop) or None, tokenizer=tokenizer,
      eos_ids=eos_ids, pad_id=pad_id, mesh=mesh, prompt_bucket=cfg.prompt_bucket,
      pad_batch_to=1 << (len(live) - 1).bit_length())
  tokens, logps = np.asarray(out.tokens), np.asarray(out.logprobs)
  lengths, finish = np.asarray(out.lengths), np.asarray(out.finish_reason)
  pending = []
  for j, i in enumerate(live):
    ep, n = episodes[i], int(lengths[j])
    text = tokenizer.decode(tokens[j, :n].tolist(), skip_special_tokens=True)
    room = ep.add('policy', tokens[j, :n].tolist(), logps[j, :n].tolist(), text,
                  cfg.max_total_tokens)
    if finish[j] == sampler.FINISH_EOS and cfg.end_on_eos:
      ep.finish('eos')
    elif not room:
      ep.finish('token_budget')
    else:
      pending.append((i, text))
  return pending


def _env_round(env, tokenizer, episodes, pending, cfg: AgentConfig) -> None:
  """Calls the env for the pending (row, text) pairs and appends its observations."""
  rows, turns = [r for r, _ in pending], [t for _, t in pending]
  for row, (text, done, error) in zip(rows, call_env(env, rows, turns)):
    ep = episodes[row]
    if error and cfg.on_error == 'end':
      ep.finish('env_error')
      continue
    text = ERROR_TEMPLATE.format(error=error) if error else text
    room = True
    if text:
      ids = tok_lib.encode(tokenizer, cfg.env_template.format(text=text))
      room = ep.add('env', ids, [0.0] * len(ids), text, cfg.max_total_tokens)
    if done:
      ep.finish('env_done')
    elif not room:
      ep.finish('token_budget')


def rollout(model, tokenizer, prompts: Sequence[Sequence[int] | str], env,
            config: AgentConfig, *, rng, mesh=None) -> tuple[Rollout, list[Episode]]:
  """Runs a batch of multi-turn episodes.

  Args:
    model: a `layers.Decoder` or a (graphdef, params) pair (`sampler.split`).
    tokenizer: the HF tokenizer (decodes turns for the env, encodes observations).
    prompts: token-id lists (already chat-formatted), or strings to encode as they are.
    env: `env(rows, turns) -> observations` (see the module docstring).
    config: AgentConfig. rng: a PRNG key (folded with the round). mesh: optional.
  Returns:
    (Rollout with [B, T = max_total_tokens] completions, host-side Episodes).
  """
  if config.on_error not in ('message', 'end'):
    raise ValueError(f"on_error: {config.on_error!r} is not one of ['message', 'end']")
  pair = sampler.split(model, mesh)
  episodes = [Episode(list(tok_lib.encode(tokenizer, p) if isinstance(p, str) else p))
              for p in prompts]
  eos_ids, pad_id = tok_lib.stop_token_ids(tokenizer), tokenizer.pad_token_id
  for turn in range(config.max_turns):
    live = [i for i, ep in enumerate(episodes) if not ep.done]
    if not live:
      break
    pending = _policy_round(pair, tokenizer, episodes, live, config,
                            jax.random.fold_in(rng, turn), mesh, eos_ids, pad_id)
    if turn + 1 < config.max_turns:
      _env_round(env, tokenizer, episodes, pending, config)
  for ep in episodes:
    ep.finish('max_turns')
  return _collate(episodes, config.max_total_tokens, pad_id), episodes


def _collate(episodes: Sequence[Episode], width: int, pad_id: int) -> Rollout:
  """Host episodes -> fixed-shape arrays."""
  prompt_len = sampler.bucket_length(max(len(ep.prompt) for ep in episodes))
  segments = []
  for ep in episodes:
    seg = np.full(len(ep.tokens), -1, np.int32)
    for k, turn in enumerate(ep.turns):
      seg[turn['start']:turn['end']] = k
    segments.append(seg.tolist())
  return Rollout(
      prompt_tokens=_pad_rows([ep.prompt for ep in episodes], prompt_len, pad_id, np.int32, True),
      prompt_mask=_pad_rows([[1] * len(ep.prompt) for ep in episodes], prompt_len, 0, np.int32,
                            True),
      tokens=_pad_rows([ep.tokens for ep in episodes], width, pad_id, np.int32),
      policy_mask=_pad_rows([ep.mask for ep in episodes], width, 0, np.int32),
      attention_mask=_pad_rows([[1] * len(ep.tokens) for ep in episodes], width, 0, np.int32),
      logprobs=_pad_rows([ep.logprobs for ep in episodes], width, 0.0, np.float32),
      segment_ids=_pad_rows(segments, width, -1, np.int32),
      num_turns=np.array([sum(t['role'] == 'policy' for t in ep.turns) for ep in episodes],
                         np.int32))
