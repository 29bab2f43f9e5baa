"""Supervised fine-tuning: masked next-token NLL and its jitted train step.

Loss = sum over response tokens of -log p(token) / number of response tokens in the
global batch (token-level mean, as TRL's SFTTrainer with completion-only loss).
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpapers.core import train as train_lib


def next_token_logps(model, tokens, attention_mask):
  """log p(tokens[:, t+1] | tokens[:, :t+1]) for t < T-1; returns [B, T-1] float32."""
  hidden, _ = model.hidden_states(tokens, kv_mask=attention_mask)
  logits = model.logits_from_hidden(hidden[:, :-1]).astype(jnp.float32)
  logps = jax.nn.log_softmax(logits, axis=-1)
  return jnp.take_along_axis(logps, tokens[:, 1:, None], axis=-1)[..., 0]


def sft_loss(params, graphdef, batch: Mapping[str, jax.Array]):
  """Args: batch tokens [B, T], loss_mask [B, T] (1 on targets), attention_mask [B, T]."""
  model = nnx.merge(graphdef, params)
  logps = next_token_logps(model, batch['tokens'], batch['attention_mask'])
  stats = train_lib.cross_entropy_stats(logps, batch['loss_mask'][:, 1:].astype(jnp.float32))
  return stats['loss'], stats


def make_train_step(graphdef, optimizer):
  def step(state: train_lib.TrainState, batch, rng) -> tuple[Any, dict]:
    del rng  # deterministic objective
    grad_fn = jax.value_and_grad(sft_loss, has_aux=True)
    (_, stats), grads = grad_fn(state.params, graphdef, batch)
    state, opt_metrics = train_lib.apply_gradients(state, grads, optimizer)
    return state, {**stats, **opt_metrics}
  return step
