"""G-Zero co-evolution (experiment 'gzero'): Proposer GRPO -> DPO pool -> Generator DPO.

Each round r = 1..R, as the reference's multi_round.py, from the previous round's policies:
  1 proposer  `proposer.steps` GRPO steps; reward = Hint-δ against the (frozen) Generator
              minus the BLEU-cluster and hint-length penalties (rewards.py); Dr.GRPO
              mean-only advantages; no KL (the reference has none in this phase)
  2 pool      the Proposer writes `pool.num_questions` (q, h); the Generator samples a_hard | q
              and a_assisted | q, h (T = solver.temperature); δ; filter (pool.py) ->
              round_<r>/pool.jsonl (every scored record) and round_<r>/dpo.jsonl
  3 dpo       Generator DPO on (q, chosen = a_assisted, rejected = a_hard): length-normalised
              sigmoid loss ('sigmoid_norm'), reference = the Generator at the round's start,
              a fresh optimizer whose learning rate decays linearly over the round's steps
  4 eval      the Generator's held-out score (the setup's checker, never used in training)
Both policies, their optimizer states, the DPO reference and the cursor (round, phase, step)
are one Orbax checkpoint; every sample and batch is a pure function of (seed, round, phase,
step), so a killed run resumes where it stopped and ends with the params of an
uninterrupted one. Setups (`config.setup.name`): 'world' (world.py, tiny models from
scratch with SFT warm-ups) and 'chat' (HF chat models, the reference's prompts; held-out
score = greedy GSM8K accuracy).
"""
from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import config as config_lib
from jaxpapers.core import data as data_lib
from jaxpapers.core import lora as lora_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core import sampler as sampler_lib
from jaxpapers.core import tasks as tasks_lib
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import families
from jaxpapers.core.rl import advantages as adv_lib
from jaxpapers.core.rl import dpo as dpo_lib
from jaxpapers.core.rl import grpo as grpo_lib
from jaxpapers.core.rl import grpo_learner
from jaxpapers.core.runners import grpo as grpo_runner
from jaxpapers.papers.gzero import delta as delta_lib
from jaxpapers.papers.gzero import formats
from jaxpapers.papers.gzero import pool as pool_lib
from jaxpapers.papers.gzero import prompts
from jaxpapers.papers.gzero import rewards as rewards_lib
from jaxpapers.papers.gzero import world as world_lib

SETUPS = registry.Registry('G-Zero setup')
PROPOSER, POOL, DPO, EVAL = 1, 2, 3, 4
ROUND_KEYS = ('generator_heldout', 'delta_mean', 'proposer_reward', 'filtered_fraction',
              'dpo_loss', 'dpo_accuracy', 'blind_spot_share')


@dataclasses.dataclass
class Setup:
  format: formats.Format
  proposer_sft: list[dict]            # warm-up examples (empty: start from the given weights)
  generator_sft: list[dict]
  evaluate: Callable                  # (generator model, mesh) -> {'heldout': ..., ...}
  diagnose: Callable | None = None    # (pool records, round-start evaluation) -> dict


def sample(model, fmt: formats.Format, prompt_ids, *, max_new_tokens: int, temperature: float,
           rng, mesh, rows: int = 0):
  """(completion ids per row, texts, SamplerOutput) of one batched generate call."""
  out = sampler_lib.generate(model, prompt_ids, max_new_tokens=max_new_tokens, rng=rng,
                             temperature=temperature, eos_ids=fmt.eos_ids, pad_id=fmt.pad_id,
                             mesh=mesh, prompt_bucket=fmt.bucket, pad_batch_to=rows)
  tokens, lengths = np.asarray(out.tokens), np.asarray(out.lengths)
  ids = [t[:n].tolist() for t, n in zip(tokens, lengths)]
  return ids, [fmt.decode(i) for i in ids], out


@SETUPS.register('world')
def world_setup(config) -> Setup:
  c = config.setup
  w = world_lib.make_world(c.world_seed, c.entities, c.known_fraction)
  fmt = world_lib.world_format()
  keys = w.keys

  def evaluate(model, mesh):
    qs = [fmt.solver_ids(world_lib.question(e, r), None) for e, r in keys]
    _, texts, _ = sample(model, fmt, qs, max_new_tokens=config.solver.max_new_tokens,
                         temperature=0.0, rng=jax.random.PRNGKey(0), mesh=mesh)
    return world_lib.heldout_scores(w, dict(zip(keys, texts)))

  return Setup(
      fmt, world_lib.proposer_examples(w, c.sft_examples, config.seed, c.sft_seq_len),
      world_lib.generator_examples(w, c.sft_examples, config.seed, c.hinted_fraction,
                                   c.sft_seq_len),
      evaluate, lambda records, ev: world_lib.pool_diagnostics(w, records, ev['right']))


@SETUPS.register('chat')
def chat_setup(config) -> Setup:
  tok = tok_lib.load(config.setup.tokenizer)
  fmt = formats.chat_format(tok)
  heldout = tasks_lib.gsm8k_prompts(config.setup.num_eval, config.seed, 'test')

  def evaluate(model, mesh):
    _, texts, _ = sample(model, fmt, heldout.prompt_ids, temperature=0.0, mesh=mesh,
                         max_new_tokens=config.setup.eval_tokens, rng=jax.random.PRNGKey(0))
    return {'heldout': float(np.mean([heldout.reward(t, a)
                                      for t, a in zip(texts, heldout.answers)]))}

  return Setup(fmt, [], [], evaluate)


# ----------------------------------------------------------------------------- phases


def score_pairs(generator, fmt, pairs, config, rng, mesh, *, assisted: bool,
                rows: int) -> list[dict]:
  """Hint-δ records of valid (q, h) pairs: a_hard | q (and a_assisted | q, h) sampled at
  solver.temperature, δ of a_hard in one forward over both contexts."""
  s = config.solver
  n = len(pairs)
  if n == 0:
    return []
  q_ctx = [fmt.solver_ids(q, None) for q, _ in pairs]
  qh_ctx = [fmt.solver_ids(q, h) for q, h in pairs]
  ids, texts, _ = sample(generator, fmt, q_ctx + (qh_ctx if assisted else []),
                         max_new_tokens=s.max_new_tokens, temperature=s.temperature, rng=rng,
                         mesh=mesh, rows=rows)
  d = delta_lib.hint_delta(generator, q_ctx, qh_ctx, ids[:n], pad_id=fmt.pad_id,
                           answer_len=s.max_new_tokens, bucket=fmt.bucket, rows=2 * rows)
  records = []
  for i, (q, h) in enumerate(pairs):
    r = {'question': q, 'hint': h, 'a_hard': texts[i], 'a_hard_ids': ids[i],
         'logp_q': float(d['logp_q'][i]), 'logp_qh': float(d['logp_qh'][i]),
         'delta': float(d['delta'][i])}
    if assisted:
      r.update(a_assisted=texts[n + i], a_assisted_ids=ids[n + i])
    records.append(r)
  return records


def proposer_step(state, update, policy, generator, fmt, config, rng, mesh):
  """One Proposer GRPO step against the frozen Generator; `policy` and `generator` are
  (graphdef, full params). Returns (state, metrics row, the scored records)."""
  p = config.proposer
  n = p.batch_size * p.group_size
  r_sample, r_solver = jax.random.split(rng)
  _, texts, out = sample(policy, fmt, [fmt.proposer_ids] * n, max_new_tokens=p.max_new_tokens,
                             temperature=p.temperature, rng=r_sample, mesh=mesh)
  pairs = [prompts.extract_qh(t) for t in texts]
  valid = [i for i, (q, h) in enumerate(pairs) if q and h]
  records = score_pairs(generator, fmt, [pairs[i] for i in valid], config, r_solver, mesh,
                        assisted=False, rows=n)
  deltas: list[float | None] = [None] * n
  for i, r in zip(valid, records):
    deltas[i] = r['delta']
  rewards, parts = rewards_lib.proposer_rewards(pairs, deltas, reward_config(config))
  p_tokens, p_mask = sampler_lib.pad_prompts([fmt.proposer_ids] * n, fmt.pad_id,
                                             bucket=fmt.bucket)
  c_tokens, lengths = np.asarray(out.tokens), np.asarray(out.lengths)
  c_mask = (np.arange(c_tokens.shape[1])[None] < lengths[:, None]).astype(np.int32)
  tokens, kv_mask = grpo_learner.assemble(p_tokens, p_mask, c_tokens, c_mask)
  adv = grpo_learner.group_advantages(rewards, p.group_size,
                                      adv_lib.AdvantageConfig(**p.advantages))
  zeros = np.zeros(c_mask.shape, np.float32)
  batch = grpo_learner.RolloutBatch(tokens, kv_mask, c_mask, adv, zeros, zeros)
  state, metrics = update(state, batch, state.rng)
  ok = parts['valid'] > 0
  row = {'proposer/reward': float(rewards.mean()), 'proposer/valid_frac': float(ok.mean()),
         'proposer/delta_mean_valid': float(parts['delta'][ok].mean()) if ok.any() else None,
         'proposer/duplication_mean': float(parts['duplication'].mean()),
         'proposer/length_penalty_mean': float(parts['length'].mean()),
         'proposer/hint_chars': float(np.mean([len(h) for _, h in pairs if h])) if ok.any()
         else None,
         'proposer/completion_length': float(lengths.mean()),
         **{f'proposer/{k}': float(v) for k, v in jax.device_get(metrics).items()}}
  return state, {k: v for k, v in row.items() if v is not None}, records


def build_pool(proposer, generator, fmt, config, rng, mesh) -> list[dict]:
  """Phase 2: scored records of the Proposer's valid (q, h) with both Generator answers."""
  n = config.pool.num_questions
  r_sample, r_solver = jax.random.split(rng)
  _, texts, _ = sample(proposer, fmt, [fmt.proposer_ids] * n, temperature=config.proposer.temperature,
                       max_new_tokens=config.proposer.max_new_tokens, rng=r_sample, mesh=mesh)
  pairs = [qh for qh in map(prompts.extract_qh, texts) if qh[0] and qh[1]]
  return score_pairs(generator, fmt, pairs, config, r_solver, mesh, assisted=True, rows=2 * n)


def encode_pairs(fmt, pairs: list[dict], seq_len: int) -> dict[str, np.ndarray]:
  """PAIR_FIELDS arrays: prompt = the question alone, answers as the Generator sampled them."""
  rows = {f: [] for f in dpo_lib.PAIR_FIELDS}
  for pair in pairs:
    prompt = fmt.solver_ids(pair['prompt'], None)
    for side in ('chosen', 'rejected'):
      ex = data_lib.pad_example(prompt, pair[f'{side}_ids'], seq_len, fmt.pad_id)
      for name in ('tokens', 'loss_mask', 'attention_mask'):
        rows[f'{side}_{name}'].append(ex[name])
  return {k: np.stack(v) for k, v in rows.items()}


# ----------------------------------------------------------------------------- config


def reward_config(config) -> rewards_lib.RewardConfig:
  return rewards_lib.RewardConfig(**config.reward)


def filter_config(config) -> pool_lib.FilterConfig:
  f = dict(config.pool.filter)
  f['role_markers'] = tuple(f.get('role_markers', pool_lib.FilterConfig.role_markers))
  return pool_lib.FilterConfig(**f)


def validate(config) -> None:
  config_lib.check_choice(config, 'setup.name', SETUPS.names())
  config_lib.check_positive(config, 'proposer.batch_size', 'proposer.group_size',
                            'proposer.max_new_tokens', 'solver.max_new_tokens',
                            'pool.num_questions', 'dpo.batch_size', 'dpo.seq_len')
  for field, value in (('rounds', config.rounds), ('proposer.steps', config.proposer.steps),
                       ('dpo.max_steps', config.dpo.max_steps)):
    config_lib.require(value >= 0, field, f'must be >= 0, got {value}')
  if grpo_runner.opt(config, 'lora.rank') > 0:
    try:
      grpo_runner.lora_config(config)
    except ValueError as e:
      raise config_lib.ConfigError(f'config.{e}') from None
    config_lib.require(config.warmup.proposer.steps == config.warmup.generator.steps == 0,
                       'warmup', 'the SFT warm-ups train full models; with LoRA set them to 0')
  for field, make in (('reward', lambda: reward_config(config)),
                      ('pool.filter', lambda: filter_config(config)),
                      ('dpo', lambda: dpo_loss_config(config)),
                      ('proposer.advantages',
                       lambda: adv_lib.AdvantageConfig(**config.proposer.advantages))):
    try:
      make()
    except (TypeError, ValueError) as e:
      raise config_lib.ConfigError(f'config.{field}: {e}') from None


def dpo_loss_config(config) -> dpo_lib.DPOLossConfig:
  return dpo_lib.DPOLossConfig(loss_type=config.dpo.loss_type, beta=config.dpo.beta)


def proposer_loss_config(config) -> grpo_lib.GRPOLossConfig:
  p = config.proposer
  return grpo_lib.GRPOLossConfig(loss_type=p.loss_type, beta=0.0, epsilon=p.epsilon,
                                 max_completion_length=p.max_new_tokens)


# ----------------------------------------------------------------------------- the loop


def _dpo_steps(n_pairs: int, config) -> int:
  n_batches = n_pairs // config.dpo.batch_size
  return min(config.dpo.max_steps, n_batches * config.dpo.epochs)


@registry.experiment('gzero')
def run(config, workdir: str) -> dict:
  validate(config)
  workdir = pathlib.Path(workdir)
  t_start = time.time()
  mesh = mesh_lib.make_mesh(config.mesh)
  for field, rows in (('proposer.batch_size', config.proposer.batch_size *
                       config.proposer.group_size), ('dpo.batch_size', config.dpo.batch_size)):
    config_lib.require(rows % mesh_lib.batch_divisor(mesh) == 0, field,
                       f'{rows} rows do not split over {mesh_lib.batch_divisor(mesh)} devices')
  setup = SETUPS.get(config.setup.name)(config)
  fmt = setup.format

  # --- abstract states: the two policies, the DPO reference and the cursor, one pytree
  mcfg, graphdef, abstract_params, abstract_pure, full_params = grpo_runner.model_fns(config)
  param_shardings = mesh_lib.param_shardings(abstract_params, mesh)
  lcfg = grpo_runner.lora_config(config)
  load_base = lambda: (families.load_hf_params(config.model, mesh) if config.model.hf_dir  # noqa: E731
                       else jax.jit(full_params, out_shardings=param_shardings)())
  policy = lora_lib.Trainable(lcfg, param_shardings, load_base() if lcfg else None)
  proposer_opt = train_lib.make_optimizer(config.proposer.optimizer,
                                          max(1, config.rounds * config.proposer.steps))
  dpo_opt = lambda steps: train_lib.make_optimizer(config.dpo.optimizer, max(1, steps))  # noqa: E731
  init_p, abstract_p, shard_p = train_lib.sharded_state(
      policy.init_fn(full_params, abstract_pure, config.seed), policy.shardings, proposer_opt,
      config.seed, mesh)
  init_g, abstract_g, shard_g = train_lib.sharded_state(
      policy.init_fn(full_params, abstract_pure, config.seed + 1), policy.shardings,
      dpo_opt(config.dpo.max_steps), config.seed + 1, mesh)
  replicated = mesh_lib.replicated(mesh)
  abstract = {'proposer': abstract_p, 'generator': abstract_g, 'reference': abstract_g.params,
              'cursor': jax.ShapeDtypeStruct((3,), jnp.int32, sharding=replicated)}
  writer = metrics_lib.MetricWriter(workdir)
  ckpt = ckpt_lib.Checkpointer(workdir / 'checkpoints', config.checkpoint.every,
                               config.checkpoint.keep, config.checkpoint.async_save)

  def fresh():
    """Both roles from the same base (HF weights or scratch), then their SFT warm-ups; with
    LoRA, fresh adapters (B = 0) over the shared frozen base."""
    if lcfg is not None:
      roles = {'proposer': init_p(), 'generator': init_g()}
      return {**roles, 'reference': jax.tree.map(jnp.copy, roles['generator'].params),
              'cursor': jax.device_put(np.array([1, PROPOSER, 0], np.int32), replicated)}
    base = load_base()
    roles = {}
    for name, examples, opt, shard, seed in (
        ('proposer', setup.proposer_sft, proposer_opt, shard_p, config.seed),
        ('generator', setup.generator_sft, dpo_opt(config.dpo.max_steps), shard_g,
         config.seed + 1)):
      params = grpo_runner.sft_warm_up(jax.tree.map(jnp.copy, base), graphdef, examples,
                                       config.warmup[name], seed, writer, prefix=f'{name}_sft')
      roles[name] = train_lib.init_from_params(params, opt, seed, shard)
    return {**roles, 'reference': jax.tree.map(jnp.copy, roles['generator'].params),
            'cursor': jax.device_put(np.array([1, PROPOSER, 0], np.int32), replicated)}

  state, tick = train_lib.restore_or_init(ckpt, abstract, fresh, None,
                                          config.get('init_from', '') or None)
  writer.truncate_after(tick)
  rnd, phase, step = (int(x) for x in np.asarray(state['cursor']))

  def save(force: bool = False):
    state['cursor'] = jax.device_put(np.array([rnd, phase, step], np.int32), replicated)
    ckpt.save(tick, state, force=force)

  generator = lambda: (graphdef, policy.full(state['generator'].params))  # noqa: E731
  if tick == 0:
    save(force=True)
    ev = setup.evaluate(generator(), mesh)
    writer.write(0, {'round': 0, **_eval_row(ev)})

  proposer_update = policy.compile(
      grpo_learner.make_loss_fn(graphdef, proposer_loss_config(config), use_old_logps=False,
                                temperature=config.proposer.temperature),
      proposer_opt, shard_p, mesh)
  ref_logps = jax.jit(dpo_lib.make_reference_logps_fn(graphdef))
  key = jax.random.PRNGKey(config.seed + 2)
  rng_for = lambda *path: jax.random.fold_in(  # noqa: E731
      key, int(np.ravel_multi_index(path, (1000, 8, 100_000))))

  while rnd <= config.rounds:
    round_dir = workdir / f'round_{rnd}'
    if phase == PROPOSER:
      bar = metrics_lib.progress(config.proposer.steps, initial=step, desc=f'round {rnd} proposer')
      while step < config.proposer.steps:
        step += 1
        t0 = time.time()
        state['proposer'], row, _ = proposer_step(
            state['proposer'], proposer_update, (graphdef, policy.full(state['proposer'].params)),
            generator(), fmt, config, rng_for(rnd, PROPOSER, step), mesh)
        tick += 1
        writer.write(tick, {'round': rnd, **row, 'proposer/step_s': time.time() - t0})
        train_lib.check_finite([tick], {'loss': np.array([row['proposer/loss']])})
        bar.update(1)
        save(force=step == config.proposer.steps)
      bar.close()
      phase, step = POOL, 0
    if phase == POOL:
      # the round-start Generator, for the setup's pool diagnostics (a checker; not training)
      start_eval = setup.evaluate(generator(), mesh) if setup.diagnose else None
      records = build_pool((graphdef, policy.full(state['proposer'].params)), generator(), fmt,
                           config, rng_for(rnd, POOL, 0), mesh)
      kept, counts = pool_lib.filter_pool(records, filter_config(config))
      data_lib.write_jsonl(round_dir / 'pool.jsonl', records)
      data_lib.write_jsonl(round_dir / 'dpo.jsonl', [
          {**pair, 'chosen_ids': r['a_assisted_ids'], 'rejected_ids': r['a_hard_ids']}
          for pair, r in zip(pool_lib.dpo_pairs(kept), kept)])
      tick += 1
      writer.write(tick, {'round': rnd, **_pool_row(records, kept, counts, config),
                          **({f'pool/{k}': v for k, v in setup.diagnose(records, start_eval)
                              .items()} if setup.diagnose else {})})
      phase, step = DPO, 0
      save(force=True)
    if phase == DPO:
      pairs = data_lib.read_jsonl(round_dir / 'dpo.jsonl')
      total = _dpo_steps(len(pairs), config)
      opt = dpo_opt(total)
      if step == 0:   # the round's reference and a fresh optimizer (its schedule spans the round)
        state['reference'] = jax.tree.map(jnp.copy, state['generator'].params)
        state['generator'] = train_lib.init_from_params(state['generator'].params, opt,
                                                        config.seed + 1, shard_g)
      if total:
        loss_cfg = dpo_loss_config(config)
        dpo_update = policy.compile(
            lambda params, batch: dpo_lib.batch_loss(params, graphdef, batch, loss_cfg),
            opt, shard_g, mesh)
        order = np.random.default_rng([config.seed, rnd]).permutation(len(pairs))
        bar = metrics_lib.progress(total, initial=step, desc=f'round {rnd} dpo')
        while step < total:
          bs = config.dpo.batch_size
          epoch_pos = (step * bs) % (len(pairs) // bs * bs)
          batch = encode_pairs(fmt, [pairs[i] for i in order[epoch_pos:epoch_pos + bs]],
                               config.dpo.seq_len)
          batch.update(jax.device_get(ref_logps(policy.full(state['reference']), batch)))
          state['generator'], m = dpo_update(state['generator'], batch, state['generator'].rng)
          step += 1
          tick += 1
          m = {k: float(v) for k, v in jax.device_get(m).items()}
          train_lib.check_finite([tick], {'loss': np.array([m['loss']])})
          writer.write(tick, {'round': rnd, **{f'dpo/{k}': v for k, v in m.items()}})
          bar.update(1)
          save(force=step == total)
        bar.close()
      else:
        print(f'round {rnd}: no DPO pairs survived the filter; the Generator is unchanged',
              flush=True)
      phase, step = EVAL, 0
    if phase == EVAL:
      ev = setup.evaluate(generator(), mesh)
      tick += 1
      writer.write(tick, {'round': rnd, **_eval_row(ev)})
      rnd, phase, step = rnd + 1, PROPOSER, 0
      save(force=True)
  ckpt.close()
  if lcfg is not None and not (workdir / 'generator_hf').exists():   # the Generator, merged
    lora_lib.export_merged(workdir / 'generator_hf', policy.base, state['generator'].params,
                           lcfg, mcfg, tokenizer_dir=config.model.hf_dir or None)
  return summarize(workdir, config, time.time() - t_start)


def _eval_row(ev: dict) -> dict:
  return {f'eval/{k}': v for k, v in ev.items() if k != 'right'}


def _pool_row(records, kept, counts, config) -> dict:
  deltas = np.array([r['delta'] for r in records]) if records else np.zeros(0)
  row = {f'pool/{k}': v for k, v in counts.items()}
  row['pool/valid_rate'] = len(records) / config.pool.num_questions
  row['pool/filtered_fraction'] = 1.0 - len(kept) / max(1, len(records))
  if len(deltas):
    row.update({'pool/delta_mean': float(deltas.mean()), 'pool/delta_std': float(deltas.std())})
    for q in (10, 25, 50, 75, 90):
      row[f'pool/delta_p{q}'] = float(np.percentile(deltas, q))
  return row


def _mean(rows, key):
  values = [r[key] for r in rows if r.get(key) is not None]
  return float(np.mean(values)) if values else None


def round_summaries(rows: list[dict]) -> list[dict]:
  """One dict per round (0 = after the warm-ups) from metrics.jsonl rows."""
  out = []
  for rnd in sorted({r['round'] for r in rows if 'round' in r}):
    rr = [r for r in rows if r.get('round') == rnd]
    evals = [r for r in rr if 'eval/heldout' in r]
    summary = {'round': rnd, 'generator_heldout': evals[-1]['eval/heldout'] if evals else None}
    for k in ('heldout_known', 'heldout_unknown'):
      summary[f'generator_{k}'] = evals[-1].get(f'eval/{k}') if evals else None
    for name, key in (('proposer_reward', 'proposer/reward'),
                      ('proposer_delta', 'proposer/delta_mean_valid'),
                      ('proposer_duplication', 'proposer/duplication_mean'),
                      ('proposer_valid', 'proposer/valid_frac'),
                      ('dpo_loss', 'dpo/loss'), ('dpo_accuracy', 'dpo/rewards/accuracies')):
      summary[name] = _mean(rr, key)
    pool = next((r for r in rr if 'pool/kept' in r), {})
    summary.update({k[len('pool/'):]: v for k, v in pool.items() if k.startswith('pool/')})
    out.append(summary)
  return out


def summarize(workdir: pathlib.Path, config, wall_s: float) -> dict:
  rounds = round_summaries(metrics_lib.read_metrics(workdir))
  results = {'rounds': rounds, 'wall_s': round(wall_s, 1),
             'final_generator_heldout': rounds[-1]['generator_heldout'] if rounds else None,
             'start_generator_heldout': rounds[0]['generator_heldout'] if rounds else None}
  metrics_lib.plot_curves(rounds, ROUND_KEYS, workdir / 'gzero.png', x='round',
                          title='G-Zero rounds')
  metrics_lib.write_json(workdir / 'results.json', results)
  print('rounds: ' + '; '.join(
      f"r{r['round']} heldout {r['generator_heldout']}" for r in rounds), flush=True)
  return results
