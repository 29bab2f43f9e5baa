"""Trainer stages shared by every experiment: optimizer, sharded state, jitted step, loop.

A runner reads top to bottom: mesh -> data -> abstract state -> shardings -> step ->
restore -> loop -> final save. Each stage here is a plain function; papers compose them
instead of copying a trainer. Steps are `step(state, batch, rng) -> (state, metrics)`,
jitted once with explicit shardings and the state donated; the rng is folded with the step.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import mesh as mesh_lib


class NonFiniteError(RuntimeError):
  """Loss or gradient norm became NaN/inf; the run stops before any further save."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array        # [] int32, optimizer steps taken
  params: Any            # pure-dict param tree
  opt_state: Any
  rng: jax.Array         # [2] uint32 base key; each step folds in `step`


def make_optimizer(cfg: Mapping[str, Any], total_steps: int) -> optax.GradientTransformation:
  """Global-norm clipping + AdamW with warmup and linear | cosine | constant decay."""
  lr, warmup = cfg['learning_rate'], cfg.get('warmup_steps', 0)
  decay_steps = max(total_steps - warmup, 1)
  kind = cfg.get('schedule', 'linear')
  if kind == 'linear':
    decay = optax.linear_schedule(lr, 0.0, decay_steps)
  elif kind == 'cosine':
    decay = optax.cosine_decay_schedule(lr, decay_steps)
  elif kind == 'constant':
    decay = optax.constant_schedule(lr)
  else:
    raise ValueError(f'optimizer.schedule: {kind!r} not in linear, cosine, constant')
  schedule = (optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay], [warmup])
              if warmup else decay)
  chain = []
  if cfg.get('max_grad_norm'):
    chain.append(optax.clip_by_global_norm(cfg['max_grad_norm']))
  chain.append(optax.adamw(schedule, b1=cfg.get('b1', 0.9), b2=cfg.get('b2', 0.999),
                           eps=cfg.get('eps', 1e-8), weight_decay=cfg.get('weight_decay', 0.0)))
  return optax.chain(*chain)


def state_from_params(params, optimizer, seed: int) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params), rng=jax.random.PRNGKey(seed))


def sharded_state(params_fn: Callable[[], Any], param_shardings, optimizer, seed: int,
                  mesh) -> tuple[Callable[[], TrainState], Any, Any]:
  """Shapes first: (init fn, abstract state with shardings, state shardings).

  The optimizer state follows the params' shardings by propagation; step and rng are
  replicated. Nothing is allocated until the returned init fn is called.
  """
  def init():
    params = jax.lax.with_sharding_constraint(params_fn(), param_shardings)
    return state_from_params(params, optimizer, seed)
  compiled = jax.jit(init).lower().compile()
  shardings = compiled.output_shardings
  abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                          jax.eval_shape(init), shardings)
  return compiled, abstract, shardings


def init_from_params(params, optimizer, seed: int, shardings) -> TrainState:
  """Train state around already-loaded params (e.g. HF weights)."""
  return jax.jit(lambda p: state_from_params(p, optimizer, seed), out_shardings=shardings)(
      params)


def compile_step(step_fn, state_shardings, mesh, batch_ndims: Mapping[str, int] | None = None):
  """jit(step) with state donated; batch leaves sharded on the batch axes."""
  replicated = mesh_lib.replicated(mesh)
  batch_shardings = None if batch_ndims is None else {
      k: mesh_lib.batch_sharding(mesh, n) for k, n in batch_ndims.items()}
  return jax.jit(step_fn, in_shardings=(state_shardings, batch_shardings, replicated),
                 out_shardings=(state_shardings, replicated), donate_argnums=(0,))


def apply_gradients(state: TrainState, grads, optimizer) -> tuple[TrainState, dict]:
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return (state.replace(step=state.step + 1, params=params, opt_state=opt_state),
          {'grad_norm': optax.global_norm(grads)})


def loss_step(loss_fn: Callable, optimizer) -> Callable:
  """`step(state, batch, rng) -> (state, metrics)` from `loss_fn(params, batch) -> (loss,
  metrics)`: one gradient step on the full params (lora.make_train_step is the adapter one)."""
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def step(state: TrainState, batch, rng) -> tuple[Any, dict]:
    del rng   # deterministic objectives
    (loss, metrics), grads = grad_fn(state.params, batch)
    state, opt_metrics = apply_gradients(state, grads, optimizer)
    return state, {**metrics, 'loss': loss, **opt_metrics}
  return step


def restore_or_init(checkpointer: ckpt_lib.Checkpointer, abstract, init: Callable[[], Any],
                    data_iter=None, resume_from: str | None = None):
  """Own latest checkpoint > explicit resume path > `init()` (HF params or scratch)."""
  restored = checkpointer.restore_latest(abstract, data_iter)
  if restored is not None:
    print(f'resumed from step {restored.step} ({checkpointer.directory})', flush=True)
    return restored.state, restored.step
  if resume_from:
    other = ckpt_lib.Checkpointer(resume_from, every=0)
    restored = other.restore_latest(abstract, data_iter)
    if restored is None:
      raise FileNotFoundError(f'resume_from: no readable checkpoint in {resume_from}')
    print(f'resumed from step {restored.step} of {resume_from}', flush=True)
    return restored.state, restored.step
  return init(), 0


class _Pending:
  """Device-side metrics since the last host fetch (fetched only on due steps)."""

  def __init__(self):
    self.rows: list[tuple[int, dict]] = []

  def add(self, step, metrics):
    self.rows.append((step, metrics))

  def flush(self) -> tuple[list[int], dict[str, np.ndarray]]:
    steps = [s for s, _ in self.rows]
    host = jax.device_get([m for _, m in self.rows])
    self.rows = []
    keys = host[0].keys() if host else []
    return steps, {k: np.array([np.asarray(h[k]) for h in host]) for k in keys}


def check_finite(steps: list[int], values: Mapping[str, np.ndarray],
                 keys=('loss', 'grad_norm')) -> None:
  for key in keys:
    if key in values and not np.all(np.isfinite(values[key])):
      bad = steps[int(np.argmin(np.isfinite(values[key])))]
      raise NonFiniteError(f'{key} is not finite at step {bad} (window steps {steps[0]}-'
                           f'{steps[-1]}); stopped before saving, last good checkpoint kept')


def run_loop(step_fn, state, batches: Iterator[Mapping[str, Any]], *, start_step: int,
             total_steps: int, log_every: int, checkpointer: ckpt_lib.Checkpointer | None,
             writer: metrics_lib.MetricWriter, data_iter=None, tokens_key: str | None = None,
             desc: str = 'train') -> TrainState:
  """Runs steps start_step+1..total_steps; logs means over each window; saves when due.

  Losses are checked for finiteness on every log and every save step, before the save,
  so a NaN never reaches a checkpoint.
  """
  pending, t0, tokens = _Pending(), time.time(), 0
  bar = metrics_lib.progress(total_steps, initial=start_step, desc=desc)
  for step in range(start_step + 1, total_steps + 1):
    batch = next(batches)
    state, metrics = step_fn(state, batch, state.rng)
    pending.add(step, metrics)
    if tokens_key is not None:
      tokens += int(np.prod(batch[tokens_key].shape))
    bar.update(1)
    save_due = checkpointer is not None and metrics_lib.is_due(step, checkpointer.every,
                                                               total_steps)
    if metrics_lib.is_due(step, log_every, total_steps) or save_due:
      steps, values = pending.flush()
      check_finite(steps, values)
      elapsed = time.time() - t0
      row = {k: float(np.mean(v)) for k, v in values.items()}
      row['steps_per_s'] = len(steps) / max(elapsed, 1e-9)
      if tokens_key is not None:
        row['tokens_per_s'] = tokens / max(elapsed, 1e-9)
      writer.write(step, row)
      bar.set_postfix(loss=f"{row.get('loss', float('nan')):.4f}")
      t0, tokens = time.time(), 0
    if save_due:
      checkpointer.save(step, state, data_iter, force=True)
  bar.close()
  return state


def cross_entropy_stats(logps, mask) -> dict:
  """Token-mean NLL and perplexity of target logprobs under a mask (both [B, T])."""
  n = jnp.maximum(mask.sum(), 1.0)
  nll = -(logps * mask).sum() / n
  return {'loss': nll, 'perplexity': jnp.exp(jnp.minimum(nll, 50.0)), 'target_tokens': mask.sum()}

