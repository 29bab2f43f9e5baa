"""DPO of a decoder on synthetic preference pairs, with held-out preference evaluation.

Pairs come from `tasks.preference_pairs`: prompt "37+45=", chosen = the right sum,
rejected = a near miss. Held-out pairs use another seed, and any prompt also seen in
training is dropped from them, so held-out accuracy measures generalisation to new sums.

Stages: mesh -> data -> reference (SFT warm-up) -> abstract state -> shardings -> step ->
restore -> loop (held-out eval every `eval_every` steps) -> final save, plot, results.

Choices (the DPO paper, Rafailov et al. 2023 Sec. 4, starts from an SFT model and uses it as
the reference; TRL's DPOTrainer takes the initial policy as the reference):
  * reference = the initial policy; with `warmup.steps > 0` the initial policy is first
    fine-tuned on the chosen answers only (`rl/sft.py`), so the reference already ranks some
    pairs right and DPO has to improve on a competent model, not on noise. The warm-up is a
    run of its own in `<workdir>/reference` (checkpoints, metrics.jsonl); a resumed DPO run
    restores it instead of training it again.
  * reference log-probs are computed per batch by a separate jitted function of the frozen
    reference params and fed to the step in the batch (TRL `precompute_ref_log_probs`).
  * eval metrics use TRL's names (rewards/accuracies = fraction of pairs whose implicit reward
    margin beta*(s_c - s_r) is > 0, rewards/margins, rewards/chosen, rewards/rejected), plus
    logps/accuracies: the policy's own log p(chosen) > log p(rejected), which the reference
    also has (at step 0 the implicit margin is exactly 0, so rewards/accuracies starts at 0).
    On the toy task plain DPO lifts the implicit-reward metrics but leaves logps/accuracies
    near the reference's; adding the chosen NLL (`dpo.sft_weight`, TRL rpo_alpha) lifts both.
  * the held-out set is evaluated in batch_size chunks through the same jitted log-prob
    function as the reference, and the warm-up reuses the DPO state's compiled init, so a
    run compiles each distinct function once (compiles dominate a CPU run's time).
"""
from __future__ import annotations

import dataclasses
import itertools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import config as config_lib
from jaxpapers.core import data as data_lib
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core import tasks
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.rl import dpo as dpo_lib
from jaxpapers.core.rl import sft as sft_lib

EVAL_KEYS = ('rewards/accuracies', 'rewards/margins', 'rewards/chosen', 'rewards/rejected',
             'logps/accuracies', 'loss')


def _loss_config(config) -> dpo_lib.DPOLossConfig:
  try:
    return dpo_lib.DPOLossConfig(**config.dpo)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.dpo: {e}') from None


def validate(config) -> None:
  config_lib.check_positive(config, 'steps', 'batch_size', 'seq_len', 'log_every', 'eval_every',
                            'optimizer.learning_rate', 'data.train_pairs', 'data.eval_pairs',
                            'data.digits')
  _loss_config(config)
  config_lib.check_divisible(config, 'data.eval_pairs', config.batch_size,
                             'held-out pairs are evaluated in batch_size chunks')
  config_lib.require(config.warmup.steps >= 0, 'warmup.steps',
                     f'must be >= 0, got {config.warmup.steps}')
  if config.warmup.steps:
    config_lib.check_positive(config, 'warmup.optimizer.learning_rate')
  need = 3 * config.data.digits + 5   # BOS + 'a+b=' + up to digits+1 answer chars + EOS
  config_lib.require(config.seq_len >= need, 'seq_len',
                     f'{config.seq_len} < {need} tokens of the longest {config.data.digits}-digit '
                     'pair')
  config_lib.require(config.model.preset in families.presets(), 'model.preset',
                     f'{config.model.preset!r} unknown; valid: {sorted(families.presets())}')
  vocab, need = families.config_for(config.model).vocab_size, len(tasks.CharTokenizer())
  config_lib.require(vocab >= need, 'model.overrides',
                     f'vocab_size {vocab} < {need} tokens of tasks.CharTokenizer')
  try:
    mesh_lib.mesh_shape(config.mesh)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.{e}') from None


# ----------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class EncodePair:
  """Pair record -> `dpo.PAIR_FIELDS` (or, with `sides=('chosen',)`, an SFT example)."""
  tokenizer: tasks.CharTokenizer
  seq_len: int
  sides: tuple[str, ...] = ('chosen', 'rejected')

  def __call__(self, record) -> dict[str, np.ndarray]:
    out = {}
    for side in self.sides:
      ex = tasks.encode_prompt_completion(self.tokenizer, record['prompt'], record[side],
                                          self.seq_len)
      out.update(ex if len(self.sides) == 1 else {f'{side}_{k}': v for k, v in ex.items()})
    return out


def split_pairs(data_cfg, seed: int) -> tuple[list[dict], list[dict]]:
  """(train pairs, held-out pairs whose prompts never occur in training)."""
  train = tasks.preference_pairs(data_cfg.train_pairs, seed, data_cfg.digits)
  seen = {p['prompt'] for p in train}
  pool = tasks.preference_pairs(4 * data_cfg.eval_pairs, seed + 10_000, data_cfg.digits)
  heldout = [p for p in pool if p['prompt'] not in seen][:data_cfg.eval_pairs]
  if len(heldout) < data_cfg.eval_pairs:
    raise config_lib.ConfigError(
        f'config.data.eval_pairs: only {len(heldout)} unseen prompts left for held-out pairs '
        f'with {data_cfg.train_pairs} train pairs of {data_cfg.digits} digits')
  return train, heldout


def chunked(records: list, size: int) -> list[list]:
  return [records[i:i + size] for i in range(0, len(records), size)]


def stacked(records, transform) -> dict[str, np.ndarray]:
  rows = [transform(r) for r in records]
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


# ----------------------------------------------------------------------------- stages


@dataclasses.dataclass(frozen=True)
class StateSpec:
  """What a runner needs to build, restore and step one decoder train state."""
  graphdef: object
  optimizer: object
  init: object          # () -> TrainState, compiled with out_shardings
  abstract: object      # TrainState of ShapeDtypeStructs with shardings
  shardings: object


def state_spec(make_model, mesh, opt_cfg, steps: int, seed: int) -> StateSpec:
  graphdef, abstract_params, _ = hf.abstract_params(make_model)
  optimizer = train_lib.make_optimizer(opt_cfg, steps)
  params_fn = lambda: nnx.to_pure_dict(nnx.state(make_model(), nnx.Param))  # noqa: E731
  init, abstract, shardings = train_lib.sharded_state(
      params_fn, mesh_lib.param_shardings(abstract_params, mesh), optimizer, seed, mesh)
  return StateSpec(graphdef, optimizer, init, abstract, shardings)


def warmup_reference(config, workdir: pathlib.Path, spec: StateSpec, mesh, train_pairs):
  """SFT on the chosen answers, run (or restored) in `workdir`; returns the final params.

  Reuses the DPO state's compiled init and shardings: the warm-up optimizer must have the
  same state structure (both AdamW, both with or both without clipping).
  """
  wcfg = config.warmup
  optimizer = train_lib.make_optimizer(wcfg.optimizer, wcfg.steps)
  opt_shapes = jax.eval_shape(optimizer.init, spec.abstract.params)
  config_lib.require(jax.tree.structure(opt_shapes) == jax.tree.structure(spec.abstract.opt_state),
                     'warmup.optimizer', 'its state differs from config.optimizer\'s (set '
                     'max_grad_norm in both or in neither)')
  transform = EncodePair(tasks.CharTokenizer(), config.seq_len, sides=('chosen',))
  data_iter = iter(data_lib.batched_pipeline(train_pairs, transform, config.batch_size,
                                             config.seed))
  ckpt = ckpt_lib.Checkpointer(workdir / 'checkpoints', every=0, keep=1,
                               async_save=config.checkpoint.async_save)
  state, start = train_lib.restore_or_init(ckpt, spec.abstract, spec.init, data_iter)
  step_fn = train_lib.compile_step(
      sft_lib.make_train_step(spec.graphdef, optimizer, config.logits_chunk),
      spec.shardings, mesh, {'tokens': 2, 'loss_mask': 2, 'attention_mask': 2})
  writer = metrics_lib.MetricWriter(workdir)
  writer.truncate_after(start)
  sharding = mesh_lib.batch_sharding(mesh)
  state = train_lib.run_loop(step_fn, state, (data_lib.to_global(b, sharding) for b in data_iter),
                             start_step=start, total_steps=wcfg.steps,
                             log_every=config.log_every, checkpointer=ckpt, writer=writer,
                             data_iter=data_iter, desc='sft warm-up')
  ckpt.close()
  return state.params


def reference(config, workdir: pathlib.Path, spec: StateSpec, mesh, train_pairs):
  """(frozen reference params, `fresh()` -> initial DPO TrainState with equal params)."""
  if not config.warmup.steps:
    return spec.init().params, spec.init   # two allocations: the policy's gets donated
  ref_params = warmup_reference(config, workdir / 'reference', spec, mesh, train_pairs)

  def fresh():   # own buffers (the step donates the state); fresh DPO optimizer state
    return spec.init().replace(params=jax.device_put(ref_params, spec.shardings.params,
                                                     may_alias=False))
  return ref_params, fresh


def heldout_metrics(policy: list[dict], chunks: list[dict], cfg: dpo_lib.DPOLossConfig):
  """DPO metrics over all held-out chunks.

  Args:
    policy: per chunk, the policy's pair log-probs (`make_reference_logps_fn` outputs, [b]).
    chunks: per chunk, the batch with `PAIR_FIELDS` and the reference's `REF_FIELDS`.
  Returns:
    dict of scalars: loss, TRL's rewards/* and logps/*, nll, logps/accuracies.
  """
  def cat(rows, key, fn=lambda x: x):
    return jnp.concatenate([fn(row[key]) for row in rows])
  length = lambda m: m[:, 1:].sum(-1).astype(jnp.float32)  # noqa: E731
  c, r = cat(policy, 'ref_chosen_logps'), cat(policy, 'ref_rejected_logps')
  loss, metrics = dpo_lib.dpo_loss(
      c, r, cat(chunks, 'ref_chosen_logps'), cat(chunks, 'ref_rejected_logps'), cfg,
      chosen_lengths=cat(chunks, 'chosen_loss_mask', length),
      rejected_lengths=cat(chunks, 'rejected_loss_mask', length))
  return {'loss': loss, **metrics, 'logps/accuracies': jnp.mean((c > r).astype(jnp.float32))}


def evaluator(logps_fn, loss_cfg, chunks: list[dict], writer):
  """`evaluate(step, params) -> row`: held-out metrics written as `eval/<name>`.

  The held-out set is cut into train-batch-sized chunks so the policy's log-probs reuse the
  compiled reference function (no extra compile for the eval shape).
  """
  metrics_fn = jax.jit(lambda policy, chunks: heldout_metrics(policy, chunks, loss_cfg))

  def evaluate(step: int, params) -> dict:
    policy = [logps_fn(params, {k: b[k] for k in dpo_lib.PAIR_FIELDS}) for b in chunks]
    metrics = jax.device_get(metrics_fn(policy, chunks))
    return writer.write(step, {f'eval/{k}': metrics[k] for k in EVAL_KEYS})
  return evaluate


def with_eval(step_fn, evaluate, every: int, total: int, start: int):
  """`step_fn` that also runs `evaluate` after each step due by `is_due(step, every, total)`."""
  steps = itertools.count(start + 1)

  def step(state, batch, rng):
    state, metrics = step_fn(state, batch, rng)
    n = next(steps)
    if metrics_lib.is_due(n, every, total):
      evaluate(n, state.params)
    return state, metrics
  return step


def _eval_summary(row: dict) -> dict:
  return {'step': row['step'], **{k: row[f'eval/{k}'] for k in EVAL_KEYS}}


@registry.experiment('dpo')
def run(config, workdir: str) -> dict:
  validate(config)
  loss_cfg = _loss_config(config)
  workdir = pathlib.Path(workdir)
  t_start = time.time()

  # --- mesh
  mesh = mesh_lib.make_batch_mesh(config)
  batch_sharding = mesh_lib.batch_sharding(mesh)

  # --- data: train pairs (shuffled, repeated), held-out pairs (batch_size chunks)
  train_pairs, heldout_pairs = split_pairs(config.data, config.seed)
  transform = EncodePair(tasks.CharTokenizer(), config.seq_len)
  data_iter = iter(data_lib.batched_pipeline(train_pairs, transform, config.batch_size,
                                             config.seed))

  # --- abstract state, shardings; reference = initial policy (after the SFT warm-up)
  mcfg = families.config_for(config.model)
  make_model = lambda: layers.Decoder(mcfg, nnx.Rngs(params=config.seed))  # noqa: E731
  spec = state_spec(make_model, mesh, config.optimizer, config.steps, config.seed)
  ref_params, fresh = reference(config, workdir, spec, mesh, train_pairs)
  logps_fn = jax.jit(dpo_lib.make_reference_logps_fn(spec.graphdef, config.logits_chunk))
  add_ref = lambda b: {**b, **logps_fn(ref_params, b)}  # noqa: E731
  heldout = [add_ref(data_lib.to_global(stacked(chunk, transform), batch_sharding))
             for chunk in chunked(heldout_pairs, config.batch_size)]

  # --- restore: own checkpoint > resume_from > reference params
  ckpt = ckpt_lib.Checkpointer(workdir / 'checkpoints', config.checkpoint.every,
                               config.checkpoint.keep, config.checkpoint.async_save)
  state, start = train_lib.restore_or_init(ckpt, spec.abstract, fresh, data_iter,
                                           config.resume_from or None)
  print(f'model {mcfg.family}: {mcfg.num_params / 1e6:.2f}M params; {len(train_pairs)} train / '
        f'{len(heldout_pairs)} held-out pairs; DPO from step {start}', flush=True)

  # --- step: policy over [chosen; rejected], reference log-probs in the batch
  fields = {**{k: 2 for k in dpo_lib.PAIR_FIELDS}, **{k: 1 for k in dpo_lib.REF_FIELDS}}
  step_fn = train_lib.compile_step(
      dpo_lib.make_train_step(spec.graphdef, spec.optimizer, loss_cfg, config.logits_chunk),
      spec.shardings, mesh, fields)

  # --- loop, with held-out eval before the first step and every eval_every steps
  writer = metrics_lib.MetricWriter(workdir)
  writer.truncate_after(start)
  evaluate = evaluator(logps_fn, loss_cfg, heldout, writer)
  if start == 0:
    evaluate(0, state.params)
  batches = (add_ref(data_lib.to_global(b, batch_sharding)) for b in data_iter)
  state = train_lib.run_loop(with_eval(step_fn, evaluate, config.eval_every, config.steps, start),
                             state, batches, start_step=start, total_steps=config.steps,
                             log_every=config.log_every, checkpointer=ckpt, writer=writer,
                             data_iter=data_iter, desc='dpo')

  # --- final save, plot, results
  ckpt.save(config.steps, state, data_iter, force=True)
  ckpt.close()
  return _finish(config, workdir, mcfg, time.time() - t_start)


def _finish(config, workdir: pathlib.Path, mcfg, wall_s: float) -> dict:
  rows = metrics_lib.read_metrics(workdir)
  evals = [r for r in rows if 'eval/rewards/accuracies' in r]
  metrics_lib.plot_curves(rows, ['loss'] + [f'eval/{k}' for k in EVAL_KEYS[:5]],
                          workdir / 'dpo.png',
                          title=f'DPO ({config.dpo.loss_type}, beta={config.dpo.beta}) '
                                f'{mcfg.family}: train loss, eval/* on held-out pairs')
  first, last = _eval_summary(evals[0]), _eval_summary(evals[-1])
  results = {'first_eval': first, 'last_eval': last, 'steps': config.steps,
             'warmup_steps': config.warmup.steps, 'heldout_pairs': config.data.eval_pairs,
             'wall_s': round(wall_s, 1)}
  metrics_lib.write_json(workdir / 'results.json', results)
  print(f'done in {results["wall_s"]} s: held-out preference accuracy '
        f'{first["rewards/accuracies"]:.3f} -> {last["rewards/accuracies"]:.3f}, margin '
        f'{first["rewards/margins"]:.3f} -> {last["rewards/margins"]:.3f}, policy ranks chosen '
        f'first {first["logps/accuracies"]:.3f} -> {last["logps/accuracies"]:.3f}; outputs in '
        f'{workdir}', flush=True)
  return results
