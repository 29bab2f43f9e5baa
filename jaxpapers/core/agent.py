"""Multi-turn rollouts: policy turn (jitted sampler) -> environment turn (plain Python) -> ...

Each round, every live episode samples one policy turn of up to `max_turn_tokens`, stopping
at EOS or a stop string (e.g. `</search>`, `</answer>`). The environment then sees each
turn's text and answers with an observation, which is formatted with `env_template`,
tokenised and appended with mask 0. Episodes end when the env says done, on EOS
(`end_on_eos`), after `max_turns` policy turns, or at `max_total_tokens` completion tokens
(policy + env; a turn never samples past the budget, an observation is cut to it); the env
is not called after the last allowed turn. Search-R1 style appends observations inline
(`env_template='{text}'`); chat style closes the turn instead, e.g. for Qwen
`'<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n'` with
`end_on_eos=False`, or `env_template='chat:user'` for any chat template (the observation as
a user message, through `tokenizer.chat_turn_delta`).

Token store: each Episode holds its token ids exactly as sampled or tokenised, append-only;
earlier turns are never re-tokenised, and the loss mask comes from the turn spans.

History compression (`compress_history=True`, WebAgent-R1's): an observation that carries a
`brief` (core.env.Observation) is replaced by it once a newer observation arrives, and the
prompt by its brief form (`rollout(brief_prompts=...)`), so the context holds every policy
turn but only the newest page. The policy sampled each turn with the full page in view; the
Rollout (what the trainer scores) is the compressed context, as the reference trains.
Rewriting earlier context rules out a kept cache, so compression re-prefills each round.

KV reuse (`kv_reuse=True`, the default): each episode's cache is kept on device between
turns; a turn prefills only what is new (the previous turn's last sampled token and the
observation) into the cache at the batch's write cursor, then decodes. Rows share slot
indices; a row's slots that hold nothing (left padding of a chunk, decode steps after it
stopped) are masked out, and RoPE positions count each row's real tokens, so a row continues
exactly as its context alone would. When half the batch has finished, the cache is compacted
to the live rows (batch sizes are powers of two, so few shapes compile); finished rows cost
one masked token per round until then. `kv_reuse=False` re-prefills the whole context every
round (the reference the cached loop is tested against). Either way the episodes' common
prompt prefix (a system prompt, shared instructions; `shared_prefix`) is prefilled once for
the whole batch and copied to every row: once per rollout with kept caches, once per round
when re-prefilling.

Environment: a `core.env.Environment` (its `step`) or any `env(rows, turns) ->
observations`, batched over the episodes awaiting a response (`rows` index the prompts). See
core/env.py for observation forms. `each(fn)` adapts a per-row `fn(row, text)`. If the
batched call raises, rows are retried one at a time; a row whose call raises, times out
(`env_timeout_s`) or returns something malformed gets an error message (`on_error='message'`,
the episode goes on) or ends (`on_error='end'`). Malformed tool calls are the env's to answer
(e.g. Search-R1's invalid-action message); the loop never crashes.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import flax.struct
import jax
import numpy as np
from flax import nnx

from jaxpapers.core import env as env_lib
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib

ERROR_TEMPLATE = '\n[environment error: {error}]\n'
ON_ERROR = ('message', 'end')


@dataclasses.dataclass(frozen=True)
class AgentConfig:
  max_turns: int = 4               # policy turns per episode
  max_turn_tokens: int = 256       # tokens one policy turn may sample
  max_total_tokens: int = 1024     # completion tokens (policy + env) per episode
  stop: tuple[str, ...] = ()       # stop strings that end a policy turn (kept in the turn)
  env_template: str = '{text}'     # how an observation's text is appended; 'chat:<role>'
                                   # = the tokenizer's chat template for a <role> message
  end_on_eos: bool = True          # an EOS from the policy ends the episode
  on_error: str = 'message'        # env exception / malformed observation: 'message' | 'end'
  env_timeout_s: float = 0.0       # an env call running longer is an error (0 = no limit)
  error_template: str = ERROR_TEMPLATE  # the observation of an env error ('message')
  temperature: float = 1.0         # sampling (jaxpapers.core.sampler)
  top_k: int = 0
  top_p: float = 1.0
  prompt_bucket: int = 0           # prompt lengths round up to multiples (0 = powers of two)
  kv_reuse: bool = True            # keep each episode's KV cache between turns
  chunk_bucket: int = 16           # kv_reuse: new-turn token counts round up to multiples
  compress_history: bool = False   # earlier observations -> their `brief` (needs kv_reuse off)
  shared_prefix: int = 64          # the episodes' common prompt prefix (a system prompt) is
                                   # prefilled once for all rows when at least this long
                                   # (sampler.common_prefix; 0 = off)

  def __post_init__(self):
    if self.on_error not in ON_ERROR:
      raise ValueError(f'on_error: {self.on_error!r} is not one of {list(ON_ERROR)}')
    if self.compress_history and self.kv_reuse:
      raise ValueError('compress_history rewrites earlier context, which a kept KV cache '
                       'cannot follow: set kv_reuse=False')
    for name in ('max_turns', 'max_turn_tokens', 'max_total_tokens', 'chunk_bucket'):
      if getattr(self, name) <= 0:
        raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')


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
  """One row's host-side record: an append-only token store with turn spans."""
  prompt: list[int]
  tokens: list[int] = dataclasses.field(default_factory=list)
  mask: list[int] = dataclasses.field(default_factory=list)
  logprobs: list[float] = dataclasses.field(default_factory=list)
  turns: list[dict] = dataclasses.field(default_factory=list)  # role, start, end, text
  done: bool = False
  end_reason: str = ''   # eos | env_done | env_error | max_turns | token_budget
  tool_calls: int = 0
  invalid_actions: int = 0
  env_errors: int = 0
  brief_prompt: list[int] | None = None   # replaces `prompt` once a policy turn is answered

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

  def compress(self) -> None:
    """Earlier observations (and the prompt) -> their briefs, before a newer one is added."""
    if self.brief_prompt is not None:
      self.prompt, self.brief_prompt = self.brief_prompt, None
    for k, turn in enumerate(self.turns):
      if turn['role'] == 'env' and 'brief_ids' in turn:
        self._replace_turn(k, turn.pop('brief_ids'), turn.pop('brief'))

  def _replace_turn(self, k: int, ids: list[int], text: str) -> None:
    """Turn k's tokens -> `ids` (an env turn: mask 0, logprob 0); later spans shift."""
    turn = self.turns[k]
    start, end = turn['start'], turn['end']
    self.tokens[start:end] = ids
    self.mask[start:end] = [0] * len(ids)
    self.logprobs[start:end] = [0.0] * len(ids)
    shift = len(ids) - (end - start)
    turn.update(end=start + len(ids), text=text, full_text=turn['text'])
    for later in self.turns[k + 1:]:
      later['start'] += shift
      later['end'] += shift

  def finish(self, reason: str) -> None:
    if not self.done:
      self.done, self.end_reason = True, reason

  def policy_text(self) -> str:
    return ''.join(t['text'] for t in self.turns if t['role'] == 'policy')

  def text(self) -> str:
    return ''.join(t['text'] for t in self.turns)

  @property
  def num_policy_turns(self) -> int:
    return sum(t['role'] == 'policy' for t in self.turns)

  @property
  def truncated(self) -> bool:
    return self.end_reason in ('token_budget', 'max_turns')


def each(fn: Callable[[int, str], Any]) -> Callable[[Sequence[int], Sequence[str]], list]:
  """Adapts a per-episode `fn(row, text) -> observation` to the batched env interface."""
  return lambda rows, turns: [fn(r, t) for r, t in zip(rows, turns)]


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


def _pow2(n: int) -> int:
  return 1 << max(0, n - 1).bit_length()


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


# ----------------------------------------------------------------------------- turns


def _record_turn(ep: Episode, tokens, logps, finish, tokenizer, cfg: AgentConfig):
  """Appends a sampled policy turn; returns its text when the env should answer, else None."""
  text = tokenizer.decode(list(tokens), skip_special_tokens=True)
  room = ep.add('policy', tokens, logps, text, cfg.max_total_tokens)
  if finish == sampler.FINISH_EOS and cfg.end_on_eos:
    ep.finish('eos')
  elif not room:
    ep.finish('token_budget')
  else:
    return text
  return None


def observation_text(tokenizer, template: str, text: str) -> str:
  """An observation as the loop appends it (`AgentConfig.env_template`); demonstrations built
  for a warm-up use it too, so they match what the policy will see."""
  if template.startswith('chat:'):   # only the new message's delta is tokenised
    return tok_lib.chat_turn_delta(tokenizer, template[len('chat:'):], text)
  return template.format(text=text)


def _env_round(env, tokenizer, episodes, pending, cfg: AgentConfig) -> dict[int, list[int]]:
  """Calls the env for the pending (row, text) pairs, appends its observations; returns the
  observation token ids appended per row that goes on."""
  rows, turns = [r for r, _ in pending], [t for _, t in pending]
  appended = {}
  for row, res in zip(rows, env_lib.call_step(env, rows, turns, cfg.env_timeout_s)):
    ep = episodes[row]
    ep.tool_calls += res.tool_call
    ep.invalid_actions += res.invalid
    if res.error:
      ep.env_errors += 1
      if cfg.on_error == 'end':
        ep.finish('env_error')
        continue
    text = cfg.error_template.format(error=res.error) if res.error else res.text
    ids, room = [], True
    if text:
      if cfg.compress_history:
        ep.compress()
      try:
        ids = tok_lib.encode(tokenizer, observation_text(tokenizer, cfg.env_template, text))
      except Exception as e:  # noqa: BLE001 - text the tokenizer cannot encode: no observation
        ep.env_errors += 1
        text = f'[unencodable observation: {env_lib.error_text(e)}]'
      room = ep.add('env', ids, [0.0] * len(ids), text, cfg.max_total_tokens)
      ids = ep.tokens[ep.turns[-1]['start']:]
      if cfg.compress_history and res.brief is not None and not res.error:
        ep.turns[-1].update(brief=res.brief, brief_ids=tok_lib.encode(
            tokenizer, observation_text(tokenizer, cfg.env_template, res.brief)))
    if res.done:
      ep.finish('env_done')
    elif not room:
      ep.finish('token_budget')
    else:
      appended[row] = ids
  return appended


def _turn_rng(rng, turn: int):
  """The first turn samples with `rng` itself, so a one-turn rollout draws exactly what
  `sampler.generate` draws for the same prompts."""
  return rng if turn == 0 else jax.random.fold_in(rng, turn)


def _sampling(cfg: AgentConfig, tokenizer, eos_ids, pad_id) -> dict:
  return dict(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
              stop=list(cfg.stop) or None, tokenizer=tokenizer, eos_ids=eos_ids, pad_id=pad_id)


def _rollout_reprefill(pair, tokenizer, episodes, env, cfg: AgentConfig, rng, mesh, eos_ids,
                       pad_id) -> None:
  """Every round prefills each live episode's whole context (prompt + turns so far)."""
  for turn in range(cfg.max_turns):
    live = [i for i, ep in enumerate(episodes) if not ep.done]
    if not live:
      return
    out = sampler.generate(
        pair, [episodes[i].prompt + episodes[i].tokens for i in live],
        max_new_tokens=cfg.max_turn_tokens, rng=_turn_rng(rng, turn), mesh=mesh,
        prompt_bucket=cfg.prompt_bucket, pad_batch_to=_pow2(len(live)),
        shared_prefix=cfg.shared_prefix, **_sampling(cfg, tokenizer, eos_ids, pad_id))
    tokens, logps = np.asarray(out.tokens), np.asarray(out.logprobs)
    lengths, finish = np.asarray(out.lengths), np.asarray(out.finish_reason)
    pending = []
    for j, i in enumerate(live):
      n = int(lengths[j])
      text = _record_turn(episodes[i], tokens[j, :n].tolist(), logps[j, :n].tolist(),
                          finish[j], tokenizer, cfg)
      if text is not None:
        pending.append((i, text))
    if turn + 1 < cfg.max_turns and pending:
      _env_round(env, tokenizer, episodes, pending, cfg)


@dataclasses.dataclass
class _KeptBatch:
  """The device cache of a batch of episodes and its host bookkeeping. Row r of the cache
  runs episode `rows[r]` (-1: a filler row, finished or padding the batch)."""
  cache: Any
  rows: list[int]
  kv_mask: np.ndarray     # [B, S] 1 on valid slots before `cursor`, 1 from it on
  next_pos: np.ndarray    # [B] real tokens in each row's cache (the next RoPE position)
  cursor: int = 0         # next free slot (shared by all rows)

  def compact(self, live: list[int]) -> None:
    """Keeps only the rows of episodes in `live` (in a power-of-two batch)."""
    where = {e: r for r, e in enumerate(self.rows) if e >= 0}
    keep = [where[e] for e in live]
    idx = np.array(keep + [keep[0]] * (_pow2(len(keep)) - len(keep)), np.int32)
    self.cache = sampler.take_rows(self.cache, idx)
    self.kv_mask, self.next_pos = self.kv_mask[idx], self.next_pos[idx]
    self.rows = live + [-1] * (len(idx) - len(live))

  def reserve(self, slots: int, step: int) -> None:
    """Grows the cache (rarely: the first size fits most rollouts) to hold `slots` more."""
    need = self.cursor + slots
    if need > self.kv_mask.shape[1]:
      capacity = _round_up(need + step, 64)
      self.cache = sampler.grow(self.cache, capacity)
      pad = np.ones((self.kv_mask.shape[0], capacity - self.kv_mask.shape[1]), np.int32)
      self.kv_mask = np.concatenate([self.kv_mask, pad], axis=1)


def _rollout_cached(pair, tokenizer, episodes, env, cfg: AgentConfig, rng, eos_ids,
                    pad_id) -> None:
  """The multi-turn loop over kept per-episode caches (see the module docstring)."""
  model_cfg = nnx.merge(*pair).config
  n = len(episodes)
  prefix = sampler.common_prefix([ep.prompt for ep in episodes], cfg.shared_prefix)
  p = len(prefix)                   # a shared prefix is prefilled once, for every row
  width = sampler.bucket_length(max(len(ep.prompt) for ep in episodes) - p, cfg.prompt_bucket)
  capacity = _round_up(p + width + cfg.max_total_tokens + cfg.max_turn_tokens
                       + cfg.max_turns * cfg.chunk_bucket, 64)
  batch = _pow2(n)
  cache = (sampler.prefix_cache(pair, prefix, batch, capacity) if prefix
           else sampler.new_cache(model_cfg, batch, capacity))
  kept = _KeptBatch(cache, list(range(n)) + [-1] * (batch - n),
                    np.ones((batch, capacity), np.int32), np.full(batch, p, np.int32), cursor=p)
  feed = {i: list(ep.prompt[p:]) for i, ep in enumerate(episodes)}  # not yet in the cache
  for turn in range(cfg.max_turns):
    live = [i for i in kept.rows if i >= 0 and not episodes[i].done]
    if not live:
      return
    if len(live) <= len(kept.rows) // 2:
      kept.compact(live)
    rows = [i if i >= 0 and not episodes[i].done else -1 for i in kept.rows]
    filler = feed[live[0]]           # filler rows repeat a live row's input, then stop
    width = (sampler.bucket_length(max(len(feed[i]) for i in live), cfg.prompt_bucket)
             if turn == 0 else _round_up(max(len(feed[i]) for i in live), cfg.chunk_bucket))
    chunks = [feed[i] if i >= 0 else (filler if turn == 0 else []) for i in rows]
    chunk = _pad_rows(chunks, width, pad_id, np.int32, left=True)
    chunk_mask = _pad_rows([[1] * len(c) for c in chunks], width, 0, np.int32, left=True)
    limits = np.array([min(cfg.max_turn_tokens, cfg.max_total_tokens - len(episodes[i].tokens))
                       if i >= 0 else 1 for i in rows], np.int32)
    kept.reserve(width + cfg.max_turn_tokens, cfg.max_turn_tokens)
    out, kept.cache = sampler.extend(
        pair, kept.cache, kept.kv_mask, kept.cursor, chunk, chunk_mask, kept.next_pos,
        max_new_tokens=cfg.max_turn_tokens, rng=_turn_rng(rng, turn),
        row_ids=np.array([max(i, 0) for i in rows], np.int32), limits=limits,
        **_sampling(cfg, tokenizer, eos_ids, pad_id))
    tokens, logps = np.asarray(out.tokens), np.asarray(out.logprobs)
    lengths, finish = np.asarray(out.lengths), np.asarray(out.finish_reason)
    # What the cache now holds: the chunk, then each row's sampled tokens but the last.
    start, fed, steps = kept.cursor + width, lengths - 1, int(lengths.max()) - 1
    kept.kv_mask[:, kept.cursor:start] = chunk_mask
    kept.kv_mask[:, start:start + steps] = np.arange(steps)[None] < fed[:, None]
    kept.next_pos += chunk_mask.sum(1).astype(np.int32) + fed.astype(np.int32)
    kept.cursor = start + steps
    pending = []
    for r, i in enumerate(rows):
      if i < 0:
        continue
      k = int(lengths[r])
      feed[i] = tokens[r, k - 1:k].tolist()
      text = _record_turn(episodes[i], tokens[r, :k].tolist(), logps[r, :k].tolist(),
                          finish[r], tokenizer, cfg)
      if text is not None:
        pending.append((i, text))
    if turn + 1 < cfg.max_turns and pending:
      for i, ids in _env_round(env, tokenizer, episodes, pending, cfg).items():
        feed[i] = feed[i] + ids


def rollout(model, tokenizer, prompts: Sequence[Sequence[int] | str], env,
            config: AgentConfig, *, rng, mesh=None,
            brief_prompts: Sequence[Sequence[int] | str] | None = None
            ) -> tuple[Rollout, list[Episode]]:
  """Runs a batch of multi-turn episodes.

  Args:
    model: a `layers.Decoder` or a (graphdef, params) pair (`sampler.split`).
    tokenizer: the HF tokenizer (decodes turns for the env, encodes observations).
    prompts: token-id lists (already chat-formatted), or strings to encode as they are.
    env: a `core.env.Environment` or `env(rows, turns) -> observations`.
    config: AgentConfig. rng: a PRNG key (folded with the round). mesh: optional; the
      re-prefill loop shards over it, the cached loop runs where the params are.
    brief_prompts: with `config.compress_history`, each prompt's form once its first
      observation has been answered (e.g. the first page replaced by a placeholder).
  Returns:
    (Rollout with [B, T = max_total_tokens] completions, host-side Episodes).
  """
  pair = sampler.split(model, mesh)
  as_ids = lambda p: list(tok_lib.encode(tokenizer, p) if isinstance(p, str) else p)  # noqa: E731
  episodes = [Episode(as_ids(p)) for p in prompts]
  if not episodes or min(len(ep.prompt) for ep in episodes) == 0:
    raise ValueError('prompts: every episode needs a non-empty prompt')
  if brief_prompts is not None:
    if not config.compress_history:
      raise ValueError('brief_prompts are used only with AgentConfig.compress_history=True')
    if len(brief_prompts) != len(episodes):
      raise ValueError(f'brief_prompts: {len(brief_prompts)} for {len(episodes)} prompts')
    for ep, p in zip(episodes, brief_prompts):
      ep.brief_prompt = as_ids(p) or None
  eos_ids, pad_id = tok_lib.stop_token_ids(tokenizer), tokenizer.pad_token_id
  if config.kv_reuse:
    _rollout_cached(pair, tokenizer, episodes, env, config, rng, eos_ids, pad_id)
  else:
    _rollout_reprefill(pair, tokenizer, episodes, env, config, rng, mesh, eos_ids, pad_id)
  for ep in episodes:
    ep.finish('max_turns')
  return collate(episodes, config.max_total_tokens, pad_id), episodes


def collate(episodes: Sequence[Episode], width: int, pad_id: int,
            prompt_bucket: int = 0) -> Rollout:
  """Host episodes -> fixed-shape arrays (masks from the turn spans)."""
  prompt_len = sampler.bucket_length(max(len(ep.prompt) for ep in episodes), prompt_bucket)
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
      num_turns=np.array([ep.num_policy_turns for ep in episodes], np.int32))
