"""Experiment 'disbert': DisBert (or the plain cross-encoder baseline) on STS-B, SICK-R, MRPC.

  python -m jaxpapers.launch --config=configs/disbert_stsb.py --workdir=W
  python -m jaxpapers.launch --config=configs/disbert_stsb.py:baseline --workdir=W

Stages: validate, mesh, data (rows checked, tokenised, BoW over the train vocabulary), then
per seed: model (pretrained backbone + new modules), the stage schedule (`steps.Stage`, each
a jitted data-parallel step run by core.train.run_loop), dev evaluation every `eval_every`
steps of task stages, test metrics of the best-dev parameters (and of the last ones).
Outputs: W/metrics.jsonl (stage losses, codebook perplexity, dev metrics), W/results.json
(per seed and mean/std over seeds), W/topics.txt (top words per topic), W/loss.png.

The baseline runs only the schedule's task stages, with the same steps, batch, learning
rates and seeds, and trains only the backbone and head (no topic model, VQ or extra
attention). Checkpointing is not wired: runs are minutes to an hour and restart cheaply.
"""
from __future__ import annotations

import dataclasses
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from jaxpapers.core import config as config_lib
from jaxpapers.core import data as data_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import bert as bert_lib
from jaxpapers.papers.disbert import data as pairs
from jaxpapers.papers.disbert import metrics as sts_metrics
from jaxpapers.papers.disbert import model as model_lib
from jaxpapers.papers.disbert import ntm as ntm_lib
from jaxpapers.papers.disbert import steps as steps_lib
from jaxpapers.papers.disbert import vq as vq_lib

require = config_lib.require
SELECT = {'regression': 'spearman', 'classification': 'accuracy'}
INPUTS = ('input_ids', 'token_type_ids', 'attention_mask')


def validate(c) -> None:
  """Every check names the field and the value received (ConfigError)."""
  config_lib.check_choice(c, 'task', pairs.TASKS.names())
  config_lib.check_positive(c, 'seq_len', 'eval_batch_size', 'log_every', 'data.vocab_size',
                            'data.min_count', 'data.max_words', 'disbert.num_topics',
                            'disbert.topic_dim', 'disbert.ntm_hidden', 'loss.tau')
  config_lib.check_choice(c, 'disbert.pool', model_lib.POOLS)
  config_lib.check_choice(c, 'loss.regression_loss', steps_lib.REGRESSION_LOSSES)
  require(bool(seeds(c)), 'seeds', f'{c.seeds!r}: give comma-separated integers')
  names = [s for s in c.schedule.split(',') if s]
  require(bool(names), 'schedule', 'names no stage')
  for name in names:
    require(name in c.stages, 'schedule', f'stage {name!r} not in config.stages '
            f'{sorted(c.stages)}')
    st = c.stages[name]
    config_lib.check_positive(c, f'stages.{name}.batch_size', f'stages.{name}.learning_rate',
                              f'stages.{name}.epochs')
    bad = set(st.train.split(',')) - set(steps_lib.GROUPS)
    require(not bad, f'stages.{name}.train', f'unknown groups {sorted(bad)}; valid '
            f'{steps_lib.GROUPS}')
  require(any(c.stages[n].task > 0 for n in names), 'schedule',
          'no stage has a task loss weight > 0')
  try:
    mesh_lib.mesh_shape(c.mesh)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.{e}') from None


def seeds(c) -> list[int]:
  try:
    return [int(s) for s in str(c.seeds).split(',') if s.strip()]
  except ValueError:
    return []


def stages_from(c) -> list[steps_lib.Stage]:
  """The schedule as Stage objects; the baseline keeps task stages, task loss, bert + head."""
  out = []
  for name in c.schedule.split(','):
    s = c.stages[name]
    stage = steps_lib.Stage(
        name=name, epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate,
        train=tuple(s.train.split(',')), task=s.task, vq=s.vq, topic=s.topic, ntm=s.ntm,
        new_lr_mult=s.new_lr_mult, warmup_ratio=s.warmup_ratio, weight_decay=s.weight_decay,
        max_grad_norm=s.max_grad_norm, backbone_grad=s.backbone_grad,
        init_codebook=s.init_codebook, eval_every=s.eval_every)
    if c.baseline:
      if not stage.task:
        continue
      stage = dataclasses.replace(stage, vq=0.0, topic=0.0, ntm=0.0, init_codebook=False,
                                  train=tuple(g for g in stage.train if g in ('bert', 'head')))
    out.append(stage)
  return out


# ----------------------------------------------------------------------------- pieces


def to_global(batch, mesh) -> dict:
  """Host rows -> global arrays, each split on the batch axes whatever its rank."""
  return {k: jax.make_array_from_process_local_data(mesh_lib.batch_sharding(mesh, v.ndim), v)
          for k, v in batch.items()}


def load_data(c, task, tokenizer):
  """(train, dev, test arrays, BoW vocabulary, data report)."""
  report, rows = {}, {}
  for split in ('train', 'dev', 'test'):
    limit = c.data.train_limit if split == 'train' else c.data.eval_limit
    rows[split], report[f'{split}_dropped'] = pairs.load_split(task, split, limit,
                                                               c.data.skip_bad_rows)
  vocab = pairs.build_vocab([r[k] for r in rows['train'] for k in ('a', 'b')],
                            c.data.vocab_size, c.data.min_count)
  arrays = {}
  for split in ('train', 'dev', 'test'):
    arrays[split], report[f'{split}_truncated'] = pairs.encode(
        rows[split], task, tokenizer, c.seq_len, vocab, c.data.max_words)
    report[split] = pairs.summary(arrays[split])
  report['bow_vocab'] = len(vocab)
  return arrays, vocab, report


def backbone(c, vocab_size: int, seed: int) -> bert_lib.Bert:
  m = c.model
  if m.random_init:
    cfg = bert_lib.BertConfig(vocab_size=vocab_size, hidden_size=m.hidden_size,
                              intermediate_size=m.intermediate_size,
                              num_hidden_layers=m.num_hidden_layers,
                              num_attention_heads=m.num_attention_heads, add_pooling_layer=False,
                              dtype=m.dtype)
    return bert_lib.init(cfg, seed)
  return bert_lib.from_pretrained(m.hf_dir or bert_lib.minilm_dir(), dtype=m.dtype,
                                  add_pooling_layer=False)


def evaluate(predict, params, arrays, batch_size: int, sharding, kind: str,
             num_codes: int) -> dict:
  """Task metrics (+ codebook perplexity and codes used over valid tokens) on one split."""
  preds, counts = [], np.zeros((num_codes,), np.float64)
  for b in pairs.eval_batches(arrays, batch_size):
    p, idx = predict(params, data_lib.to_global({k: b[k] for k in INPUTS}, sharding))
    keep = b['weight'] > 0
    preds.append(np.asarray(multihost_utils.process_allgather(p, tiled=True))[keep])
    if idx is not None:
      idx = np.asarray(multihost_utils.process_allgather(idx, tiled=True))[keep]
      mask = b['attention_mask'][keep] > 0
      counts += np.bincount(idx[mask], minlength=num_codes)
  pred, label = np.concatenate(preds), arrays['label']
  if kind == 'regression':
    out = sts_metrics.regression_metrics(pred, label)
  else:
    out = sts_metrics.classification_metrics(pred.argmax(-1), label.astype(np.int64))
  if counts.sum():
    out['code_perplexity'] = float(vq_lib.perplexity(jnp.asarray(counts)))
    out['codes_used'] = int((counts > 0).sum())
  return out


# ----------------------------------------------------------------------------- one seed


def run_seed(c, seed: int, mesh, task, arrays, vocab, vocab_size: int, writer, step0: int):
  """Trains the schedule for one seed; returns (results dict, last global step)."""
  t0 = time.time()
  kind = task.kind
  mcfg = model_lib.DisBertConfig(
      num_topics=c.disbert.num_topics, topic_dim=c.disbert.topic_dim, bow_vocab=len(vocab),
      ntm_hidden=c.disbert.ntm_hidden, use_vq=not c.baseline,
      sem_attention=c.disbert.sem_attention, sem_scale=c.disbert.sem_scale,
      num_outputs=task.num_outputs, pool=c.disbert.pool, head_dropout=c.disbert.head_dropout)
  lcfg = steps_lib.LossConfig(kind=kind, regression_loss=c.loss.regression_loss,
                              commitment=c.loss.commitment, tau=c.loss.tau,
                              usage_decay=c.loss.usage_decay,
                              dead_threshold=c.loss.dead_threshold,
                              reinit_every=c.loss.reinit_every)
  from flax import nnx  # pylint: disable=import-outside-toplevel
  model = model_lib.build(mcfg, backbone(c, vocab_size, seed), seed)
  graphdef, state = nnx.split(model)
  params = jax.device_put(nnx.to_pure_dict(state), mesh_lib.param_shardings(state, mesh))
  del model, state
  batch_sharding = mesh_lib.batch_sharding(mesh)
  predict = jax.jit(steps_lib.make_predict(graphdef, kind))
  n_train = len(arrays['train']['label'])
  usage = jnp.full((mcfg.num_topics if mcfg.use_vq else 1,), 1.0 / mcfg.num_topics)
  step, best, history = step0, None, []
  key = jax.random.PRNGKey(seed)
  for i, stage in enumerate(stages_from(c)):
    config_lib.check_divisible(c, f'stages.{stage.name}.batch_size',
                               mesh_lib.batch_divisor(mesh), f'mesh {dict(mesh.shape)}')
    if stage.init_codebook:
      params = {**params, 'codebook': jnp.array(params['ntm']['topic_emb'])}
    n_steps = stage.num_steps(n_train)
    optimizer = steps_lib.stage_optimizer(stage, n_steps)
    st = jax.jit(lambda p, o=optimizer, s=step, u=usage: steps_lib.State(
        step=jnp.asarray(s, jnp.int32), params=p, opt_state=o.init(p),
        rng=jax.random.fold_in(key, i), usage=u))(params)
    shardings = jax.tree.map(lambda x: x.sharding, st)
    step_fn = train_lib.compile_step(steps_lib.make_train_step(graphdef, optimizer, stage, lcfg),
                                     shardings, mesh, {k: 2 for k in
                                                       (*INPUTS, 'bow_ids', 'bow_counts')} |
                                     {'label': 1})
    it = pairs.train_batches(arrays['train'], stage.batch_size, seed * 1000 + i)
    batches = (to_global(b, mesh) for b in it)
    every = stage.eval_every if (stage.task and stage.eval_every) else n_steps
    end = step + n_steps
    print(f'seed {seed} stage {stage.name}: {n_steps} steps of {stage.batch_size} pairs',
          flush=True)
    while step < end:
      stop = min(step + every, end)
      st = train_lib.run_loop(step_fn, st, batches, start_step=step, total_steps=stop,
                              log_every=c.log_every, checkpointer=None, writer=writer,
                              desc=f'{stage.name}')
      step = stop
      if stage.task:
        dev = evaluate(predict, st.params, arrays['dev'], c.eval_batch_size, batch_sharding,
                       kind, mcfg.num_topics)
        writer.write(step, {f'dev/{k}': v for k, v in dev.items()} | {'seed': seed})
        history.append({'step': step, **dev})
        metric = c.select_metric or SELECT[kind]
        if best is None or dev[metric] > best[0][metric]:
          best = (dict(dev, step=step), jax.tree.map(jnp.copy, st.params))
    params, usage = st.params, st.usage
  test_last = evaluate(predict, params, arrays['test'], c.eval_batch_size, batch_sharding, kind,
                       mcfg.num_topics)
  test_best = evaluate(predict, best[1], arrays['test'], c.eval_batch_size, batch_sharding,
                       kind, mcfg.num_topics)
  out = {'seed': seed, 'dev_best': best[0], 'test': test_best, 'test_last': test_last,
         'dev_history': history, 'wall_s': round(time.time() - t0, 1)}
  if mcfg.use_vq:
    ntm_model = nnx.merge(graphdef, params).ntm
    out['topics'] = ntm_lib.top_words(ntm_model.log_beta(), vocab, c.topic_words)
  return out, step


@registry.experiment('disbert')
def run(config, workdir: str) -> dict:
  validate(config)
  workdir = pathlib.Path(workdir)
  t_start = time.time()

  # --- mesh
  mesh = mesh_lib.make_mesh(config.mesh)
  print(f'mesh: {mesh_lib.describe(mesh)}', flush=True)

  # --- data
  task = pairs.TASKS.get(config.task)
  tok_dir = config.model.tokenizer_dir or config.model.hf_dir or None
  tokenizer = bert_lib.load_tokenizer(tok_dir)
  arrays, vocab, report = load_data(config, task, tokenizer)
  print(f'data {task.name}: {report}', flush=True)

  # --- seeds
  writer = metrics_lib.MetricWriter(workdir)
  writer.truncate_after(0)
  runs, step = [], 0
  for seed in seeds(config):
    result, step = run_seed(config, seed, mesh, task, arrays, vocab, len(tokenizer), writer,
                            step)
    runs.append(result)
    print(f'seed {seed}: dev {result["dev_best"]} test {result["test"]}', flush=True)

  # --- results
  keys = [k for k in runs[0]['test'] if isinstance(runs[0]['test'][k], float)]
  results = {
      'task': task.name, 'system': 'baseline' if config.baseline else 'disbert',
      'selected_on': config.select_metric or SELECT[task.kind], 'data': report,
      'test_mean': {k: float(np.mean([r['test'][k] for r in runs])) for k in keys},
      'test_std': {k: float(np.std([r['test'][k] for r in runs])) for k in keys},
      'seeds': runs, 'wall_s': round(time.time() - t_start, 1)}
  metrics_lib.write_json(workdir / 'results.json', results)
  if 'topics' in runs[0]:
    lines = [f'topic {k:2d}: {" ".join(w)}' for k, w in enumerate(runs[0]['topics'])]
    (workdir / 'topics.txt').write_text('\n'.join(lines) + '\n')
  rows = metrics_lib.read_metrics(workdir)
  metrics_lib.plot_curves(rows, ['loss', 'task_loss', 'ntm_nll', 'code_perplexity'],
                          workdir / 'loss.png', title=f'{results["system"]} on {task.name}')
  print(f'done: test {results["test_mean"]} (std {results["test_std"]}) in '
        f'{results["wall_s"]} s; outputs in {workdir}', flush=True)
  return results
