"""Supervised fine-tuning: masked next-token NLL and its jitted train step.

Loss = sum over response tokens of -log p(token) / number of response tokens in the
global batch (token-level mean, as TRL's SFTTrainer with completion-only loss).

Gradient accumulation (`grad_accum_steps` = k > 1): the batch is cut into k slices (rows
i::k) whose forward and backward run one after another under a `lax.scan` with each slice
rematerialised, so activations are held for one slice only; slice losses are weighted by
their share of the batch's target tokens, so loss and gradient are the whole batch's (not
a mean of per-slice means). A scan is used because XLA:CPU schedules per-layer remat in
an unrolled loop away (measured: same peak memory with and without it); a remat'd scan
body keeps one slice live on every backend.
"""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpapers.core import logprobs
from jaxpapers.core import train as train_lib


def sft_loss(params, graphdef, batch: Mapping[str, jax.Array], logits_chunk: int = 128):
  """Args: batch tokens [B, T], loss_mask [B, T] (1 on targets), attention_mask [B, T]."""
  model = nnx.merge(graphdef, params)
  logps = logprobs.decoder_next_token_logprobs(model, batch['tokens'],
                                               kv_mask=batch['attention_mask'],
                                               chunk_size=logits_chunk)
  stats = train_lib.cross_entropy_stats(logps, batch['loss_mask'][:, 1:].astype(jnp.float32))
  return stats['loss'], stats


def slices(batch: Mapping[str, jax.Array], k: int) -> dict[str, jax.Array]:
  """[B, ...] fields -> [k, B / k, ...]: slice i holds rows i, i + k, ... (so each slice
  keeps rows from every data-parallel shard)."""
  b = next(iter(batch.values())).shape[0]
  if b % k:
    raise ValueError(f'grad_accum_steps {k} does not divide the batch of {b} rows')
  return {key: x.reshape(b // k, k, *x.shape[1:]).swapaxes(0, 1) for key, x in batch.items()}


def accumulated_sft_loss(params, graphdef, batch: Mapping[str, jax.Array], k: int,
                         logits_chunk: int = 128):
  """`sft_loss` of the whole batch, computed one slice of B / k rows at a time."""
  targets = batch['loss_mask'][:, 1:].astype(jnp.float32).sum()
  total = jnp.maximum(targets, 1.0)

  @jax.checkpoint
  def one(params, micro):
    loss, stats = sft_loss(params, graphdef, micro, logits_chunk)
    return loss * stats['target_tokens'] / total

  def body(acc, micro):
    return acc + one(params, micro), None

  nll, _ = jax.lax.scan(body, jnp.zeros((), jnp.float32), slices(batch, k))
  return nll, {'loss': nll, 'perplexity': jnp.exp(jnp.minimum(nll, 50.0)),
               'target_tokens': targets}


def make_train_step(graphdef, optimizer, logits_chunk: int = 128, grad_accum_steps: int = 1):
  """`step(state, batch, rng) -> (state, metrics)`; logits are built `logits_chunk`
  positions at a time (jaxpapers.core.logprobs), never as one [B, T, V] array;
  `grad_accum_steps` > 1 accumulates over that many slices of the batch (module doc)."""
  if grad_accum_steps < 1:
    raise ValueError(f'grad_accum_steps must be >= 1, got {grad_accum_steps}')
  if grad_accum_steps == 1:
    return train_lib.loss_step(
        lambda params, batch: sft_loss(params, graphdef, batch, logits_chunk), optimizer)
  return train_lib.loss_step(
      lambda params, batch: accumulated_sft_loss(params, graphdef, batch, grad_accum_steps,
                                                 logits_chunk), optimizer)
