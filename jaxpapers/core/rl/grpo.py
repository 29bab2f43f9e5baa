"""GRPO policy loss (pure): clipped surrogate, KL to a reference, TRL's loss aggregations.

Follows TRL 1.x `GRPOTrainer._compute_loss` (trl/trainer/grpo_trainer.py; read from a
verbatim copy of trl 1.9.0's method) line for line, for the clipped loss types:

  log_ratio = logps - old_logps                      (old = logps.detach() when not given)
  token level: w = log_ratio; sequence level (GSPO): w = sum(log_ratio*m)/clamp(sum(m),1)
  coef_1 = exp(w);  coef_2 = clamp(coef_1, 1 - epsilon, 1 + epsilon_high)
  if delta is not None: coef_1 = clamp(coef_1, max=delta)     # two-sided clipping (INTELLECT-2)
  per_token_loss = -min(coef_1 * A, coef_2 * A)
  KL (k3, TRL): exp(ref - logps) - (ref - logps) - 1 [* coef_1 if use_bias_correction_kl]
  per_token_loss += beta * KL                                  (only when beta != 0)
  loss_type 'grpo':    mean_b( sum_t(l*m) / clamp(sum_t m, 1) )
            'bnpo':    sum(l*m) / clamp(sum(m), 1)
            'dr_grpo': sum(l*m) / (B * max_completion_length)
            'dapo':    sum(l*m) / clamp(num_items_in_batch, 1)

`num_items_in_batch` is, as in TRL, the number of loss tokens in the whole generation batch;
it defaults to sum(m) here, so with one update per generation batch 'dapo' equals 'bnpo'.
When a trainer splits the generation batch into micro-batches it should pass the full count
and *sum* the 'dapo' micro-batch losses, but *average* the other types (TRL divides them by
the gradient-accumulation steps). TRL divides num_items_in_batch by the process count because
each process holds a slice; under jit the batch here is global, so we do not.

Where we differ (as config): `kl_estimator='k1'` adds the plain log ratio logps - ref
(TRL has only k3). The mask is the policy-token mask: pads and, in multi-turn rollouts, the
environment/tool tokens are 0 (TRL: completion_mask * tool_mask). Not ported: cispo/sapo/
luspo/vespo loss types, the entropy mask (top_entropy_quantile), the off-policy sequence mask
and vLLM importance-sampling correction.

Metrics (names as TRL logs them): kl, clip_ratio/{low_mean,high_mean,region_mean,low_min,
high_max}, plus ratio/{mean,min,max} of the importance ratio over loss tokens.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxpapers.core.registry import Registry

LOSS_AGGREGATIONS = Registry('GRPO loss_type')
KL_ESTIMATORS = Registry('KL estimator')


@dataclasses.dataclass(frozen=True)
class GRPOLossConfig:
  """GRPO loss knobs; names and defaults are TRL 1.x GRPOConfig's."""
  loss_type: str = 'dapo'                  # 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo'
  beta: float = 0.0                        # KL coefficient (beta); 0 = no reference model
  epsilon: float = 0.2                     # lower clip: ratio >= 1 - epsilon (PPO epsilon)
  epsilon_high: float | None = None        # upper clip (DAPO clip-higher); None -> epsilon
  delta: float | None = None               # cap on the unclipped ratio (two-sided clipping)
  kl_estimator: str = 'k3'                 # 'k3' (TRL, Schulman) | 'k1' (log ratio)
  use_bias_correction_kl: bool = False     # multiply the KL by the importance ratio
  importance_sampling_level: str = 'token'  # 'token' | 'sequence' (GSPO)
  max_completion_length: int | None = None  # dr_grpo denominator; None = T of the batch

  def __post_init__(self):
    LOSS_AGGREGATIONS.get(self.loss_type)
    KL_ESTIMATORS.get(self.kl_estimator)
    if self.importance_sampling_level not in ('token', 'sequence'):
      raise ValueError(f'importance_sampling_level: {self.importance_sampling_level!r}; '
                       "valid: 'token', 'sequence'")
    if self.epsilon_high is None:  # TRL: epsilon_high defaults to epsilon
      object.__setattr__(self, 'epsilon_high', self.epsilon)
    if self.epsilon < 0 or self.epsilon_high < 0:
      raise ValueError(f'epsilon/epsilon_high must be >= 0, got {self.epsilon}, '
                       f'{self.epsilon_high}')


# ----------------------------------------------------------------------------- KL estimators


@KL_ESTIMATORS.register('k3')
def kl_k3(logps: jax.Array, ref_logps: jax.Array) -> jax.Array:
  """exp(ref - logp) - (ref - logp) - 1 >= 0 (TRL's per_token_kl). [B, T] -> [B, T]."""
  d = ref_logps - logps
  return jnp.exp(d) - d - 1.0


@KL_ESTIMATORS.register('k1')
def kl_k1(logps: jax.Array, ref_logps: jax.Array) -> jax.Array:
  """logp - ref (unbiased, can be negative per token). [B, T] -> [B, T]."""
  return logps - ref_logps


# ----------------------------------------------------------------------------- aggregations


@LOSS_AGGREGATIONS.register('grpo')
def aggregate_grpo(per_token_loss, mask, cfg, num_items_in_batch=None):
  """Per-sequence token mean, then batch mean. [B, T] -> scalar."""
  del cfg, num_items_in_batch
  per_seq = jnp.sum(per_token_loss * mask, -1) / jnp.maximum(jnp.sum(mask, -1), 1.0)
  return jnp.mean(per_seq)


@LOSS_AGGREGATIONS.register('bnpo')
def aggregate_bnpo(per_token_loss, mask, cfg, num_items_in_batch=None):
  """Mean over the loss tokens of this batch. [B, T] -> scalar."""
  del cfg, num_items_in_batch
  return jnp.sum(per_token_loss * mask) / jnp.maximum(jnp.sum(mask), 1.0)


@LOSS_AGGREGATIONS.register('dr_grpo')
def aggregate_dr_grpo(per_token_loss, mask, cfg, num_items_in_batch=None):
  """Sum over tokens / (B * max_completion_length): no length normalisation. -> scalar."""
  del num_items_in_batch
  b, t = per_token_loss.shape
  length = t if cfg.max_completion_length is None else cfg.max_completion_length
  return jnp.sum(per_token_loss * mask) / (b * length)


@LOSS_AGGREGATIONS.register('dapo')
def aggregate_dapo(per_token_loss, mask, cfg, num_items_in_batch=None):
  """Token-level: sum over tokens / loss tokens in the generation batch. -> scalar."""
  del cfg
  n = jnp.sum(mask) if num_items_in_batch is None else num_items_in_batch
  return jnp.sum(per_token_loss * mask) / jnp.maximum(jnp.asarray(n, jnp.float32), 1.0)


# ----------------------------------------------------------------------------- loss


def _log_importance_weights(log_ratio, mask, level):
  """[B, T] token log ratios -> [B, T] (token) or [B, 1] (sequence, GSPO) log weights."""
  if level == 'token':
    return log_ratio
  seq = jnp.sum(log_ratio * mask, -1) / jnp.maximum(jnp.sum(mask, -1), 1.0)
  return seq[:, None]


def _masked_mean(x, mask):
  """TRL's masked_batch_mean: plain mean for [B, 1] sequence values, else token mean."""
  if x.shape[1] == 1:
    return jnp.mean(x)
  return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def _seq_means(x, mask):
  """Per-sequence mean [B]; NaN for sequences without loss tokens (TRL masked_seq_mean)."""
  if x.shape[1] == 1:
    return x[:, 0]
  n = jnp.sum(mask, -1)
  return jnp.where(n > 0, jnp.sum(x * mask, -1) / jnp.maximum(n, 1.0), jnp.nan)


def _masked_extreme(x, valid, fn, fill):
  """fn (min or max) of x over `valid` entries; 0 when there are none."""
  return jnp.where(jnp.any(valid), fn(jnp.where(valid, x, fill)), 0.0)


def _metrics(coef_1, ratio, adv, per_token_kl, mask, cfg):
  """Clip fractions as TRL logs them (on the delta-clamped coef_1), KL, importance ratio."""
  low = ((coef_1 < 1 - cfg.epsilon) & (adv < 0)).astype(jnp.float32)
  high = ((coef_1 > 1 + cfg.epsilon_high) & (adv > 0)).astype(jnp.float32)
  low_seq, high_seq = _seq_means(low, mask), _seq_means(high, mask)
  ratio = jnp.broadcast_to(ratio, mask.shape)
  metrics = {
      'clip_ratio/low_mean': _masked_mean(low, mask),
      'clip_ratio/high_mean': _masked_mean(high, mask),
      'clip_ratio/region_mean': _masked_mean(jnp.maximum(low, high), mask),
      'clip_ratio/low_min': _masked_extreme(low_seq, ~jnp.isnan(low_seq), jnp.min, jnp.inf),
      'clip_ratio/high_max': _masked_extreme(high_seq, ~jnp.isnan(high_seq), jnp.max,
                                             -jnp.inf),
      'ratio/mean': _masked_mean(ratio, mask),
      'ratio/min': _masked_extreme(ratio, mask > 0, jnp.min, jnp.inf),
      'ratio/max': _masked_extreme(ratio, mask > 0, jnp.max, -jnp.inf),
  }
  if per_token_kl is not None:
    metrics['kl'] = _masked_mean(per_token_kl, mask)
  return jax.tree.map(jax.lax.stop_gradient, metrics)


def grpo_loss(logps: jax.Array, old_logps: jax.Array | None, ref_logps: jax.Array | None,
              advantages: jax.Array, mask: jax.Array, cfg: GRPOLossConfig = GRPOLossConfig(),
              num_items_in_batch: jax.Array | int | None = None,
              token_weights: jax.Array | None = None):
  """TRL GRPO loss on per-token log-probs of sampled completions.

  Args:
    logps: [B, T] float log-probs of the sampled tokens under the current policy.
    old_logps: [B, T] log-probs under the sampling policy (num_iterations > 1), or None for
      fully on-policy updates (then stop_gradient(logps), ratio == 1).
    ref_logps: [B, T] reference-policy log-probs, or None; required when cfg.beta != 0.
    advantages: [B] per-sequence (or [B, T] per-token) advantages.
    mask: [B, T] 1 on tokens the policy produced and that count in the loss.
    cfg: GRPOLossConfig.
    num_items_in_batch: 'dapo' normaliser (loss tokens in the generation batch); None = sum(mask).
    token_weights: [B, T] constant per-token loss weights, or None; e.g. the truncated
      importance weights between the rollout engine's and the trainer's log-probs
      (TRL's vllm_importance_sampling_correction multiplies the per-token loss the same way).
  Returns:
    (loss scalar, metrics dict of scalars).
  """
  if cfg.beta != 0.0 and ref_logps is None:
    raise ValueError(f'beta={cfg.beta} needs ref_logps (the reference-policy log-probs)')
  mask = mask.astype(jnp.float32)
  old = jax.lax.stop_gradient(logps) if old_logps is None else old_logps
  adv = advantages[:, None] if advantages.ndim == 1 else advantages
  log_w = _log_importance_weights(logps - old, mask, cfg.importance_sampling_level)
  ratio = jnp.exp(log_w)
  per_token_kl = None
  if ref_logps is not None:
    per_token_kl = KL_ESTIMATORS.get(cfg.kl_estimator)(logps, ref_logps)
    if cfg.use_bias_correction_kl:
      per_token_kl = per_token_kl * ratio
  clipped = jnp.clip(ratio, 1 - cfg.epsilon, 1 + cfg.epsilon_high)
  coef_1 = ratio if cfg.delta is None else jnp.minimum(ratio, cfg.delta)
  per_token_loss = -jnp.minimum(coef_1 * adv, clipped * adv)
  if cfg.beta != 0.0:
    per_token_loss = per_token_loss + cfg.beta * per_token_kl
  per_token_loss = jnp.broadcast_to(per_token_loss, mask.shape)
  if token_weights is not None:
    per_token_loss = per_token_loss * jax.lax.stop_gradient(token_weights)
  loss = LOSS_AGGREGATIONS.get(cfg.loss_type)(per_token_loss, mask, cfg, num_items_in_batch)
  return loss, _metrics(coef_1, ratio, adv, per_token_kl, mask, cfg)
