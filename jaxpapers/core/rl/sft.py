"""Supervised fine-tuning: masked next-token NLL and its jitted train step.

Loss = sum over response tokens of -log p(token) / number of response tokens in the
global batch (token-level mean, as TRL's SFTTrainer with completion-only loss).
"""
from __future__ import annotations

from typing import Any, Mapping

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


def make_train_step(graphdef, optimizer, logits_chunk: int = 128):
  """`step(state, batch, rng) -> (state, metrics)`; logits are built `logits_chunk`
  positions at a time (jaxpapers.core.logprobs), never as one [B, T, V] array."""
  def step(state: train_lib.TrainState, batch, rng) -> tuple[Any, dict]:
    del rng  # deterministic objective
    grad_fn = jax.value_and_grad(sft_loss, has_aux=True)
    (_, stats), grads = grad_fn(state.params, graphdef, batch, logits_chunk)
    state, opt_metrics = train_lib.apply_gradients(state, grads, optimizer)
    return state, {**stats, **opt_metrics}
  return step
