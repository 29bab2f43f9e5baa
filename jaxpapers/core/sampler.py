"""Jitted sampling for any `layers.Decoder`: bucketed prefill + `lax.while_loop` decode.

  out = sampler.generate(model, [[1, 2, 3], [4, 5]], max_new_tokens=32,
                         rng=jax.random.key(0), temperature=0.7, top_k=50, eos_ids=[2])

- The model is split into graphdef + params; `_prefill` and `_decode` are pure jitted
  functions compiled once per (batch, prompt bucket, max_new_tokens, sampling mode). Prompts
  are left-padded to a bucket (powers of two from 16, or multiples of `prompt_bucket`), so
  new prompt lengths inside a bucket reuse the compiled code.
- The KV cache ([B, Hkv, L + N, Dh] per layer) is allocated by `_prefill` and donated to
  `_decode`, whose while_loop writes one slot per step in place and exits as soon as every
  row is done: no host sync per token.
- Left padding: pad slots are invalid in `kv_mask` and positions count real tokens only, so a
  padded row continues exactly as the same prompt alone.
- Sampling: temperature, then top-k, then top-p (HF's order; top-p without top-k uses a
  sort-free bisection, top-p after top-k only touches the k candidates). One uniform per
  (step, row) from fold_in(fold_in(rng, step), row) drives an inverse-CDF draw, so a row's
  samples do not depend on its batch or its padding. temperature 0 is greedy.
- Logprobs: log softmax(logits / temperature) of the sampled token, before top-k/top-p (the
  logprob TRL's GRPO recomputes; raw logits when greedy).
- Stops: a row ends on an EOS id, on a stop string, or after N tokens. Stop strings are
  matched on device, exactly, by a byte automaton lifted to tokens (`stop_strings`: chosen
  over token-sequence matching, which misses a string spelled with other tokens, and over
  host checks between chunks, which sync and over-generate). The EOS or stop-completing
  token is kept in the output; `pad_id` fills the rest.
- Shared prefix (`shared_prefix=n`): when every prompt of the batch starts with the same n or
  more tokens (a system prompt, ICL demonstrations), that prefix is prefilled once, for one
  row, its cache copied to every row, and only the rest of each prompt is prefilled (the
  `extend` path); positions and sampling streams are those of the plain path, so the
  output is the same up to float rounding.
- Streaming (`on_chunk`): the same compiled decode loop is run to a dynamic step bound in
  chunks, handing the partial output to the caller between chunks.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import stop_strings
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.models import layers

FINISH_LENGTH, FINISH_EOS, FINISH_STOP = 0, 1, 2
MIN_BUCKET = 16


@flax.struct.dataclass
class SamplerOutput:
  tokens: jax.Array         # [B, N] int32 sampled ids; pad_id after each row's end
  logprobs: jax.Array       # [B, N] float32 log p(token) at the sampling temperature; 0 after
  lengths: jax.Array        # [B] int32 tokens generated, the EOS / stop-completing one included
  finish_reason: jax.Array  # [B] int32 FINISH_LENGTH | FINISH_EOS | FINISH_STOP


@flax.struct.dataclass
class _Carry:
  step: jax.Array        # [] int32 tokens sampled so far
  tokens: jax.Array      # [B, N] int32
  logprobs: jax.Array    # [B, N] float32
  done: jax.Array        # [B] bool
  lengths: jax.Array     # [B] int32
  finish: jax.Array      # [B] int32
  stop_state: jax.Array  # [B] int32 stop-automaton state


@dataclasses.dataclass(frozen=True)
class _Mode:
  """Static sampling settings: each field changes the compiled code."""
  greedy: bool
  top_k: int
  top_p: bool
  stops: bool
  pad_id: int
  max_new: int
  cache_sharding: Any = None  # NamedSharding of one [B, Hkv, S, Dh] cache array, or None


def bucket_length(n: int, bucket: int = 0) -> int:
  """Padded prompt length: next power of two >= 16, or next multiple of `bucket` if > 0."""
  if bucket > 0:
    return -(-n // bucket) * bucket
  return max(MIN_BUCKET, 1 << max(0, n - 1).bit_length())


# ----------------------------------------------------------------------------- pure sampling


def greedy(logits):
  """[B, V] -> [B] int32 argmax."""
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def token_logprobs(logits, tokens):
  """log softmax(logits)[tokens]: logits [B, V], tokens [B] -> [B] float32."""
  logits = logits.astype(jnp.float32)
  picked = jnp.take_along_axis(logits, tokens[:, None], axis=-1)[:, 0]
  return picked - jax.nn.logsumexp(logits, axis=-1)


def _nucleus_keep(sorted_desc, top_p):
  """[B, K] logits sorted descending -> [B, K] bool: the smallest prefix whose probability
  mass reaches top_p (HF TopPLogitsWarper: drop a token when the mass above it is >= p)."""
  probs = jax.nn.softmax(sorted_desc, axis=-1)
  return jnp.cumsum(probs, axis=-1) - probs < top_p


def top_k_filter(logits, k: int):
  """Logits [B, V] below the k-th largest of their row -> -inf (ties kept, as HF). k static."""
  if k <= 0 or k >= logits.shape[-1]:
    return logits
  kth = jax.lax.top_k(logits, k)[0][:, -1:]
  return jnp.where(logits < kth, -jnp.inf, logits)


def top_p_filter(logits, top_p):
  """Logits [B, V] outside the top-p nucleus of softmax(logits) -> -inf (>= 1 token kept).

  No sort (a [B, V] sort costs ~50x a decode step on CPU): the smallest kept probability is
  the largest threshold whose mass of probabilities >= it still reaches top_p, found exactly
  by bisection over the float32 bit patterns (ordered like the non-negative floats).
  """
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  bits = jax.lax.bitcast_convert_type(probs, jnp.int32)

  def halve(_, bounds):
    lo, hi = bounds                     # mass(>= lo) >= top_p > mass(>= hi)
    mid = lo + (hi - lo) // 2
    ok = jnp.sum(jnp.where(bits >= mid[:, None], probs, 0.0), axis=-1) >= top_p
    return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

  start = (jnp.zeros(bits.shape[:1], jnp.int32), jnp.max(bits, axis=-1) + 1)
  lo, _ = jax.lax.fori_loop(0, 32, halve, start)
  return jnp.where(bits >= lo[:, None], logits, -jnp.inf)


def _inverse_cdf(logits, u):
  """One index per row drawn from softmax(logits) [B, K] with uniforms u [B] in [0, 1)."""
  cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
  idx = jnp.sum(cdf < u[:, None] * cdf[:, -1:], axis=-1)
  return jnp.minimum(idx, logits.shape[-1] - 1).astype(jnp.int32)


def sample(logits, u, temperature, top_k: int = 0, top_p=None):
  """Temperature, top-k, top-p (HF's order), then an inverse-CDF draw.

  Args:
    logits: [B, V]. u: [B] uniforms in [0, 1). temperature: scalar > 0.
    top_k: static; 0 = off. With k > 0, top-p and the draw only touch the k candidates
      (no full-vocabulary sort). top_p: scalar or None (off).
  Returns:
    [B] int32 token ids.
  """
  x = logits.astype(jnp.float32) / temperature
  if 0 < top_k < x.shape[-1]:
    vals, idx = jax.lax.top_k(x, top_k)                        # sorted descending
    if top_p is not None:
      vals = jnp.where(_nucleus_keep(vals, top_p), vals, -jnp.inf)
    return jnp.take_along_axis(idx, _inverse_cdf(vals, u)[:, None], axis=-1)[:, 0]
  if top_p is not None:
    x = top_p_filter(x, top_p)
  return _inverse_cdf(x, u)


def _record(c: _Carry, logits, rng, row_ids, knobs, mode: _Mode) -> _Carry:
  """Samples token `c.step` from logits [B, V] and updates stops/lengths."""
  t = c.step
  logits = logits.astype(jnp.float32)
  if mode.greedy:
    tok = greedy(logits)
    lp = token_logprobs(logits, tok)
  else:
    key = jax.random.fold_in(rng, t)
    u = jax.vmap(lambda r: jax.random.uniform(jax.random.fold_in(key, r)))(row_ids)
    tok = sample(logits, u, knobs['temperature'], top_k=mode.top_k,
                 top_p=knobs['top_p'] if mode.top_p else None)
    lp = token_logprobs(logits / knobs['temperature'], tok)
  live = ~c.done
  eos = jnp.any(tok[:, None] == knobs['eos'][None, :], axis=-1) & live
  hit, stop_state = jnp.zeros_like(eos), c.stop_state
  if mode.stops:
    hit = knobs['stop_hit'][c.stop_state, tok] & live & ~eos
    stop_state = knobs['stop_next'][c.stop_state, tok].astype(jnp.int32)
  finish = jnp.where(eos, FINISH_EOS, jnp.where(hit, FINISH_STOP, c.finish))
  col = lambda buf, x: jax.lax.dynamic_update_slice(buf, x[:, None], (0, t))  # noqa: E731
  return _Carry(step=t + 1,
                tokens=col(c.tokens, jnp.where(live, tok, mode.pad_id).astype(jnp.int32)),
                logprobs=col(c.logprobs, jnp.where(live, lp, 0.0)),
                done=c.done | eos | hit | (t + 1 >= mode.max_new) | (t + 1 >= knobs['limit']),
                lengths=c.lengths + live.astype(jnp.int32), finish=finish,
                stop_state=stop_state)


def _kv_mask(prompt_mask, max_new):
  """[B, L + N]: valid prompt slots, then every generated slot (causality hides the future)."""
  return jnp.concatenate([prompt_mask, jnp.ones((prompt_mask.shape[0], max_new),
                                                 prompt_mask.dtype)], axis=1)


def _fresh_carry(b: int, mode: _Mode) -> _Carry:
  n = mode.max_new
  return _Carry(step=jnp.zeros((), jnp.int32), tokens=jnp.full((b, n), mode.pad_id, jnp.int32),
                logprobs=jnp.zeros((b, n), jnp.float32), done=jnp.zeros((b,), bool),
                lengths=jnp.zeros((b,), jnp.int32), finish=jnp.zeros((b,), jnp.int32),
                stop_state=jnp.zeros((b,), jnp.int32))


def _run_chunk(model, cache, kv_mask, start, chunk, chunk_mask, base_pos, row_ids, rng, knobs,
               mode: _Mode):
  """Writes `chunk` [B, L] (left-padded, `chunk_mask` 1 on real tokens) into cache slots
  start..start+L, its real tokens at positions base_pos.., and samples the next token.
  Returns (cache, kv_mask with the chunk's slots, carry)."""
  kv_mask = jax.lax.dynamic_update_slice(kv_mask, chunk_mask.astype(kv_mask.dtype), (0, start))
  positions = base_pos[:, None] + jnp.maximum(jnp.cumsum(chunk_mask, axis=1) - 1, 0)
  h, cache = model.hidden_states(chunk, positions, kv_mask, cache, start)
  logits = model.logits_from_hidden(h[:, -1])
  return cache, kv_mask, _record(_fresh_carry(chunk.shape[0], mode), logits, rng, row_ids,
                                 knobs, mode)


@functools.partial(jax.jit, static_argnames=('graphdef', 'mode'))
def _prefill(params, tokens, prompt_mask, row_ids, rng, knobs, *, graphdef, mode: _Mode):
  """Runs the prompt [B, L] into a fresh cache and samples the first token."""
  model = nnx.merge(graphdef, params)
  b, length = tokens.shape
  cache = layers.init_cache(model.config, b, length + mode.max_new)
  if mode.cache_sharding is not None:
    cache = jax.lax.with_sharding_constraint(cache, mode.cache_sharding)
  return _run_chunk(model, cache, _kv_mask(prompt_mask, mode.max_new), 0, tokens, prompt_mask,
                    jnp.zeros((b,), jnp.int32), row_ids, rng, knobs, mode)


@functools.partial(jax.jit, static_argnames=('graphdef', 'mode'), donate_argnums=(1,))
def _extend(params, cache, kv_mask, start, chunk, chunk_mask, base_pos, row_ids, rng, knobs, *,
            graphdef, mode: _Mode):
  """`_prefill` into an existing (donated) cache at slot `start`: a new turn's tokens."""
  return _run_chunk(nnx.merge(graphdef, params), cache, kv_mask, start, chunk, chunk_mask,
                    base_pos, row_ids, rng, knobs, mode)


@functools.partial(jax.jit, static_argnames=('graphdef', 'mode'), donate_argnums=(1,))
def _decode(params, cache, carry: _Carry, kv_mask, start, base_pos, row_ids, rng, knobs, until,
            *, graphdef, mode: _Mode) -> tuple[_Carry, Any]:
  """Decodes until every row is done or `until` (<= N) tokens. Sampled token j is fed at
  cache slot start + j and position base_pos + j; `kv_mask` [B, S] marks valid slots (slots
  from `start` on are 1: causality hides the ones not written yet). The cache is donated and
  returned, so the loop updates it in place (XLA aliases a donated input only to an output);
  `until` is dynamic, so streaming in chunks reuses the same compiled loop."""
  model = nnx.merge(graphdef, params)

  def cond(state):
    c, _ = state
    return (c.step < until) & ~jnp.all(c.done)

  def body(state):
    c, cache = state
    prev = jax.lax.dynamic_slice_in_dim(c.tokens, c.step - 1, 1, axis=1)   # [B, 1]
    positions = (base_pos + c.step - 1)[:, None]
    h, cache = model.hidden_states(prev, positions, kv_mask, cache, start + c.step - 1)
    logits = model.logits_from_hidden(h[:, 0])
    return _record(c, logits, rng, row_ids, knobs, mode), cache

  return jax.lax.while_loop(cond, body, (carry, cache))


def _output(c: _Carry, rows: int) -> SamplerOutput:
  out = SamplerOutput(tokens=c.tokens, logprobs=c.logprobs, lengths=c.lengths,
                      finish_reason=c.finish)
  return out if c.tokens.shape[0] == rows else jax.tree.map(lambda x: x[:rows], out)


# ----------------------------------------------------------------------------- host side


def split(model, mesh=None) -> tuple[Any, Any]:
  """(graphdef, pure-dict params) of a `layers.Decoder`; with `mesh`, params are placed by
  the logical-axis rules. A (graphdef, params) pair passes through unchanged."""
  if isinstance(model, tuple):
    return model
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  if mesh is not None:
    params = jax.device_put(params, mesh_lib.param_shardings(state, mesh))
  return graphdef, params


def pad_prompts(prompts, pad_id: int, prompt_mask=None, bucket: int = 0):
  """Left-pads prompts to a bucketed length.

  Args:
    prompts: list of token-id lists, or a left-padded [B, T] array (leading `pad_id`s are
      padding unless `prompt_mask` [B, T] says otherwise).
  Returns:
    (tokens [B, L] int32, mask [B, L] int32) numpy arrays, L = bucket_length(max length).
  """
  if isinstance(prompts, (np.ndarray, jax.Array)):
    arr = np.asarray(prompts)
    if prompt_mask is None:
      prompt_mask = np.cumsum(arr != pad_id, axis=1) > 0
    rows = [list(r[np.asarray(m) > 0]) for r, m in zip(arr, prompt_mask)]
  else:
    rows = [list(r) for r in prompts]
  if not rows or min(len(r) for r in rows) == 0:
    raise ValueError('prompts: every prompt needs at least one token')
  length = bucket_length(max(len(r) for r in rows), bucket)
  tokens = np.full((len(rows), length), pad_id, np.int32)
  mask = np.zeros((len(rows), length), np.int32)
  for i, r in enumerate(rows):
    tokens[i, length - len(r):] = r
    mask[i, length - len(r):] = 1
  return tokens, mask


def _pad_batch(tokens, mask, rows: int):
  """Appends dummy rows (one valid pad token each) up to `rows`."""
  extra = rows - tokens.shape[0]
  if extra <= 0:
    return tokens, mask
  dummy_mask = np.zeros((extra, mask.shape[1]), np.int32)
  dummy_mask[:, -1] = 1
  return (np.concatenate([tokens, np.full((extra, tokens.shape[1]), tokens[0, 0], np.int32)]),
          np.concatenate([mask, dummy_mask]))


def _knobs(temperature, top_p, eos_ids, matcher, limit) -> dict:
  """Dynamic sampling inputs (changing them does not recompile; EOS ids pad to 8s).
  `limit` [B]: tokens each row may sample at most (<= max_new)."""
  eos = list(eos_ids or ())
  eos = np.array(eos + [-1] * (-(-max(len(eos), 1) // 8) * 8 - len(eos)), np.int32)
  knobs = {'temperature': np.float32(temperature if temperature > 0 else 1.0),
           'top_p': np.float32(top_p), 'eos': eos, 'limit': np.asarray(limit, np.int32)}
  if matcher is not None:
    knobs['stop_next'], knobs['stop_hit'] = matcher.device_tables()
  return knobs


PREFIX_BUCKET = 64   # shared prefixes are cut to multiples of this (few compiled shapes)


def common_prefix(prompts: Sequence[Sequence[int]], min_len: int) -> list[int]:
  """The prompts' longest common prefix, cut to a multiple of PREFIX_BUCKET and so that
  every prompt keeps at least one token of its own; [] when that is under `min_len` (or
  `min_len` <= 0: sharing off)."""
  rows = [list(p) for p in prompts]
  if not rows or min_len <= 0:
    return []
  n = min(len(r) for r in rows) - 1
  first = rows[0]
  for r in rows[1:]:
    n = next((k for k in range(n) if r[k] != first[k]), n)
  n = n // PREFIX_BUCKET * PREFIX_BUCKET
  return first[:n] if n >= min_len else []


@functools.partial(jax.jit, static_argnames=('graphdef', 'batch', 'capacity'))
def _prefix_cache(params, prefix, *, graphdef, batch: int, capacity: int):
  """A cache of `capacity` slots for `batch` rows, each holding `prefix` [1, P] at slots
  0..P (prefilled once, then copied)."""
  model = nnx.merge(graphdef, params)
  length = prefix.shape[1]
  cache = layers.init_cache(model.config, 1, length)
  _, cache = model.hidden_states(prefix, jnp.arange(length)[None], jnp.ones_like(prefix),
                                 cache, 0)
  return jax.tree.map(lambda x: jnp.pad(jnp.broadcast_to(x, (batch,) + x.shape[1:]),
                                        ((0, 0), (0, 0), (0, capacity - length), (0, 0))),
                      cache)


def generate(model, prompts, *, max_new_tokens: int, rng, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, stop=None, tokenizer=None,
             eos_ids: Sequence[int] = (), pad_id: int = 0, prompt_mask=None, mesh=None,
             prompt_bucket: int = 0, pad_batch_to: int = 0, on_chunk=None,
             chunk_tokens: int = 16, shared_prefix: int = 0) -> SamplerOutput:
  """Samples continuations of a batch of prompts.

  Args:
    model: a `layers.Decoder` or a (graphdef, params) pair from `split`.
    prompts: token-id lists, or a left-padded [B, T] array (see `pad_prompts`).
    max_new_tokens: N, tokens generated at most per row.
    rng: a jax PRNG key.
    temperature: 0 -> greedy; else logits / temperature.
    top_k: keep the k most likely tokens (0 = off); top_p: nucleus mass (1 = off).
    stop: stop strings (needs `tokenizer`) or a `stop_strings.StopMatcher`.
    eos_ids: token ids that end a row (kept in the output).
    pad_id: written after a row's end, and the left-padding token.
    mesh: shard the batch (and cache) over the mesh's batch axes; pass params already on
      the mesh (`split(model, mesh)`), or a model, whose params are then placed each call.
    prompt_bucket: bucket prompt lengths to multiples of this (0 = powers of two).
    pad_batch_to: run with at least this many rows (dummy rows are dropped).
    on_chunk: streaming: called with the partial SamplerOutput after the first token and
      then every `chunk_tokens` decode steps (one host sync per chunk, not per token).
    shared_prefix: prefill the prompts' common prefix once when it has at least this many
      tokens (rounded down to a multiple of PREFIX_BUCKET; 0 = off). Token-list prompts only.
  Returns:
    SamplerOutput with [B, N] tokens and logprobs, [B] lengths and finish reasons.
  """
  if max_new_tokens <= 0:
    raise ValueError(f'max_new_tokens must be > 0, got {max_new_tokens}')
  graphdef, params = split(model, mesh)
  cfg = nnx.merge(graphdef, params).config
  prefix = ([] if isinstance(prompts, (np.ndarray, jax.Array))
            else common_prefix(prompts, shared_prefix))
  if prefix:
    prompts = [list(p)[len(prefix):] for p in prompts]
  tokens, mask = pad_prompts(prompts, pad_id, prompt_mask, prompt_bucket)
  b = tokens.shape[0]
  div = mesh_lib.batch_divisor(mesh) if mesh is not None else 1
  tokens, mask = _pad_batch(tokens, mask, -(-max(b, pad_batch_to) // div) * div)
  matcher = stop_strings.matcher(stop, tokenizer, cfg.vocab_size)
  p = len(prefix)
  sharding = _cache_sharding(mesh, cfg, (tokens.shape[0], p + tokens.shape[1]), max_new_tokens)
  mode = _Mode(greedy=temperature <= 0, top_k=int(top_k), top_p=top_p < 1.0 and temperature > 0,
               stops=matcher is not None, pad_id=int(pad_id), max_new=int(max_new_tokens),
               cache_sharding=None if prefix else sharding)
  row_ids = np.arange(tokens.shape[0], dtype=np.int32)
  if mesh is not None:
    rows2, rows1 = mesh_lib.batch_sharding(mesh), mesh_lib.batch_sharding(mesh, 1)
    tokens, mask, row_ids = jax.device_put((tokens, mask, row_ids), (rows2, rows2, rows1))
  knobs = _knobs(temperature, top_p, eos_ids, matcher, np.full(tokens.shape[0], max_new_tokens))
  if prefix:
    cache = _prefix_cache(params, np.asarray([prefix], np.int32), graphdef=graphdef,
                          batch=tokens.shape[0], capacity=p + tokens.shape[1] + max_new_tokens)
    if sharding is not None:
      cache = jax.device_put(cache, sharding)
    kv_mask = np.ones((tokens.shape[0], p + tokens.shape[1] + max_new_tokens), np.int32)
    base = np.full((tokens.shape[0],), p, np.int32)
    cache, kv_mask, carry = _extend(params, cache, kv_mask, np.int32(p), tokens, mask, base,
                                    row_ids, rng, knobs, graphdef=graphdef, mode=mode)
  else:
    cache, kv_mask, carry = _prefill(params, tokens, mask, row_ids, rng, knobs,
                                     graphdef=graphdef, mode=mode)
  start, base_pos = np.int32(p + tokens.shape[1]), p + jnp.sum(mask, axis=1).astype(jnp.int32)
  run = lambda carry, cache, until: _decode(  # noqa: E731
      params, cache, carry, kv_mask, start, base_pos, row_ids, rng, knobs, np.int32(until),
      graphdef=graphdef, mode=mode)
  if on_chunk is None:
    return _output(run(carry, cache, max_new_tokens)[0], b)
  until = 1
  on_chunk(_output(carry, b))
  while until < max_new_tokens and not bool(jnp.all(carry.done)):
    until = min(until + max(1, chunk_tokens), max_new_tokens)
    carry, cache = run(carry, cache, until)
    on_chunk(_output(carry, b))
  return _output(carry, b)


def _cache_sharding(mesh, cfg: layers.DecoderConfig, shape, max_new):
  """Cache arrays split over the batch axes (and kv heads on `tensor` when divisible)."""
  if mesh is None:
    return None
  cache_shape = (shape[0], cfg.num_key_value_heads, shape[1] + max_new, cfg.head_dim)
  spec = mesh_lib.logical_spec(('batch', 'kv_heads', None, None), cache_shape, mesh)
  return NamedSharding(mesh, spec)


def compile_count() -> int:
  """Compiled variants of the prefill and decode functions so far (tests check reuse)."""
  return (_prefill._cache_size() + _extend._cache_size() + _decode._cache_size()
          + _prefix_cache._cache_size())


# ----------------------------------------------------------------------------- kept caches


@functools.partial(jax.jit, static_argnames=('cfg', 'batch', 'capacity'))
def new_cache(cfg: layers.DecoderConfig, batch: int, capacity: int):
  """An empty cache of `capacity` slots for `extend` (one per batch row)."""
  return layers.init_cache(cfg, batch, capacity)


def prefix_cache(model, prefix: Sequence[int], batch: int, capacity: int):
  """A kept cache (for `extend`) of `capacity` slots whose `batch` rows all hold `prefix` at
  slots 0..len(prefix), prefilled once: extend at start=len(prefix), base_pos=len(prefix)."""
  graphdef, params = split(model)
  return _prefix_cache(params, np.asarray([list(prefix)], np.int32), graphdef=graphdef,
                       batch=batch, capacity=capacity)


@jax.jit
def take_rows(cache, rows):
  """The cache rows `rows` [B'] (compacting a batch whose episodes finished)."""
  return jax.tree.map(lambda x: x[rows], cache)


@functools.partial(jax.jit, static_argnames=('capacity',))
def grow(cache, capacity: int):
  """The same cache with more (empty) slots."""
  return jax.tree.map(lambda x: jnp.pad(x, ((0, 0), (0, 0), (0, capacity - x.shape[2]), (0, 0))),
                      cache)


def extend(model, cache, kv_mask: np.ndarray, start: int, chunk: np.ndarray,
           chunk_mask: np.ndarray, base_pos: np.ndarray, *, max_new_tokens: int, rng,
           row_ids: np.ndarray, limits: np.ndarray, temperature: float = 1.0, top_k: int = 0,
           top_p: float = 1.0, stop=None, tokenizer=None, eos_ids: Sequence[int] = (),
           pad_id: int = 0) -> tuple[SamplerOutput, Any]:
  """Appends a chunk to a kept cache and samples a continuation (one turn of an episode).

  Args:
    model: a `layers.Decoder` or (graphdef, params) pair.
    cache: from `new_cache` (or a previous `extend`); donated.
    kv_mask: [B, S] 1 on the valid slots before `start` (1 from `start` on).
    start: slot of `chunk[:, 0]`; the chunk takes slots start..start+L and the sampled
      tokens the slots after it (token j, once fed, at start + L + j).
    chunk: [B, L] new tokens per row, left-padded; chunk_mask [B, L] 1 on real tokens.
    base_pos: [B] RoPE position of each row's first real chunk token (its tokens so far).
    row_ids: [B] per-row sampling stream ids (a row's draws do not depend on its slot).
    limits: [B] tokens each row may sample (<= max_new_tokens).
    Other arguments as `generate`.
  Returns:
    (SamplerOutput, the cache). Sampled token j < length - 1 of a row was fed at slot
    start + L + j; the last sampled token is not in the cache yet.
  """
  graphdef, params = split(model)
  cfg = nnx.merge(graphdef, params).config
  matcher = stop_strings.matcher(stop, tokenizer, cfg.vocab_size)
  mode = _Mode(greedy=temperature <= 0, top_k=int(top_k), top_p=top_p < 1.0 and temperature > 0,
               stops=matcher is not None, pad_id=int(pad_id), max_new=int(max_new_tokens))
  knobs = _knobs(temperature, top_p, eos_ids, matcher, limits)
  chunk, chunk_mask = np.asarray(chunk, np.int32), np.asarray(chunk_mask, np.int32)
  base_pos, row_ids = np.asarray(base_pos, np.int32), np.asarray(row_ids, np.int32)
  cache, kv, carry = _extend(params, cache, np.asarray(kv_mask, np.int32), np.int32(start), chunk,
                             chunk_mask, base_pos, row_ids, rng, knobs, graphdef=graphdef,
                             mode=mode)
  length = chunk.shape[1]
  carry, cache = _decode(params, cache, carry, kv, np.int32(start + length),
                         base_pos + chunk_mask.sum(1).astype(np.int32), row_ids, rng, knobs,
                         np.int32(max_new_tokens), graphdef=graphdef, mode=mode)
  return _output(carry, chunk.shape[0]), cache


# ----------------------------------------------------------------------------- text


def decode_completions(tokenizer, out: SamplerOutput, skip_special_tokens: bool = True
                       ) -> list[str]:
  """Each row's generated tokens (up to its length) as text."""
  tokens, lengths = np.asarray(out.tokens), np.asarray(out.lengths)
  return [tokenizer.decode(row[:n].tolist(), skip_special_tokens=skip_special_tokens)
          for row, n in zip(tokens, lengths)]


def generate_text(model, tokenizer, prompts: Sequence[Any], *, max_new_tokens: int, rng,
                  chat: bool = True, system: str | None = None, stop: Sequence[str] = (),
                  on_text=None, **kwargs) -> list[str]:
  """Text in, text out: each prompt (a string or a list of chat messages) goes through the
  tokenizer's chat template unless `chat=False`; stops at the chat end-of-turn tokens and at
  `stop` strings. `on_text(text)` streams the first row's text as it grows. Other kwargs go
  to `generate`."""
  texts = [tok_lib.chat_prompt(tokenizer, p, system=system) if chat else p for p in prompts]
  ids = [tok_lib.encode(tokenizer, t) for t in texts]
  kwargs.setdefault('eos_ids', tok_lib.stop_token_ids(tokenizer))
  kwargs.setdefault('pad_id', tokenizer.pad_token_id)
  if on_text is not None:
    first_row = lambda partial: jax.tree.map(lambda x: x[:1], partial)  # noqa: E731
    kwargs['on_chunk'] = lambda partial: on_text(
        decode_completions(tokenizer, first_row(partial))[0])   # only the streamed row
  out = generate(model, ids, max_new_tokens=max_new_tokens, rng=rng, stop=list(stop) or None,
                 tokenizer=tokenizer, **kwargs)
  return decode_completions(tokenizer, out)


def length_sorted_batches(lengths: Sequence[int], size: int):
  """Index batches of rows sorted by length (less padding); callers restore the order."""
  order = np.argsort(lengths, kind='stable')
  for i in range(0, len(order), size):
    yield order[i:i + size]


def generate_batched(model, prompt_ids: Sequence[Sequence[int]], *, max_new_tokens: int,
                     batch_size: int, decode: Callable[[list[int]], str],
                     temperature: float = 0.0, seed: int = 0, **kwargs) -> list[str]:
  """Texts of many prompts, in input order: prompts sorted by length into batches of
  `batch_size` rows (every call padded to that many rows, so few compiled shapes); batch k
  samples with fold_in(PRNGKey(seed), k). `decode` maps a row's generated ids (up to its
  length) to text; other kwargs go to `generate`."""
  out: list[str] = [''] * len(prompt_ids)
  key = jax.random.PRNGKey(seed)
  for k, idx in enumerate(length_sorted_batches([len(p) for p in prompt_ids], batch_size)):
    res = generate(model, [list(prompt_ids[i]) for i in idx], max_new_tokens=max_new_tokens,
                   rng=jax.random.fold_in(key, k), temperature=temperature,
                   pad_batch_to=batch_size, **kwargs)
    tokens, lengths = np.asarray(res.tokens), np.asarray(res.lengths)
    for j, i in enumerate(idx):
      out[i] = decode(tokens[j, :lengths[j]].tolist())
  return out
