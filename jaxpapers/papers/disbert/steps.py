"""Losses, the stage schedule, and jitted train / predict steps for DisBert.

The reference trains in three runs (README of ErxinYu/DisBert): the topic model alone
(topic_model/GSM_run.py), then the VQ model with the topic model (`--pretrain_vq 1`), then
DisBert on the task (`--pretrain_vq 0`). Here they are stages of one schedule; a `Stage`
says which parameter groups train, at what learning rate, and the weight of each loss:
  total = task * L_task + vq * (L_codebook + beta L_commit) + topic * L_align + ntm * L_ntm.
Every stage has a fresh AdamW (own warmup and linear decay); the global step carries on.
Groups: 'bert' (backbone) at `learning_rate`; every other trainable group ('head', 'proj',
'codebook', 'sem_query', 'sem_key', 'ntm') at `learning_rate * new_lr_mult`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxpapers.core import train as train_lib
from jaxpapers.papers.disbert import ntm as ntm_lib
from jaxpapers.papers.disbert import vq as vq_lib

GROUPS = ('bert', 'head', 'ntm', 'proj', 'codebook', 'sem_query', 'sem_key')
REGRESSION_LOSSES = ('bce', 'mse')


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str
  epochs: float                  # passes over the training pairs
  batch_size: int
  learning_rate: float
  train: tuple                   # parameter groups updated (others frozen)
  task: float = 0.0              # loss weights
  vq: float = 0.0
  topic: float = 0.0
  ntm: float = 0.0
  new_lr_mult: float = 1.0       # lr multiplier of the non-backbone groups
  warmup_ratio: float = 0.0
  weight_decay: float = 0.0
  max_grad_norm: float = 1.0
  backbone_grad: bool = True     # False: VQ losses do not reach the backbone
  init_codebook: bool = False    # codebook <- topic embeddings when the stage starts
  eval_every: int = 0            # dev evaluation period in steps (0: only at the end)

  @property
  def uses_encoder(self) -> bool:
    return bool(self.task or self.vq or self.topic)

  def num_steps(self, num_pairs: int) -> int:
    return max(1, int(round(self.epochs * num_pairs / self.batch_size)))


@dataclasses.dataclass(frozen=True)
class LossConfig:
  kind: str = 'regression'       # task kind: 'regression' | 'classification'
  regression_loss: str = 'bce'   # bce on the [0, 1] target (sentence-transformers CrossEncoder) | mse
  commitment: float = 0.25       # beta of the commitment loss (VQ-VAE default)
  tau: float = 1.0               # temperature of the soft code assignment (topic alignment)
  usage_decay: float = 0.99      # EMA of code usage
  dead_threshold: float = 0.03   # dead when usage < threshold / K
  reinit_every: int = 50         # steps between dead-code re-initialisations (0: never)
  kl_warmup_steps: int = 0       # NTM KL weight ramps 0 -> 1 over the first N global steps


@flax.struct.dataclass
class State:
  step: jax.Array        # [] int32 global step (carries over stages)
  params: Any            # pure-dict param tree
  opt_state: Any
  rng: jax.Array         # [2] uint32; each step folds in `step`
  usage: jax.Array       # [K] EMA share of tokens per code ([1] without VQ)


def stage_optimizer(stage: Stage, num_steps: int) -> optax.GradientTransformation:
  """AdamW per label: 'backbone' (bert), 'new' (other trained groups), 'frozen'."""
  unknown = set(stage.train) - set(GROUPS)
  if unknown:
    raise ValueError(f'stage {stage.name}: unknown groups {sorted(unknown)}; valid {GROUPS}')
  def opt(lr):
    return train_lib.make_optimizer(dict(
        learning_rate=lr, warmup_steps=int(stage.warmup_ratio * num_steps), schedule='linear',
        weight_decay=stage.weight_decay, max_grad_norm=stage.max_grad_norm), num_steps)
  def label(group):
    if group not in stage.train:
      return 'frozen'
    return 'backbone' if group == 'bert' else 'new'
  def labels(params):
    return {g: jax.tree.map(lambda _, g=g: label(g), v) for g, v in params.items()}
  return optax.multi_transform({'backbone': opt(stage.learning_rate),
                                'new': opt(stage.learning_rate * stage.new_lr_mult),
                                'frozen': optax.set_to_zero()}, labels)


# ----------------------------------------------------------------------------- losses


def task_loss(logits, label, cfg: LossConfig):
  """Mean task loss: logits [B, C], label [B] ([0, 1] target or class id)."""
  if cfg.kind == 'regression':
    z = logits[:, 0].astype(jnp.float32)
    if cfg.regression_loss == 'bce':
      return jnp.mean(optax.sigmoid_binary_cross_entropy(z, label))
    return jnp.mean((jax.nn.sigmoid(z) - label) ** 2)
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), label.astype(jnp.int32)))


def predictions(logits, kind: str):
  """Regression: sigmoid score in [0, 1] [B]; classification: class probabilities [B, C]."""
  if kind == 'regression':
    return jax.nn.sigmoid(logits[:, 0].astype(jnp.float32))
  return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


def total_loss(params, graphdef, batch, rng, stage: Stage, cfg: LossConfig, step=0):
  """(loss, aux) of one stage; terms with weight 0 are not computed at all.

  `step` (global) drives the KL warm-up, a standard remedy for posterior collapse of
  VAE topic models (KL -> 0, theta ignoring the document)."""
  model = nnx.merge(graphdef, params)
  rng_drop, rng_ntm = jax.random.split(rng)
  loss, aux, theta = 0.0, {}, None
  if stage.ntm or stage.topic:
    words = ntm_lib.dense_bow(batch['bow_ids'], batch['bow_counts'], model.cfg.bow_vocab)
    nll, kl, theta = model.ntm(words, rng_ntm)
    aux.update(ntm_nll=jnp.mean(nll), ntm_kl=jnp.mean(kl))
    kl_weight = (jnp.minimum(1.0, (step + 1) / cfg.kl_warmup_steps)
                 if cfg.kl_warmup_steps > 0 else 1.0)
    loss += stage.ntm * jnp.mean(nll + kl_weight * kl)
  if stage.uses_encoder:
    out = model.encode(batch['input_ids'], batch['token_type_ids'], batch['attention_mask'],
                       dropout_rng=rng_drop if stage.task else None,
                       backbone_grad=stage.backbone_grad)
    mask = batch['attention_mask']
    if stage.task:
      aux['task_loss'] = task_loss(out['logits'], batch['label'], cfg)
      loss += stage.task * aux['task_loss']
    if 'z_e' in out and (stage.vq or stage.topic):
      codebook, commit = vq_lib.vq_losses(out['z_e'], out['codes'], mask)
      aux.update(codebook_loss=codebook, commitment_loss=commit, z_e=out['z_e'], idx=out['idx'])
      loss += stage.vq * (codebook + cfg.commitment * commit)
      if stage.topic:
        aux['topic_align'] = vq_lib.topic_alignment(out['dist'], mask, theta, cfg.tau)
        loss += stage.topic * aux['topic_align']
  aux['loss'] = loss
  return loss, aux


def make_train_step(graphdef, optimizer, stage: Stage, cfg: LossConfig):
  """`step(state, batch, rng) -> (state, metrics)` for one stage, pure, to be jitted once."""
  def step(state: State, batch, rng):
    # run_loop passes state.rng again; reading it from the (donated) state keeps one
    # buffer from being both donated and a live input.
    del rng
    rng = jax.random.fold_in(state.rng, state.step)
    rng_loss, rng_reinit = jax.random.split(rng)
    grad_fn = jax.value_and_grad(total_loss, has_aux=True)
    (_, aux), grads = grad_fn(state.params, graphdef, batch, rng_loss, stage, cfg,
                              state.step)
    state, opt_metrics = train_lib.apply_gradients(state, grads, optimizer)
    z_e, idx = aux.pop('z_e', None), aux.pop('idx', None)
    metrics = {**aux, **opt_metrics}
    if idx is not None:
      state, vq_metrics = _codebook_upkeep(state, z_e, idx, batch['attention_mask'],
                                           rng_reinit, cfg)
      metrics.update(vq_metrics)
    return state, metrics
  return step


def _codebook_upkeep(state: State, z_e, idx, mask, rng, cfg: LossConfig):
  """Usage EMA, perplexity, and the periodic dead-code re-initialisation."""
  book = state.params['codebook']
  counts = vq_lib.code_counts(idx, mask, book.shape[0])
  usage = vq_lib.update_usage(state.usage, counts, cfg.usage_decay)
  metrics = {'code_perplexity': vq_lib.perplexity(counts), 'codes_used': jnp.sum(counts > 0)}
  if cfg.reinit_every > 0:
    due = state.step % cfg.reinit_every == 0
    new_book, new_usage, dead = vq_lib.reinit_dead(book, usage, z_e, mask, rng,
                                                   cfg.dead_threshold)
    book = jnp.where(due, new_book, book)
    usage = jnp.where(due, new_usage, usage)
    metrics['dead_codes_reset'] = jnp.where(due, dead, 0)
  params = {**state.params, 'codebook': book}
  return state.replace(params=params, usage=usage), metrics


def make_predict(graphdef, kind: str):
  """Pure `(params, batch) -> (predictions, code ids or None)`, deterministic."""
  def predict(params, batch):
    model = nnx.merge(graphdef, params)
    out = model.encode(batch['input_ids'], batch['token_type_ids'], batch['attention_mask'])
    return predictions(out['logits'], kind), out.get('idx')
  return predict
