"""Per-token log-probabilities of given tokens without a float32 [B, S, V] at once.

The naive way (`log_softmax(h @ W)` then gather) holds the full float32 logits, and its
backward holds them again: for Qwen's 152k vocabulary that is ~600 MB per 1k tokens of batch.
Here the sequence is cut into chunks of `chunk_size` positions; a `lax.scan` visits them and
each chunk's body is wrapped in `jax.checkpoint`, so the forward keeps only the chunk's
[B, D] inputs and the backward recomputes one chunk's [B, c, V] logits at a time. Peak extra
memory is one chunk of logits instead of the whole sequence.

Temperature follows TRL (`GRPOTrainer._get_per_token_logps_and_entropies`: logits are divided
by the sampling temperature before `selective_log_softmax`); entropy is that of the tempered
distribution, as TRL's `entropy_from_logits` computes it.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def _chunk_stats(project, h, targets, temperature, with_entropy):
  """Log-prob of `targets` and entropy for one chunk.

  Args:
    project: hidden [B, c, D] -> logits [B, c, V].
    h: [B, c, D] hidden states.
    targets: [B, c] int token ids.
  Returns:
    (logps [B, c] float32, entropy [B, c] float32 or zeros).
  """
  logits = project(h).astype(jnp.float32) / temperature
  lse = jax.nn.logsumexp(logits, axis=-1)
  picked = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  logps = picked - lse
  if not with_entropy:
    return logps, jnp.zeros_like(logps)
  probs = jnp.exp(logits - lse[..., None])
  entropy = lse - jnp.sum(probs * logits, axis=-1)
  return logps, entropy


def token_logprobs(hidden: jax.Array, targets: jax.Array,
                   project: Callable[[jax.Array], jax.Array], *, chunk_size: int = 256,
                   temperature: float = 1.0, with_entropy: bool = False):
  """log p(targets | hidden) per position, chunked over the sequence with remat.

  Args:
    hidden: [B, S, D] final (normed) hidden states.
    targets: [B, S] int token ids whose log-probability is wanted at each position.
    project: hidden chunk [B, c, D] -> logits [B, c, V] (e.g. `Decoder.logits_from_hidden`);
      may close over parameters, gradients flow to them.
    chunk_size: sequence positions per chunk; S is padded up to a multiple of it.
    temperature: logits are divided by it before the softmax (TRL convention).
    with_entropy: also return the per-token entropy of the tempered distribution.
  Returns:
    logps [B, S] float32, or (logps, entropy) each [B, S] float32 when `with_entropy`.
  """
  if chunk_size <= 0:
    raise ValueError(f'chunk_size must be positive, got {chunk_size}')
  b, s, d = hidden.shape
  c = min(chunk_size, s)
  n = -(-s // c)
  pad = n * c - s
  h = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
  t = jnp.pad(targets, ((0, 0), (0, pad)))
  h = h.reshape(b, n, c, d).swapaxes(0, 1)          # [n, B, c, D]
  t = t.reshape(b, n, c).swapaxes(0, 1)             # [n, B, c]

  @jax.checkpoint
  def body(args):
    return _chunk_stats(project, args[0], args[1], temperature, with_entropy)

  logps, entropy = jax.lax.map(body, (h, t))         # each [n, B, c]
  logps = logps.swapaxes(0, 1).reshape(b, n * c)[:, :s]
  if not with_entropy:
    return logps
  return logps, entropy.swapaxes(0, 1).reshape(b, n * c)[:, :s]


def decoder_next_token_logprobs(model, tokens, positions=None, kv_mask=None, *,
                                chunk_size: int = 256, temperature: float = 1.0,
                                with_entropy: bool = False, last: int | None = None):
  """Log-probs of tokens[:, 1:] under a `layers.Decoder`, one forward, chunked head.

  Args:
    model: a `jaxpapers.core.models.layers.Decoder` (or anything with `hidden_states` and
      `logits_from_hidden`).
    tokens: [B, T] int token ids (prompt + completion, left-padded as the sampler writes them).
    positions: [B, T] RoPE positions; default 0..T-1.
    kv_mask: [B, T] 1 for real tokens; default all valid.
    last: score only the last `last` tokens (TRL's `logits_to_keep`): the vocabulary
      projection, the dominant cost at large vocabularies, then skips the prompt.
  Returns:
    logps [B, T-1] where logps[:, i] = log p(tokens[:, i+1] | tokens[:, :i+1]), or [B, last]
    for the last tokens; with `with_entropy`, (logps, entropy) of the same shape. Masking
    pads/prompt is the caller's job.
  """
  hidden, _ = model.hidden_states(tokens, positions, kv_mask)
  first = 1 if last is None else tokens.shape[1] - last
  if not 1 <= first < tokens.shape[1]:
    raise ValueError(f'last must be in [1, {tokens.shape[1] - 1}], got {last}')
  return token_logprobs(hidden[:, first - 1:-1], tokens[:, first:], model.logits_from_hidden,
                        chunk_size=chunk_size, temperature=temperature,
                        with_entropy=with_entropy)


def next_token_choice_logprobs(model, tokens, kv_mask, choice_ids):
  """log p(choice | prompt) for a few candidate next tokens, one forward per batch.

  For verdict / multiple-choice scoring: only the last position's logits are projected.

  Args:
    model: a `layers.Decoder`.
    tokens: [B, T] left-padded prompts (`sampler.pad_prompts`).
    kv_mask: [B, T] 1 on real tokens.
    choice_ids: [K] candidate token ids.
  Returns:
    [B, K] float32 log-probabilities under the full-vocabulary softmax (renormalise over
    the K choices if wanted).
  """
  positions = jnp.maximum(jnp.cumsum(kv_mask, axis=1) - 1, 0)
  hidden, _ = model.hidden_states(tokens, positions, kv_mask)
  logits = model.logits_from_hidden(hidden[:, -1]).astype(jnp.float32)     # [B, V]
  logps = jax.nn.log_softmax(logits, axis=-1)
  return jnp.take(logps, jnp.asarray(choice_ids, jnp.int32), axis=-1)
