"""GRPO: sample G rollouts per task, score them, update with the clipped surrogate.

Stages: mesh -> prompts -> abstract state -> shardings -> (optional SFT warm-up) -> restore
-> loop of (rollout -> rewards -> advantages -> num_iterations updates) -> final save.
Tasks (`config.task.name`): 'addition' (synthetic, char tokenizer, learns from scratch on a
CPU), 'gsm8k' (Qwen chat template, math-verify reward; the real recipe for an HF Qwen
checkpoint) and 'kv_lookup' (a multi-turn tool-use toy).

Rollout sources (`config.rollout.source`): 'sampler' (one completion per row) or 'agent'
(multi-turn episodes against `config.env.name` from `core.env.ENVS`, scored by the env's
episode-end hook; GRPO over trajectories as WebAgent-R1's M-GRPO and Search-R1: group
advantages per trajectory, loss only on policy tokens). Options: DAPO dynamic sampling
(`grpo.dynamic_sampling`: groups whose rewards do not vary are dropped and more tasks are
rolled out, up to `grpo.max_resample_rounds`), turn-level credit (`rollout.credit`, see
rl/trajectory.py), truncated importance sampling between the sampler's and the trainer's
log-probs (`grpo.is_correction='tis'`, cap `grpo.is_cap`) and TRL's
`mask_truncated_completions`. Configs without these fields get single-turn defaults.

Checkpoints are kept every `checkpoint.every` steps so RELEX can read the trajectory. Task
order (and each env's seed) is a pure function of (seed, step), so a resumed run samples the
same tasks.
"""
from __future__ import annotations

import dataclasses
import pathlib
import time

import jax
import numpy as np
from flax import nnx

from jaxpapers.core import agent as agent_lib
from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import config as config_lib
from jaxpapers.core import env as env_lib
from jaxpapers.core import hf
from jaxpapers.core import lookup_env
from jaxpapers.core import lora as lora_lib
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
from jaxpapers.core.rl import trajectory as traj_lib

TASKS = registry.Registry('GRPO task')
EVAL_SEED_OFFSET = 10_000   # held-out prompts: make_task(..., seed + this, 'test')
# Each task: fn(task_config, n, seed, split) -> PromptSet; split is 'train' or 'test' (the
# held-out prompts); tasks whose prompts are random draws tell them apart by seed alone.
TASKS.register('addition')(lambda c, n, seed, split: tasks_lib.addition_prompts(
    n, seed, c.digits, c.sft_seq_len, c.sft_noise))
TASKS.register('gsm8k')(lambda c, n, seed, split: tasks_lib.gsm8k_prompts(
    n, seed, c.split, c.system or None, c.suffix))
TASKS.register('kv_lookup')(lambda c, n, seed, split: lookup_env.prompt_set(
    n, seed, c.sft_seq_len, c.get('skip_search', 0.5)))
ROLLOUTS = registry.Registry('GRPO rollout source')

# Fields a config may leave out (single-turn GRPO as before).
DEFAULTS = {
    'rollout.source': 'sampler', 'rollout.credit': 'trajectory', 'rollout.gamma': 1.0,
    'grpo.dynamic_sampling': False, 'grpo.max_resample_rounds': 3,
    'grpo.mask_truncated_completions': False, 'grpo.is_correction': 'none',
    'grpo.is_cap': 2.0, 'lora.rank': 0, 'resume_params_only': False,
    'rollout.compress_history': False,
    'rollout.shared_prefix': agent_lib.AgentConfig.shared_prefix,
}


def opt(config, dotted: str):
  """config.<dotted>, or its default from DEFAULTS when the config has no such field."""
  node = config
  for part in dotted.split('.'):
    if part not in node:
      return DEFAULTS[dotted]
    node = node[part]
  return node


def loss_config(config) -> grpo_lib.GRPOLossConfig:
  g = config.grpo
  return grpo_lib.GRPOLossConfig(
      loss_type=g.loss_type, beta=g.beta, epsilon=g.epsilon,
      epsilon_high=g.epsilon_high if g.epsilon_high > 0 else None, kl_estimator=g.kl_estimator,
      max_completion_length=config.max_new_tokens)


def agent_config(config) -> agent_lib.AgentConfig:
  r = config.rollout
  return agent_lib.AgentConfig(
      max_turns=r.max_turns, max_turn_tokens=r.max_turn_tokens,
      max_total_tokens=config.max_new_tokens, stop=tuple(r.stop), env_template=r.env_template,
      end_on_eos=r.end_on_eos, on_error=r.on_error, env_timeout_s=r.env_timeout_s,
      error_template=r.get('error_template', agent_lib.ERROR_TEMPLATE),
      temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,
      prompt_bucket=config.prompt_bucket, kv_reuse=r.kv_reuse,
      compress_history=opt(config, 'rollout.compress_history'),
      shared_prefix=opt(config, 'rollout.shared_prefix'))


def lora_config(config) -> lora_lib.LoraConfig | None:
  """LoRA adapters when `config.lora.rank > 0` (base frozen; only adapters train)."""
  if opt(config, 'lora.rank') <= 0:
    return None
  fields = {k: v for k, v in config.lora.items() if k in lora_lib.LoraConfig.__dataclass_fields__}
  return lora_lib.LoraConfig(**{**fields, 'target_modules': tuple(fields.get(
      'target_modules', lora_lib.LoraConfig.target_modules))})


def validate(config) -> None:
  config_lib.check_positive(config, 'prompts_per_step', 'grpo.num_generations',
                            'max_new_tokens', 'grpo.num_iterations')
  config_lib.require(config.steps >= 0, 'steps', f'{config.steps} is negative (0 = only the '
                     'warm-up and the start evaluation)')
  config_lib.check_choice(config, 'task.name', TASKS.names())
  for field, choices in (('rollout.source', ROLLOUTS.names()),
                         ('rollout.credit', traj_lib.CREDITS),
                         ('grpo.is_correction', ('none', 'tis'))):
    if opt(config, field) not in choices:
      raise config_lib.ConfigError(f'config.{field}: {opt(config, field)!r} is not one of '
                                   f'{list(choices)}')
  if opt(config, 'lora.rank') > 0:
    try:
      lora_config(config)
    except ValueError as e:
      raise config_lib.ConfigError(f'config.{e}') from None
    config_lib.require(config.warmup.steps == 0, 'warmup.steps',
                       'the SFT warm-up trains the full model; with LoRA set it to 0')
  if opt(config, 'rollout.source') == 'agent':
    config_lib.check_choice(config, 'env.name', env_lib.ENVS.names())
    try:
      agent_config(config)
    except ValueError as e:
      raise config_lib.ConfigError(f'config.rollout: {e}') from None
  for field, make in (('grpo', lambda: loss_config(config)),
                      ('advantages', lambda: adv_lib.AdvantageConfig(**config.advantages))):
    try:
      make()
    except ValueError as e:
      raise config_lib.ConfigError(f'config.{field}: {e}') from None


def sft_warm_up(params, graphdef, examples: list[dict], w, seed: int, writer,
                prefix: str = 'warmup'):
  """`w.steps` SFT steps on padded `examples` (batches of `w.batch_size` drawn with
  replacement), logged as `<prefix>_step` / `<prefix>_loss` at step 0. Returns the params.
  Examples may be padded to a few lengths (long multi-turn demonstrations): each batch is
  drawn from one length, picked in proportion to its count, so no batch pads to the longest."""
  if w.steps <= 0 or not examples:
    return params
  opt = train_lib.make_optimizer(dict(w.optimizer), w.steps)
  state = jax.jit(lambda p: train_lib.state_from_params(p, opt, seed))(params)
  step = jax.jit(sft_lib.make_train_step(graphdef, opt), donate_argnums=(0,))
  rng = np.random.default_rng(seed)
  by_length: dict[int, list[int]] = {}
  for j, ex in enumerate(examples):
    by_length.setdefault(len(ex['tokens']), []).append(j)
  groups = [np.array(v) for _, v in sorted(by_length.items())]
  share = np.array([len(g) for g in groups]) / len(examples)
  bar = metrics_lib.progress(w.steps, desc=f'sft {prefix}')
  for i in range(1, w.steps + 1):
    group = groups[rng.choice(len(groups), p=share)] if len(groups) > 1 else groups[0]
    idx = group[rng.integers(0, len(group), w.batch_size)]
    batch = {k: np.stack([examples[j][k] for j in idx]) for k in examples[0]}
    state, m = step(state, batch, state.rng)
    bar.update(1)
    if metrics_lib.is_due(i, w.log_every, w.steps):
      writer.write(0, {f'{prefix}_step': i, f'{prefix}_loss': m['loss']})
  bar.close()
  return state.params


def _step_prompts(prompts, config, step: int, attempt: int = 0) -> list[int]:
  """Prompt indices for `step`: epochs of a seeded permutation, a pure function of step
  (resampling attempts of dynamic sampling draw from their own seeded stream)."""
  n, per = len(prompts.prompt_ids), config.prompts_per_step
  if attempt:
    return np.random.default_rng([config.seed, step, attempt]).choice(n, per).tolist()
  start = (step - 1) * per
  idx = []
  for pos in range(start, start + per):
    epoch, offset = divmod(pos, n)
    idx.append(int(np.random.default_rng([config.seed, epoch]).permutation(n)[offset]))
  return idx


@ROLLOUTS.register('sampler')
def rollout(params, graphdef, prompts, idx, config, rng, mesh):
  """Samples G completions per prompt and scores them. Returns (arrays, stats, a sample)."""
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
  if opt(config, 'grpo.mask_truncated_completions'):
    c_mask = c_mask * (np.asarray(out.finish_reason) != sampler_lib.FINISH_LENGTH)[:, None]
  texts = [prompts.decode(r[:n].tolist()) for r, n in zip(c_tokens, lengths)]
  rewards = np.array([prompts.reward(t, a) for t, a in zip(texts, answers)], np.float32)
  tokens, kv_mask = grpo_learner.assemble(p_tokens, p_mask, c_tokens, c_mask)
  arrays = {'tokens': tokens, 'kv_mask': kv_mask, 'loss_mask': c_mask, 'rewards': rewards,
            'rollout_logps': np.asarray(out.logprobs, np.float32)}
  stats = {'reward': rewards.mean(), 'reward_std': rewards.std(),
           'completion_length': lengths.mean(), 'completion_tokens': int(c_mask.sum())}
  return arrays, stats, texts[0]


def make_env(config, tasks, seed: int):
  env = env_lib.ENVS.get(config.env.name)(config.env)
  env.reset(tasks, seed)
  return env


@ROLLOUTS.register('agent')
def agent_rollout(params, graphdef, prompts, idx, config, rng, mesh, temperature=None):
  """G multi-turn episodes per task against the env, scored at episode end."""
  g = config.grpo.num_generations
  rows = [i for i in idx for _ in range(g)]
  env = make_env(config, [prompts.tasks[i] for i in rows],
                 int(jax.random.randint(rng, (), 0, 2**31 - 1)))
  cfg = agent_config(config)
  if temperature is not None:
    cfg = dataclasses.replace(cfg, temperature=temperature)
  briefs = getattr(prompts, 'brief_prompt_ids', None)
  out, episodes = agent_lib.rollout((graphdef, params), prompts.tokenizer,
                                    [prompts.prompt_ids[i] for i in rows], env, cfg, rng=rng,
                                    mesh=mesh, brief_prompts=(
                                        [briefs[i] for i in rows]
                                        if briefs is not None and cfg.compress_history
                                        else None))
  outcomes = [env_lib.call_score(env, r, ep, config.rollout.env_timeout_s)
              for r, ep in enumerate(episodes)]
  arrays = traj_lib.batch_arrays(out, episodes, opt(config, 'grpo.mask_truncated_completions'))
  arrays['rewards'] = np.array([o.reward for o in outcomes], np.float32)
  stats = traj_lib.episode_stats(episodes, outcomes)
  stats['completion_tokens'] = int(arrays['loss_mask'].sum())
  return arrays, stats, episodes[0].text()


def _pad_to(x: np.ndarray, width: int, left: bool) -> np.ndarray:
  pad = [(0, 0), (width - x.shape[1], 0) if left else (0, width - x.shape[1])]
  return np.pad(x, pad)


def _concat(parts: list[dict]) -> dict:
  """Row-concatenates rollout arrays, padding prompts (left) and completions (right)."""
  c = max(p['loss_mask'].shape[1] for p in parts)
  p_len = max(p['tokens'].shape[1] - p['loss_mask'].shape[1] for p in parts)
  out = {}
  for key in parts[0]:
    rows = []
    for p in parts:
      x = p[key]
      if key in ('tokens', 'kv_mask'):
        pc = p['loss_mask'].shape[1]
        x = np.concatenate([_pad_to(x[:, :-pc], p_len, True), _pad_to(x[:, -pc:], c, False)], 1)
      elif x.ndim == 2:
        x = _pad_to(x, c, False)
      rows.append(x)
    out[key] = np.concatenate(rows)
  return out


def _take_groups(arrays: dict, groups: list[int], g: int) -> dict:
  rows = np.array([gi * g + j for gi in groups for j in range(g)], np.int64)
  return {k: v[rows] for k, v in arrays.items()}


def collect(params, graphdef, prompts, config, step: int, rng, mesh):
  """The step's rollouts: with dynamic sampling, groups whose rewards all agree are
  replaced by groups of fresh tasks (up to max_resample_rounds extra rounds; any shortfall
  is filled with dropped groups, whose advantages are 0)."""
  g, need = config.grpo.num_generations, config.prompts_per_step
  source = ROLLOUTS.get(opt(config, 'rollout.source'))
  arrays, stats, sample = source(params, graphdef, prompts, _step_prompts(prompts, config, step),
                                 config, rng, mesh)
  if not opt(config, 'grpo.dynamic_sampling'):
    return arrays, stats, sample
  kept, dropped, rounds = [], [], 0
  parts = [arrays]
  while True:
    base = len(kept) + len(dropped)      # groups seen before this part
    for k, rewards in enumerate(parts[-1]['rewards'].reshape(-1, g)):
      (kept if rewards.std() > 0 else dropped).append(base + k)
    if len(kept) >= need or rounds >= opt(config, 'grpo.max_resample_rounds'):
      break
    rounds += 1
    extra, _, _ = source(params, graphdef, prompts,
                         _step_prompts(prompts, config, step, attempt=rounds), config,
                         jax.random.fold_in(rng, 1000 + rounds), mesh)
    parts.append(extra)
  merged = _concat(parts) if len(parts) > 1 else arrays
  chosen = (kept + dropped)[:need]
  stats = {**stats, 'dynamic/kept_groups': float(min(len(kept), need)),
           'dynamic/resample_rounds': float(rounds)}
  return _take_groups(merged, chosen, g), stats, sample


def evaluate(params, graphdef, prompts, config, mesh) -> dict:
  """Greedy success on held-out tasks (accuracy; agent runs also report tool use)."""
  if opt(config, 'rollout.source') == 'agent':
    one = config.copy_and_resolve_references()
    one.grpo.num_generations = 1
    _, stats, _ = agent_rollout(params, graphdef, prompts, list(range(len(prompts.prompt_ids))),
                                one, jax.random.PRNGKey(0), mesh, temperature=0.0)
    components = {f'eval_{k[len("reward/"):]}': v for k, v in stats.items()
                  if k.startswith('reward/')}
    return {'eval_accuracy': stats['reward'], 'eval_tool_call_rate': stats['tool_call_rate'],
            **components}
  tok = prompts.tokenizer
  out = sampler_lib.generate((graphdef, params), prompts.prompt_ids,
                             max_new_tokens=config.max_new_tokens, rng=jax.random.PRNGKey(0),
                             temperature=0.0, eos_ids=tasks_lib.eos_ids(tok),
                             pad_id=tok.pad_token_id, mesh=mesh)
  c_tokens, lengths = np.asarray(out.tokens), np.asarray(out.lengths)
  texts = [prompts.decode(r[:n].tolist()) for r, n in zip(c_tokens, lengths)]
  return {'eval_accuracy': float(np.mean([prompts.reward(t, a)
                                          for t, a in zip(texts, prompts.answers)]))}


def reference_params(workdir, ckpt, state, abstract, fresh_start: bool):
  """The KL reference: the params this run started from, kept in workdir/reference apart
  from the pruned step checkpoints (keep=N drops step 0). A run started from another run's
  weights (`resume_from`, e.g. DeSA's stage 2) takes those as its reference, as DeSA does."""
  ref = ckpt_lib.Checkpointer(workdir / 'reference', every=0, keep=1, async_save=False)
  try:
    if ref.latest_step() is not None:
      return ref.restore(ref.latest_step(), abstract).params
    if not fresh_start:      # a run whose reference was not kept apart: its step 0
      return ckpt.restore(0, abstract).params
    ref.save(0, state, force=True)
    return jax.tree.map(jax.numpy.copy, state.params)   # the train step donates state's buffers
  finally:
    ref.close()


def advantages_for(arrays, config) -> np.ndarray:
  return traj_lib.advantages(arrays['rewards'], arrays, config.grpo.num_generations,
                             adv_lib.AdvantageConfig(**config.advantages),
                             opt(config, 'rollout.credit'), opt(config, 'rollout.gamma'))


def _update(state, update_fn, logps_fn, ref_params, arrays, config, policy_params):
  tokens, kv_mask, c_mask = arrays['tokens'], arrays['kv_mask'], arrays['loss_mask']
  adv = advantages_for(arrays, config)
  zeros = np.zeros(c_mask.shape, np.float32)
  tis = opt(config, 'grpo.is_correction') == 'tis'
  old = (logps_fn(policy_params, tokens, kv_mask) if config.grpo.num_iterations > 1 or tis
         else zeros)
  ref = logps_fn(ref_params, tokens, kv_mask) if config.grpo.beta != 0.0 else zeros
  weights = (grpo_learner.truncated_is_weights(old, arrays['rollout_logps'], c_mask,
                                               opt(config, 'grpo.is_cap')) if tis else None)
  batch = grpo_learner.RolloutBatch(tokens, kv_mask, c_mask, adv, old, ref, weights)
  for _ in range(config.grpo.num_iterations):
    state, metrics = update_fn(state, batch, state.rng)
  group = adv_lib.group_stats(jax.numpy.asarray(arrays['rewards']), config.grpo.num_generations)
  return state, {**metrics, **{f'group/{k}': v for k, v in group.items()}}


def model_fns(config):
  """(model config, graphdef, abstract NNX params, abstract pure dict, fn -> initial pure
  params) of `config.model`; nothing is allocated until the fn is called."""
  mcfg = families.config_for(config.model)
  make_model = lambda: layers.Decoder(mcfg, nnx.Rngs(params=config.seed))  # noqa: E731
  graphdef, abstract_params, abstract_pure = hf.abstract_params(make_model)
  full_params = lambda: nnx.to_pure_dict(nnx.state(make_model(), nnx.Param))  # noqa: E731
  return mcfg, graphdef, abstract_params, abstract_pure, full_params


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
  prompts = make_task(config.task, config.task.num_prompts, config.seed, 'train')
  eval_prompts = make_task(config.task, config.task.num_eval,
                           config.seed + EVAL_SEED_OFFSET, 'test')
  print(f'mesh: {mesh_lib.describe(mesh)}; task {config.task.name}: '
        f'{len(prompts.prompt_ids)} prompts', flush=True)

  # --- abstract state and shardings
  mcfg, graphdef, abstract_params, abstract_pure, full_params = model_fns(config)
  optimizer = train_lib.make_optimizer(config.optimizer, config.steps)
  param_shardings = mesh_lib.param_shardings(abstract_params, mesh)
  lcfg, base = lora_config(config), None
  if lcfg is not None:   # the train state holds only the adapters; the frozen base is an argument
    base = (families.load_hf_params(config.model, mesh) if config.model.hf_dir
            else jax.jit(full_params, out_shardings=param_shardings)())
  trainable = lora_lib.Trainable(lcfg, param_shardings, base)
  init, abstract, shardings = train_lib.sharded_state(
      trainable.init_fn(full_params, abstract_pure, config.seed), trainable.shardings,
      optimizer, config.seed, mesh)
  if lcfg is not None:
    print(f'LoRA rank {lcfg.rank}: {lora_lib.num_trainable(abstract.params):,} trainable '
          f'params ({mcfg.num_params:,} frozen)', flush=True)
  policy = lambda st: trainable.full(st.params)  # noqa: E731
  writer = metrics_lib.MetricWriter(workdir)

  # --- restore: own checkpoint > resume_from > HF params (+ warm-up) > scratch (+ warm-up)
  ckpt = ckpt_lib.Checkpointer(workdir / 'checkpoints', config.checkpoint.every,
                               config.checkpoint.keep, config.checkpoint.async_save)
  def fresh():
    if lcfg is not None:
      state = init()
    else:
      params = (families.load_hf_params(config.model, mesh) if config.model.hf_dir
                else init().params)
      params = sft_warm_up(params, graphdef, prompts.sft, config.warmup, config.seed, writer)
      state = train_lib.init_from_params(params, optimizer, config.seed, shardings)
    ckpt.save(0, state, force=True)     # step 0 = the RL starting point (RELEX's base)
    return state
  own = ckpt.latest_step() is not None
  state, start = train_lib.restore_or_init(ckpt, abstract, fresh, None,
                                           config.resume_from or None)
  if not own and config.resume_from and opt(config, 'resume_params_only') and lcfg is None:
    # a new stage from another run's weights: fresh optimizer state, same step count
    state = train_lib.init_from_params(state.params, optimizer, config.seed, shardings)
    print(f'resume_params_only: fresh optimizer state at step {start}', flush=True)
  ref_params = None
  if config.grpo.beta != 0.0:
    ref_params = base if lcfg is not None else reference_params(workdir, ckpt, state, abstract,
                                                                fresh_start=not own)
  writer.truncate_after(start)
  if start == 0:    # the policy RL starts from, on the held-out tasks
    writer.write(0, {f'start/{k}': v for k, v in evaluate(
        policy(state), graphdef, eval_prompts, config, mesh).items()})

  # --- steps
  use_old = config.grpo.num_iterations > 1 or opt(config, 'grpo.is_correction') != 'none'
  loss_fn_args = dict(use_old_logps=use_old, temperature=config.temperature)
  update_fn = trainable.compile(
      grpo_learner.make_loss_fn(graphdef, loss_config(config), **loss_fn_args), optimizer,
      shardings, mesh)
  logps_fn = grpo_learner.make_logps_fn(graphdef, config.max_new_tokens,
                                        temperature=config.temperature)

  # --- loop
  bar = metrics_lib.progress(config.steps, initial=start, desc='grpo')
  key = jax.random.PRNGKey(config.seed + 1)
  sample = ''
  for step in range(start + 1, config.steps + 1):
    t0 = time.time()
    params = policy(state)
    arrays, stats, sample = collect(params, graphdef, prompts, config, step,
                                    jax.random.fold_in(key, step), mesh)
    t_gen = time.time() - t0
    state, metrics = _update(state, update_fn, logps_fn, ref_params, arrays, config, params)
    del params
    metrics = jax.device_get(metrics)
    train_lib.check_finite([step], {k: np.asarray([v]) for k, v in metrics.items()
                                    if not k.startswith('group/')})
    row = {**stats, **metrics, 'generate_s': t_gen, 'update_s': time.time() - t0 - t_gen,
           'step_s': time.time() - t0,
           'tokens_per_s': stats['completion_tokens'] / max(t_gen, 1e-9)}
    if metrics_lib.is_due(step, config.eval_every, config.steps):
      row.update(evaluate(policy(state), graphdef, eval_prompts, config, mesh))
    writer.write(step, row)
    bar.update(1)
    bar.set_postfix(reward=f"{stats['reward']:.3f}")
    ckpt.save(step, state)
  bar.close()

  # --- final save, plots, results
  ckpt.save(config.steps, state, force=True)
  ckpt.close()
  if lcfg is not None:   # adapters merged into an HF safetensors dir
    lora_lib.export_merged(workdir / 'merged_hf', base, state.params, lcfg, mcfg,
                           tokenizer_dir=config.model.hf_dir or None)
  return summarize(workdir, config, time.time() - t_start, sample)


def load_policy(config, workdir, mesh, step: int | None = None):
  """(graphdef, params) of a GRPO run's checkpoint (the latest unless `step`), on `mesh`,
  for evaluating a finished policy (full-model runs; LoRA runs export `merged_hf/`)."""
  config_lib.require(opt(config, 'lora.rank') <= 0, 'lora.rank',
                     'load a LoRA run from its merged_hf/ export')
  _, graphdef, abstract_params, _, full_params = model_fns(config)
  optimizer = train_lib.make_optimizer(config.optimizer, max(config.steps, 1))
  _, abstract, _ = train_lib.sharded_state(
      full_params, mesh_lib.param_shardings(abstract_params, mesh), optimizer, config.seed, mesh)
  ckpt = ckpt_lib.Checkpointer(pathlib.Path(workdir) / 'checkpoints', 0, 1, False)
  try:
    step = ckpt.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'{workdir}/checkpoints: no checkpoint to load')
    state = ckpt.restore(step, abstract)
  finally:
    ckpt.close()
  return graphdef, state.params


def _first_last(rows, key, k=10) -> tuple[float | None, float | None]:
  values = [r[key] for r in rows if key in r]
  if not values:
    return None, None
  k = min(k, len(values))
  return float(np.mean(values[:k])), float(np.mean(values[-k:]))


def summarize(workdir, config, wall_s: float, sample: str) -> dict:
  rows = [r for r in metrics_lib.read_metrics(workdir) if 'reward' in r]
  evals = [r for r in rows if 'eval_accuracy' in r]
  first, last = _first_last(rows, 'reward')
  start = next((r for r in metrics_lib.read_metrics(workdir) if 'start/eval_accuracy' in r), {})
  results = {
      'reward_first10': first, 'reward_last10': last,
      'eval_at_start': {k[len('start/'):]: v for k, v in start.items() if k.startswith('start/')},
      'eval_accuracy': [(r['step'], r['eval_accuracy']) for r in evals],
      'steps': config.steps, 'wall_s': round(wall_s, 1), 'last_sample': sample}
  keys = ['reward', 'eval_accuracy', 'completion_length', 'kl']
  if opt(config, 'rollout.source') == 'agent':   # held-out success and tool use
    results['success_first10'], results['success_last10'] = _first_last(rows, 'eval_accuracy')
    for key in ('tool_call_rate', 'eval_tool_call_rate', 'turns', 'invalid_actions'):
      results[f'{key}_first10'], results[f'{key}_last10'] = _first_last(rows, key)
    results['tool_call_rate'] = results['tool_call_rate_last10']
    keys = ['reward', 'eval_accuracy', 'tool_call_rate', 'turns', 'env_tokens']
  metrics_lib.plot_curves(rows, keys, workdir / 'grpo.png', title=f'GRPO on {config.task.name}')
  metrics_lib.write_json(workdir / 'results.json', results)
  if rows:
    print(f"done: reward first-10 {results['reward_first10']:.3f} -> last-10 "
          f"{results['reward_last10']:.3f}; eval {results['eval_accuracy']}; "
          f'{results["wall_s"]} s', flush=True)
  return results
