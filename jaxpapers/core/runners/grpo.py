"""GRPO: sample G completions per prompt, score them, update with the clipped surrogate.

Stages: mesh -> prompts -> abstract state -> shardings -> (optional SFT warm-up) -> restore
-> loop of (rollout -> rewards -> advantages -> num_iterations updates) -> final save.
Tasks (`config.task.name`): 'addition' (synthetic, char tokenizer, learns from scratch on a
CPU) and 'gsm8k' (Qwen chat template, math-verify reward; the real recipe for an HF Qwen
checkpoint). Checkpoints are kept every `checkpoint.every` steps so RELEX can read the
trajectory. Prompt order is a pure function of (seed, step), so a resumed run samples the
same prompts.
"""
from __future__ import annotations

import pathlib
import time

import jax
import numpy as np
from flax import nnx

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import config as config_lib
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core import sampler as sampler_lib
from jaxpapers.core import tasks as tasks_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.rl import advantages as adv_lib
from jaxpapers.core.rl import grpo as grpo_lib
from jaxpapers.core.rl import grpo_learner
from jaxpapers.core.rl import sft as sft_lib

TASKS = registry.Registry('GRPO task')
TASKS.register('addition')(lambda c, n, seed: tasks_lib.addition_prompts(
    n, seed, c.digits, c.sft_seq_len, c.sft_noise))
TASKS.register('gsm8k')(lambda c, n, seed: tasks_lib.gsm8k_prompts(
    n, seed, c.split, c.system or None, c.suffix))


def loss_config(config) -> grpo_lib.GRPOLossConfig:
  g = config.grpo
  return grpo_lib.GRPOLossConfig(
      loss_type=g.loss_type, beta=g.beta, epsilon=g.epsilon,
      epsilon_high=g.epsilon_high if g.epsilon_high > 0 else None, kl_estimator=g.kl_estimator,
      max_completion_length=config.max_new_tokens)


def validate(config) -> None:
  config_lib.check_positive(config, 'steps', 'prompts_per_step', 'grpo.num_generations',
                            'max_new_tokens', 'grpo.num_iterations')
  config_lib.check_choice(config, 'task.name', TASKS.names())
  for field, make in (('grpo', lambda: loss_config(config)),
                      ('advantages', lambda: adv_lib.AdvantageConfig(**config.advantages))):
    try:
      make()
    except ValueError as e:
      raise config_lib.ConfigError(f'config.{field}: {e}') from None


def _warm_up(params, graphdef, prompts, config, writer):
  """SFT steps on the task's gold answers before GRPO (rewards are all 0 from scratch)."""
  w = config.warmup
  if w.steps <= 0 or not prompts.sft:
    return params
  opt = train_lib.make_optimizer(dict(w.optimizer), w.steps)
  state = jax.jit(lambda p: train_lib.state_from_params(p, opt, config.seed))(params)
  step = jax.jit(sft_lib.make_train_step(graphdef, opt), donate_argnums=(0,))
  rng = np.random.default_rng(config.seed)
  bar = metrics_lib.progress(w.steps, desc='sft warm-up')
  for i in range(1, w.steps + 1):
    idx = rng.integers(0, len(prompts.sft), w.batch_size)
    batch = {k: np.stack([prompts.sft[j][k] for j in idx]) for k in prompts.sft[0]}
    state, m = step(state, batch, state.rng)
    bar.update(1)
    if metrics_lib.is_due(i, w.log_every, w.steps):
      writer.write(0, {'warmup_step': i, 'warmup_loss': m['loss']})
  bar.close()
  return state.params


def _step_prompts(prompts, config, step: int) -> list[int]:
  """Prompt indices for `step`: epochs of a seeded permutation, a pure function of step."""
  n, per = len(prompts.prompt_ids), config.prompts_per_step
  start = (step - 1) * per
  idx = []
  for pos in range(start, start + per):
    epoch, offset = divmod(pos, n)
    idx.append(int(np.random.default_rng([config.seed, epoch]).permutation(n)[offset]))
  return idx


def rollout(params, graphdef, prompts, idx, config, rng, mesh):
  """Samples G completions per prompt and scores them. Returns (batch arrays, stats)."""
  g = config.grpo.num_generations
  rows = [prompts.prompt_ids[i] for i in idx for _ in range(g)]
  answers = [prompts.answers[i] for i in idx for _ in range(g)]
  tok = prompts.tokenizer
  p_tokens, p_mask = sampler_lib.pad_prompts(rows, tok.pad_token_id, bucket=config.prompt_bucket)
  out = sampler_lib.generate(
      (graphdef, params), p_tokens, prompt_mask=p_mask, max_new_tokens=config.max_new_tokens,
      rng=rng, temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,
      eos_ids=tasks_lib.eos_ids(tok), pad_id=tok.pad_token_id, mesh=mesh)
  c_tokens, lengths = np.asarray(out.tokens), np.asarray(out.lengths)
  c_mask = (np.arange(c_tokens.shape[1])[None] < lengths[:, None]).astype(np.int32)
  texts = [prompts.decode(r[:n].tolist()) for r, n in zip(c_tokens, lengths)]
  rewards = np.array([prompts.reward(t, a) for t, a in zip(texts, answers)], np.float32)
  tokens, kv_mask = grpo_learner.assemble(p_tokens, p_mask, c_tokens, c_mask)
  adv = grpo_learner.group_advantages(rewards, g, adv_lib.AdvantageConfig(**config.advantages))
  stats = adv_lib.group_stats(jax.numpy.asarray(rewards), g)
  stats = {'reward': rewards.mean(), 'reward_std': rewards.std(),
           'completion_length': lengths.mean(), 'completion_tokens': int(c_mask.sum()),
           **{f'group/{k}': v for k, v in stats.items()}}
  return (tokens, kv_mask, c_mask, adv), stats, texts[0]


def evaluate(params, graphdef, prompts, config, mesh) -> float:
  """Greedy accuracy on held-out prompts."""
  tok = prompts.tokenizer
  out = sampler_lib.generate((graphdef, params), prompts.prompt_ids,
                             max_new_tokens=config.max_new_tokens, rng=jax.random.PRNGKey(0),
                             temperature=0.0, eos_ids=tasks_lib.eos_ids(tok),
                             pad_id=tok.pad_token_id, mesh=mesh)
  c_tokens, lengths = np.asarray(out.tokens), np.asarray(out.lengths)
  texts = [prompts.decode(r[:n].tolist()) for r, n in zip(c_tokens, lengths)]
  return float(np.mean([prompts.reward(t, a) for t, a in zip(texts, prompts.answers)]))


def _update(state, update_fn, logps_fn, ref_params, arrays, config):
  tokens, kv_mask, c_mask, adv = arrays
  zeros = np.zeros(c_mask.shape, np.float32)
  old = logps_fn(state.params, tokens, kv_mask) if config.grpo.num_iterations > 1 else zeros
  ref = logps_fn(ref_params, tokens, kv_mask) if config.grpo.beta != 0.0 else zeros
  batch = grpo_learner.RolloutBatch(tokens, kv_mask, c_mask, adv, old, ref)
  for _ in range(config.grpo.num_iterations):
    state, metrics = update_fn(state, batch, state.rng)
  return state, metrics


@registry.experiment('grpo')
def run(config, workdir: str) -> dict:
  validate(config)
  workdir = pathlib.Path(workdir)
  t_start = time.time()

  # --- mesh and prompts
  mesh = mesh_lib.make_mesh(config.mesh)
  n_rows = config.prompts_per_step * config.grpo.num_generations
  config_lib.require(n_rows % mesh_lib.batch_divisor(mesh) == 0, 'prompts_per_step',
                     f'prompts_per_step x num_generations = {n_rows} is not divisible by the '
                     f'{mesh_lib.batch_divisor(mesh)} data x fsdp devices')
  make_task = TASKS.get(config.task.name)
  prompts = make_task(config.task, config.task.num_prompts, config.seed)
  eval_prompts = make_task(config.task, config.task.num_eval, config.seed + 10_000)
  print(f'mesh: {mesh_lib.describe(mesh)}; task {config.task.name}: '
        f'{len(prompts.prompt_ids)} prompts', flush=True)

  # --- abstract state and shardings
  mcfg = families.config_for(config.model)
  make_model = lambda: layers.Decoder(mcfg, nnx.Rngs(params=config.seed))  # noqa: E731
  graphdef, abstract_params, _ = hf.abstract_params(make_model)
  optimizer = train_lib.make_optimizer(config.optimizer, config.steps)
  init, abstract, shardings = train_lib.sharded_state(
      lambda: nnx.to_pure_dict(nnx.state(make_model(), nnx.Param)),
      mesh_lib.param_shardings(abstract_params, mesh), optimizer, config.seed, mesh)
  writer = metrics_lib.MetricWriter(workdir)

  # --- restore: own checkpoint > resume_from > HF params (+ warm-up) > scratch (+ warm-up)
  ckpt = ckpt_lib.Checkpointer(workdir / 'checkpoints', config.checkpoint.every,
                               config.checkpoint.keep, config.checkpoint.async_save)
  def fresh():
    params = (families.load_hf_params(config.model, mesh) if config.model.hf_dir
              else init().params)
    params = _warm_up(params, graphdef, prompts, config, writer)
    state = train_lib.init_from_params(params, optimizer, config.seed, shardings)
    ckpt.save(0, state, force=True)     # step 0 = the RL starting point (RELEX's base)
    return state
  state, start = train_lib.restore_or_init(ckpt, abstract, fresh, None,
                                           config.resume_from or None)
  ref_params = (ckpt.restore(0, abstract).params if config.grpo.beta != 0.0 else None)
  writer.truncate_after(start)

  # --- steps
  update_fn = train_lib.compile_step(
      grpo_learner.make_train_step(graphdef, optimizer, loss_config(config),
                                   use_old_logps=config.grpo.num_iterations > 1,
                                   temperature=config.temperature), shardings, mesh)
  logps_fn = grpo_learner.make_logps_fn(graphdef, config.max_new_tokens,
                                        temperature=config.temperature)

  # --- loop
  bar = metrics_lib.progress(config.steps, initial=start, desc='grpo')
  key = jax.random.PRNGKey(config.seed + 1)
  for step in range(start + 1, config.steps + 1):
    t0 = time.time()
    arrays, stats, sample = rollout(state.params, graphdef, prompts,
                                    _step_prompts(prompts, config, step), config,
                                    jax.random.fold_in(key, step), mesh)
    t_gen = time.time() - t0
    state, metrics = _update(state, update_fn, logps_fn, ref_params, arrays, config)
    metrics = jax.device_get(metrics)
    train_lib.check_finite([step], {k: np.asarray([v]) for k, v in metrics.items()})
    row = {**stats, **metrics, 'generate_s': t_gen, 'step_s': time.time() - t0,
           'tokens_per_s': stats['completion_tokens'] / max(t_gen, 1e-9)}
    if metrics_lib.is_due(step, config.eval_every, config.steps):
      row['eval_accuracy'] = evaluate(state.params, graphdef, eval_prompts, config, mesh)
    writer.write(step, row)
    bar.update(1)
    bar.set_postfix(reward=f"{stats['reward']:.3f}")
    ckpt.save(step, state)
  bar.close()

  # --- final save, plots, results
  ckpt.save(config.steps, state, force=True)
  ckpt.close()
  return summarize(workdir, config, time.time() - t_start, sample)


def summarize(workdir, config, wall_s: float, sample: str) -> dict:
  rows = [r for r in metrics_lib.read_metrics(workdir) if 'reward' in r]
  evals = [r for r in rows if 'eval_accuracy' in r]
  k = min(10, len(rows))
  results = {
      'reward_first10': float(np.mean([r['reward'] for r in rows[:k]])) if rows else None,
      'reward_last10': float(np.mean([r['reward'] for r in rows[-k:]])) if rows else None,
      'eval_accuracy': [(r['step'], r['eval_accuracy']) for r in evals],
      'steps': config.steps, 'wall_s': round(wall_s, 1), 'last_sample': sample}
  metrics_lib.plot_curves(rows, ['reward', 'eval_accuracy', 'completion_length', 'kl'],
                          workdir / 'grpo.png', title=f'GRPO on {config.task.name}')
  metrics_lib.write_json(workdir / 'results.json', results)
  print(f"done: reward first-10 {results['reward_first10']:.3f} -> last-10 "
        f"{results['reward_last10']:.3f}; eval {results['eval_accuracy']}; "
        f'{results["wall_s"]} s', flush=True)
  return results
