"""DPO-family preference losses (pure), on summed completion log-probs of pairs.

Follows TRL 1.x `DPOTrainer._compute_loss` (trl/trainer/dpo_trainer.py) with the default
f-divergence (reverse KL), where the per-pair score is the log ratio to the reference:
  s_c = logp(chosen) - ref_logp(chosen),  s_r = logp(rejected) - ref_logp(rejected), d = s_c - s_r
  'sigmoid':      -(1-ls)*logsigmoid(beta*d) - ls*logsigmoid(-beta*d)
                  (ls = label_smoothing: TRL 0.x's conservative DPO; TRL 1.x dropped ls from
                  'sigmoid', and at ls=0, its default, both are -logsigmoid(beta*d))
  'hinge':        relu(1 - beta*d)                                           (SLiC)
  'ipo':          (s_c/|y_c| - s_r/|y_r| - 1/(2*beta))**2   (TRL length-normalises IPO)
  'robust':       (-(1-ls)*logsigmoid(beta*d) + ls*logsigmoid(-beta*d)) / (1 - 2*ls)
  'sigmoid_norm': -logsigmoid(beta*(s_c/|y_c| - s_r/|y_r|))   (TRL >= 1.7, Tulu-3 style)
  'simpo':        -(1-ls)*logsigmoid(z) - ls*logsigmoid(-z), z = beta*(avg logp_c - avg logp_r)
                  - gamma, no reference (SimPO, Meng et al. 2024, Eq. 6; TRL CPOTrainer
                  loss_type='simpo' with gamma_beta_ratio = gamma / beta)
  loss = mean over pairs + sft_weight * NLL, NLL = -sum(logp_c) / sum(|y_c|): the token-mean
  cross-entropy on chosen completions (TRL 0.x `rpo_alpha`; TRL 1.x loss_type ['sigmoid','sft']
  with loss_weights [1, sft_weight]).

Metrics use TRL's names: rewards/chosen = mean(beta*s_c), rewards/rejected, rewards/margins
= mean(beta*(s_c - s_r)), rewards/accuracies = mean(beta*s_c > beta*s_r), logps/chosen,
logps/rejected, plus nll (the SFT term, logged whether or not it is weighted in).
Reference log-probs are computed once per batch by the caller and passed in.

Train step (`make_train_step`): one forward of the policy over [chosen; rejected] stacked on
the batch axis (TRL `concatenated_forward`); the reference log-probs arrive in the batch,
computed beforehand by `make_reference_logps_fn` from frozen params (TRL
`precompute_ref_log_probs`, done here per batch instead of once over the dataset).
"""
from __future__ import annotations

import dataclasses

from typing import Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpapers.core import logprobs
from jaxpapers.core import train as train_lib
from jaxpapers.core.registry import Registry

DPO_LOSSES = Registry('DPO loss_type')
_NEEDS_LENGTHS = ('ipo', 'sigmoid_norm', 'simpo')


@dataclasses.dataclass(frozen=True)
class DPOLossConfig:
  """DPO knobs; names and defaults follow TRL DPOConfig."""
  loss_type: str = 'sigmoid'     # key into DPO_LOSSES
  beta: float = 0.1              # beta of the DPO paper (temperature of the implicit reward)
  label_smoothing: float = 0.0   # probability that a preference label is flipped (cDPO)
  sft_weight: float = 0.0        # weight of the chosen-token NLL (TRL rpo_alpha)
  simpo_gamma: float = 0.5       # SimPO target margin gamma (only for 'simpo')

  def __post_init__(self):
    DPO_LOSSES.get(self.loss_type)
    if self.beta <= 0:
      raise ValueError(f'beta must be > 0, got {self.beta}')
    if not 0.0 <= self.label_smoothing < 0.5:
      raise ValueError(f'label_smoothing must be in [0, 0.5), got {self.label_smoothing}')


@dataclasses.dataclass(frozen=True)
class _Pair:
  """Per-pair inputs of a loss: scores (log ratios) and length-averaged variants, all [B]."""
  chosen: jax.Array
  rejected: jax.Array
  chosen_avg: jax.Array | None
  rejected_avg: jax.Array | None
  chosen_logps_avg: jax.Array | None
  rejected_logps_avg: jax.Array | None


def _smoothed_sigmoid(z, ls):
  return -(1.0 - ls) * jax.nn.log_sigmoid(z) - ls * jax.nn.log_sigmoid(-z)


@DPO_LOSSES.register('sigmoid')
def sigmoid_loss(p: _Pair, cfg: DPOLossConfig) -> jax.Array:
  return _smoothed_sigmoid(cfg.beta * (p.chosen - p.rejected), cfg.label_smoothing)


@DPO_LOSSES.register('hinge')
def hinge_loss(p: _Pair, cfg: DPOLossConfig) -> jax.Array:
  return jax.nn.relu(1.0 - cfg.beta * (p.chosen - p.rejected))


@DPO_LOSSES.register('ipo')
def ipo_loss(p: _Pair, cfg: DPOLossConfig) -> jax.Array:
  return (p.chosen_avg - p.rejected_avg - 1.0 / (2.0 * cfg.beta)) ** 2


@DPO_LOSSES.register('robust')
def robust_loss(p: _Pair, cfg: DPOLossConfig) -> jax.Array:
  z, ls = cfg.beta * (p.chosen - p.rejected), cfg.label_smoothing
  clean = -(1.0 - ls) * jax.nn.log_sigmoid(z)
  flipped = -ls * jax.nn.log_sigmoid(-z)
  return (clean - flipped) / (1.0 - 2.0 * ls)


@DPO_LOSSES.register('sigmoid_norm')
def sigmoid_norm_loss(p: _Pair, cfg: DPOLossConfig) -> jax.Array:
  return -jax.nn.log_sigmoid(cfg.beta * (p.chosen_avg - p.rejected_avg))


@DPO_LOSSES.register('simpo')
def simpo_loss(p: _Pair, cfg: DPOLossConfig) -> jax.Array:
  z = cfg.beta * (p.chosen_logps_avg - p.rejected_logps_avg) - cfg.simpo_gamma
  return _smoothed_sigmoid(z, cfg.label_smoothing)


def sequence_logps(per_token_logps: jax.Array, mask: jax.Array):
  """Sum of completion-token log-probs and completion lengths.

  Args:
    per_token_logps: [B, T] log-probs of the target tokens.
    mask: [B, T] 1 on completion tokens.
  Returns:
    (logps [B] float32, lengths [B] float32).
  """
  mask = mask.astype(jnp.float32)
  return jnp.sum(per_token_logps.astype(jnp.float32) * mask, -1), jnp.sum(mask, -1)


def _make_pair(chosen_logps, rejected_logps, ref_chosen, ref_rejected, len_c, len_r):
  s_c, s_r = chosen_logps - ref_chosen, rejected_logps - ref_rejected
  if len_c is None:
    return _Pair(s_c, s_r, None, None, None, None)
  n_c, n_r = jnp.maximum(len_c, 1.0), jnp.maximum(len_r, 1.0)
  return _Pair(s_c, s_r, s_c / n_c, s_r / n_r, chosen_logps / n_c, rejected_logps / n_r)


def dpo_loss(chosen_logps: jax.Array, rejected_logps: jax.Array,
             ref_chosen_logps: jax.Array | None, ref_rejected_logps: jax.Array | None,
             cfg: DPOLossConfig = DPOLossConfig(), *, chosen_lengths: jax.Array | None = None,
             rejected_lengths: jax.Array | None = None):
  """Preference loss of a batch of pairs.

  Args:
    chosen_logps: [B] summed completion log-probs of the chosen answers (policy).
    rejected_logps: [B] same for the rejected answers.
    ref_chosen_logps, ref_rejected_logps: [B] under the frozen reference; None means 0
      (reference-free, e.g. 'simpo').
    cfg: DPOLossConfig.
    chosen_lengths, rejected_lengths: [B] completion token counts; needed by 'ipo',
      'sigmoid_norm', 'simpo' and a non-zero sft_weight.
  Returns:
    (loss scalar, metrics dict of scalars).
  """
  needs = cfg.loss_type in _NEEDS_LENGTHS or cfg.sft_weight != 0.0
  if needs and (chosen_lengths is None or rejected_lengths is None):
    raise ValueError(f'loss_type={cfg.loss_type!r} / sft_weight={cfg.sft_weight} needs '
                     'chosen_lengths and rejected_lengths')
  ref_c = jnp.zeros_like(chosen_logps) if ref_chosen_logps is None else ref_chosen_logps
  ref_r = jnp.zeros_like(rejected_logps) if ref_rejected_logps is None else ref_rejected_logps
  pair = _make_pair(chosen_logps, rejected_logps, ref_c, ref_r, chosen_lengths,
                    rejected_lengths)
  loss = jnp.mean(DPO_LOSSES.get(cfg.loss_type)(pair, cfg))
  nll = jnp.float32(0.0)
  if chosen_lengths is not None:
    nll = -jnp.sum(chosen_logps) / jnp.maximum(jnp.sum(chosen_lengths), 1.0)
  if cfg.sft_weight != 0.0:
    loss = loss + cfg.sft_weight * nll
  chosen_r = jax.lax.stop_gradient(cfg.beta * pair.chosen)
  rejected_r = jax.lax.stop_gradient(cfg.beta * pair.rejected)
  metrics = {
      'rewards/chosen': jnp.mean(chosen_r),
      'rewards/rejected': jnp.mean(rejected_r),
      'rewards/margins': jnp.mean(chosen_r - rejected_r),
      'rewards/accuracies': jnp.mean((chosen_r > rejected_r).astype(jnp.float32)),
      'logps/chosen': jnp.mean(chosen_logps),
      'logps/rejected': jnp.mean(rejected_logps),
      'nll': nll,
  }
  return loss, jax.tree.map(jax.lax.stop_gradient, metrics)


# ----------------------------------------------------------------------------- train step

# Batch fields of a DPO step, each [B, T] (right-padded prompt+answer as
# `tasks.encode_prompt_completion` writes it), plus the reference log-probs [B].
PAIR_FIELDS = tuple(f'{side}_{name}' for side in ('chosen', 'rejected')
                    for name in ('tokens', 'loss_mask', 'attention_mask'))
REF_FIELDS = ('ref_chosen_logps', 'ref_rejected_logps')


def pair_logps(params, graphdef, batch: Mapping[str, jax.Array], logits_chunk: int = 128):
  """Summed completion log-probs of both answers of each pair, one forward over both.

  Args:
    params: pure-dict params of a `layers.Decoder`.
    batch: the `PAIR_FIELDS`, each [B, T].
  Returns:
    (chosen_logps, rejected_logps, chosen_lengths, rejected_lengths), each [B] float32.
  """
  model = nnx.merge(graphdef, params)
  both = lambda name: jnp.concatenate([batch[f'chosen_{name}'],  # noqa: E731
                                       batch[f'rejected_{name}']])
  per_token = logprobs.decoder_next_token_logprobs(
      model, both('tokens'), kv_mask=both('attention_mask'), chunk_size=logits_chunk)
  logps, lengths = sequence_logps(per_token, both('loss_mask')[:, 1:])
  b = batch['chosen_tokens'].shape[0]
  return logps[:b], logps[b:], lengths[:b], lengths[b:]


def make_reference_logps_fn(graphdef, logits_chunk: int = 128):
  """`fn(ref_params, batch) -> {'ref_chosen_logps': [B], 'ref_rejected_logps': [B]}`.

  Jit it once and call it on each batch before the step (TRL `precompute_ref_log_probs`);
  the reference params are frozen and never differentiated.
  """
  def fn(ref_params, batch):
    c, r, _, _ = pair_logps(jax.lax.stop_gradient(ref_params), graphdef, batch, logits_chunk)
    return dict(zip(REF_FIELDS, (c, r)))
  return fn


def batch_loss(params, graphdef, batch: Mapping[str, jax.Array],
               cfg: DPOLossConfig = DPOLossConfig(), logits_chunk: int = 128):
  """`dpo_loss` of the policy on a batch; reference log-probs from `REF_FIELDS` (absent = 0)."""
  c, r, len_c, len_r = pair_logps(params, graphdef, batch, logits_chunk)
  loss, metrics = dpo_loss(c, r, batch.get('ref_chosen_logps'), batch.get('ref_rejected_logps'),
                           cfg, chosen_lengths=len_c, rejected_lengths=len_r)
  # Whether the policy itself ranks the chosen answer above the rejected one (no reference).
  metrics['logps/accuracies'] = jnp.mean((c > r).astype(jnp.float32))
  return loss, {'loss': loss, **metrics}


def make_train_step(graphdef, optimizer, loss_cfg: DPOLossConfig = DPOLossConfig(),
                    logits_chunk: int = 128):
  """`step(state, batch, rng) -> (state, metrics)` for DPO-family losses.

  `batch` holds `PAIR_FIELDS` and (unless the loss is reference-free) `REF_FIELDS`;
  metrics are TRL's names (rewards/*, logps/*), loss, nll and grad_norm.
  """
  return train_lib.loss_step(
      lambda params, batch: batch_loss(params, graphdef, batch, loss_cfg, logits_chunk),
      optimizer)
