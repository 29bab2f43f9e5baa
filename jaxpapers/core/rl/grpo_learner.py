"""GRPO learner pieces: rollout batch assembly, completion log-probs, the jitted update.

One GRPO step (TRL GRPOTrainer order): repeat each prompt G times -> sample completions ->
score them on the host -> group advantages -> (optional) old / reference log-probs, one
forward each -> `num_iterations` clipped-surrogate updates on the same batch.

Sequences are [prompt (left-padded, P) | completion (right-padded, C)]; positions count
only real tokens, so a row's completion continues its prompt exactly as the sampler saw it.
The loss mask is the completion mask times the policy mask (0 on environment tokens in
multi-turn rollouts).
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxpapers.core import logprobs as logprobs_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.rl import advantages as adv_lib
from jaxpapers.core.rl import grpo as grpo_lib


@flax.struct.dataclass
class RolloutBatch:
  tokens: jax.Array           # [N, P + C] int32
  kv_mask: jax.Array          # [N, P + C] 1 on real tokens
  loss_mask: jax.Array        # [N, C] 1 on policy tokens that count in the loss
  advantages: jax.Array       # [N]
  old_logps: jax.Array        # [N, C] sampling-policy log-probs (zeros when on-policy)
  ref_logps: jax.Array        # [N, C] reference log-probs (zeros when beta == 0)
  token_weights: jax.Array | None = None  # [N, C] e.g. truncated IS weights; None = 1


def assemble(prompt_tokens: np.ndarray, prompt_mask: np.ndarray, completion_tokens: np.ndarray,
             completion_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Concatenates left-padded prompts and right-padded completions: (tokens, kv_mask)."""
  tokens = np.concatenate([prompt_tokens, completion_tokens], axis=1).astype(np.int32)
  kv_mask = np.concatenate([prompt_mask, completion_mask], axis=1).astype(np.int32)
  return tokens, kv_mask


def completion_logps(model, tokens, kv_mask, completion_len: int, chunk_size: int = 128,
                     temperature: float = 1.0, with_entropy: bool = False):
  """log p of the last `completion_len` tokens of each row; [N, C] (and entropy [N, C])."""
  positions = jnp.maximum(jnp.cumsum(kv_mask, axis=1) - 1, 0)
  return logprobs_lib.decoder_next_token_logprobs(
      model, tokens, positions, kv_mask, chunk_size=chunk_size, temperature=temperature,
      with_entropy=with_entropy, last=completion_len)


def make_logps_fn(graphdef, completion_len: int, chunk_size: int = 128,
                  temperature: float = 1.0):
  """jit(params, tokens, kv_mask) -> [N, C] log-probs (for old / reference policies)."""
  def fn(params, tokens, kv_mask):
    model = nnx.merge(graphdef, params)
    return completion_logps(model, tokens, kv_mask, completion_len, chunk_size, temperature)
  return jax.jit(fn)


def make_loss_fn(graphdef, loss_cfg: grpo_lib.GRPOLossConfig, *, use_old_logps: bool,
                 chunk_size: int = 128, temperature: float = 1.0):
  """`loss_fn(params, batch: RolloutBatch) -> (loss, metrics)` (also for LoRA steps)."""
  def loss_fn(params, batch: RolloutBatch):
    model = nnx.merge(graphdef, params)
    c = batch.loss_mask.shape[1]
    logps, entropy = completion_logps(model, batch.tokens, batch.kv_mask, c, chunk_size,
                                      temperature, with_entropy=True)
    ref = batch.ref_logps if loss_cfg.beta != 0.0 else None
    old = batch.old_logps if use_old_logps else None
    loss, metrics = grpo_lib.grpo_loss(logps, old, ref, batch.advantages, batch.loss_mask,
                                       loss_cfg, token_weights=batch.token_weights)
    mask = batch.loss_mask.astype(jnp.float32)
    metrics['entropy'] = (entropy * mask).sum() / jnp.maximum(mask.sum(), 1.0)
    return loss, metrics
  return loss_fn


def make_train_step(graphdef, optimizer, loss_cfg: grpo_lib.GRPOLossConfig, *,
                    use_old_logps: bool, chunk_size: int = 128, temperature: float = 1.0):
  """`step(state, batch: RolloutBatch, rng) -> (state, metrics)` for one GRPO update."""
  return train_lib.loss_step(make_loss_fn(graphdef, loss_cfg, use_old_logps=use_old_logps,
                                          chunk_size=chunk_size, temperature=temperature),
                             optimizer)


def truncated_is_weights(trainer_logps: np.ndarray, rollout_logps: np.ndarray,
                         mask: np.ndarray, cap: float) -> np.ndarray:
  """min(p_trainer / p_rollout, cap) per loss token (truncated importance sampling, as
  TRL's vllm_importance_sampling_correction): corrects for the rollout engine's log-probs
  differing from the trainer's (other kernels, dtypes or a stale policy)."""
  w = np.minimum(np.exp(np.asarray(trainer_logps) - np.asarray(rollout_logps)), cap)
  return np.where(np.asarray(mask) > 0, w, 0.0).astype(np.float32)


def group_advantages(rewards: np.ndarray, num_generations: int,
                     cfg: adv_lib.AdvantageConfig) -> np.ndarray:
  return np.asarray(adv_lib.compute_advantages(jnp.asarray(rewards, jnp.float32),
                                               num_generations, cfg))
