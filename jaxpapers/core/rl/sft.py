"""Supervised fine-tuning: masked next-token NLL and its jitted train step.

Loss = sum over response tokens of -log p(token) / number of response tokens in the
global batch (token-level mean, as TRL's SFTTrainer with completion-only loss).
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


def make_train_step(graphdef, optimizer, logits_chunk: int = 128):
  """`step(state, batch, rng) -> (state, metrics)`; logits are built `logits_chunk`
  positions at a time (jaxpapers.core.logprobs), never as one [B, T, V] array."""
  return train_lib.loss_step(
      lambda params, batch: sft_loss(params, graphdef, batch, logits_chunk), optimizer)
