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
import functools
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils

from jaxpapers.core import config as config_lib
from jaxpapers.core import data as data_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import bert as bert_lib
from jaxpapers.core.retrieval import dense
from jaxpapers.papers.disbert import data as pairs
from jaxpapers.papers.disbert import metrics as sts_metrics
from jaxpapers.papers.disbert import model as model_lib
from jaxpapers.papers.disbert import ntm as ntm_lib
from jaxpapers.papers.disbert import steps as steps_lib
from jaxpapers.papers.disbert import vq as vq_lib

require = config_lib.require
SELECT = {'regression': 'spearman', 'classification': 'accuracy'}
INPUTS = pairs.TOKEN_FIELDS


def validate(c) -> None:
  """Every check names the field and the value received (ConfigError)."""
  config_lib.check_choice(c, 'task', pairs.TASKS.names())
  config_lib.check_positive(c, 'seq_len', 'eval_batch_size', 'log_every', 'data.vocab_size',
                            'data.min_count', 'data.max_words', 'disbert.num_topics',
                            'disbert.topic_dim', 'disbert.ntm_hidden', 'loss.tau')
  config_lib.check_choice(c, 'disbert.pool', model_lib.POOLS)
  config_lib.check_choice(c, 'loss.regression_loss', steps_lib.REGRESSION_LOSSES)
  require(c.data.bucket >= 0, 'data.bucket', f'must be >= 0, got {c.data.bucket!r}')
  require(c.seq_len <= 512, 'seq_len', f'{c.seq_len} > 512 BERT positions')
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
  """(train, dev, test arrays, BoW vocabulary, data report, checked rows per split)."""
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
  return arrays, vocab, report, rows


def zero_shot(c, tokenizer, rows, splits=('dev', 'test')) -> dict:
  """The untrained backbone as the bi-encoder it was built as: cosine of mean-pooled
  sentence embeddings vs the label on dev and test (regression tasks). A reference point for
  the cross-encoders: all-MiniLM-L6-v2 is a sentence-embedding model."""
  encoder = dense.Encoder(backbone(c, len(tokenizer), 0), tokenizer)
  out = {}
  for split in splits:
    a = encoder.encode([r['a'] for r in rows[split]])
    b = encoder.encode([r['b'] for r in rows[split]])      # unit vectors: dot = cosine
    out[split] = sts_metrics.regression_metrics(np.sum(a * b, axis=-1),
                                                [r['label'] for r in rows[split]])
  return out


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
             num_codes: int, bucket: int = 0) -> dict:
  """Task metrics (+ codebook perplexity and codes used over valid tokens) on one split."""
  preds, counts = [], np.zeros((num_codes,), np.float64)
  for b in pairs.eval_batches(arrays, batch_size):
    b = pairs.trim(b, bucket)
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


def fresh_state(params, usage, rng, *, optimizer, step: int) -> steps_lib.State:
  """A stage's state: its own optimizer state, the global step and code usage carried on."""
  return steps_lib.State(step=jnp.asarray(step, jnp.int32), params=params,
                         opt_state=optimizer.init(params), rng=rng, usage=usage)


def model_config(c, task, vocab) -> model_lib.DisBertConfig:
  return model_lib.DisBertConfig(
      num_topics=c.disbert.num_topics, topic_dim=c.disbert.topic_dim, bow_vocab=len(vocab),
      ntm_hidden=c.disbert.ntm_hidden, word_norm=c.disbert.word_norm, use_vq=not c.baseline,
      sem_attention=c.disbert.sem_attention, sem_scale=c.disbert.sem_scale,
      num_outputs=task.num_outputs, pool=c.disbert.pool, head_dropout=c.disbert.head_dropout)


def loss_config(c, task) -> steps_lib.LossConfig:
  return steps_lib.LossConfig(kind=task.kind, regression_loss=c.loss.regression_loss,
                              commitment=c.loss.commitment, tau=c.loss.tau,
                              usage_decay=c.loss.usage_decay,
                              dead_threshold=c.loss.dead_threshold,
                              reinit_every=c.loss.reinit_every,
                              kl_warmup_steps=c.loss.kl_warmup_steps)


@dataclasses.dataclass
class Run:
  """What one seed's stages share: model graph, eval fn, data, and the running best."""
  graphdef: object
  predict: object
  mesh: object
  arrays: dict
  num_codes: int
  writer: object
  best: tuple | None = None          # (dev metrics + step, params copy)
  history: list = dataclasses.field(default_factory=list)

  def evaluate(self, c, params, split: str, kind: str) -> dict:
    return evaluate(self.predict, params, self.arrays[split], c.eval_batch_size,
                    mesh_lib.batch_sharding(self.mesh), kind, self.num_codes, c.data.bucket)


def train_stage(c, run: Run, stage: steps_lib.Stage, st: steps_lib.State, lcfg, seed: int,
                index: int, step: int) -> tuple[steps_lib.State, int]:
  """Runs one stage from global `step`; task stages evaluate dev every `eval_every` steps."""
  n_steps = stage.num_steps(len(run.arrays['train']['label']))
  optimizer = steps_lib.stage_optimizer(stage, n_steps)
  st = jax.jit(functools.partial(fresh_state, optimizer=optimizer, step=step))(
      st.params, st.usage, st.rng)
  shardings = jax.tree.map(lambda x: x.sharding, st)
  ndims = {k: 2 for k in (*INPUTS, 'bow_ids', 'bow_counts')} | {'label': 1}
  step_fn = train_lib.compile_step(
      steps_lib.make_train_step(run.graphdef, optimizer, stage, lcfg), shardings, run.mesh,
      ndims)
  it = pairs.train_batches(run.arrays['train'], stage.batch_size, seed * 1000 + index)
  batches = (to_global(pairs.trim(b, c.data.bucket), run.mesh) for b in it)
  every = stage.eval_every if (stage.task and stage.eval_every) else n_steps
  end = step + n_steps
  print(f'seed {seed} stage {stage.name}: {n_steps} steps of {stage.batch_size} pairs',
        flush=True)
  while step < end:
    stop = min(step + every, end)
    st = train_lib.run_loop(step_fn, st, batches, start_step=step, total_steps=stop,
                            log_every=c.log_every, checkpointer=None, writer=run.writer,
                            desc=stage.name)
    step = stop
    if stage.task:
      dev = run.evaluate(c, st.params, 'dev', lcfg.kind)
      run.writer.write(step, {f'dev/{k}': v for k, v in dev.items()} | {'seed': seed})
      run.history.append({'step': step, **dev})
      metric = c.select_metric or SELECT[lcfg.kind]
      if run.best is None or dev[metric] > run.best[0][metric]:
        run.best = (dict(dev, step=step), jax.tree.map(jnp.copy, st.params))
  return st, step


def run_seed(c, seed: int, mesh, task, arrays, vocab, vocab_size: int, writer, step0: int):
  """Trains the schedule for one seed; returns (results dict, last global step)."""
  t0 = time.time()
  mcfg, lcfg = model_config(c, task, vocab), loss_config(c, task)
  model = model_lib.build(mcfg, backbone(c, vocab_size, seed), seed)
  graphdef, state = nnx.split(model)
  params = jax.device_put(nnx.to_pure_dict(state), mesh_lib.param_shardings(state, mesh))
  del model, state
  run = Run(graphdef, jax.jit(steps_lib.make_predict(graphdef, task.kind)), mesh, arrays,
            mcfg.num_topics, writer)
  k = mcfg.num_topics if mcfg.use_vq else 1
  # Placeholder optimizer state; each stage builds its own in train_stage.
  st = steps_lib.State(step=jnp.zeros((), jnp.int32), params=params, opt_state=(),
                       rng=jax.random.PRNGKey(seed), usage=jnp.full((k,), 1.0 / k))
  step = step0
  for i, stage in enumerate(stages_from(c)):
    config_lib.check_divisible(c, f'stages.{stage.name}.batch_size',
                               mesh_lib.batch_divisor(mesh), f'mesh {dict(mesh.shape)}')
    if stage.init_codebook:
      st = st.replace(params={**st.params, 'codebook': jnp.array(st.params['ntm']['topic_emb'])})
    st = st.replace(rng=jax.random.fold_in(jax.random.PRNGKey(seed), i))
    st, step = train_stage(c, run, stage, st, lcfg, seed, i, step)
  out = {'seed': seed, 'dev_best': run.best[0],
         'test': run.evaluate(c, run.best[1], 'test', task.kind),
         'test_last': run.evaluate(c, st.params, 'test', task.kind),
         'dev_history': run.history, 'wall_s': round(time.time() - t0, 1)}
  if mcfg.use_vq:
    log_beta = nnx.merge(graphdef, st.params).ntm.log_beta()
    out['topics'] = ntm_lib.top_words(log_beta, vocab, c.topic_words)
    out['topic_diversity'] = ntm_lib.diversity(out['topics'])
  return out, step


@registry.experiment('disbert')
def run(config, workdir: str) -> dict:
  validate(config)
  workdir = pathlib.Path(workdir)
  t_start = time.time()

  # --- mesh
  mesh = mesh_lib.make_batch_mesh(config, batch_field=None)

  # --- data
  task = pairs.TASKS.get(config.task)
  tok_dir = config.model.tokenizer_dir or config.model.hf_dir or None
  tokenizer = bert_lib.load_tokenizer(tok_dir)
  arrays, vocab, report, rows = load_data(config, task, tokenizer)
  print(f'data {task.name}: {report}', flush=True)
  reference = {}
  if config.zero_shot and task.kind == 'regression':
    reference = {'zero_shot_bi_encoder': zero_shot(config, tokenizer, rows)}
    print(f'zero-shot bi-encoder: {reference["zero_shot_bi_encoder"]}', flush=True)

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
      'seeds': runs, **reference, 'wall_s': round(time.time() - t_start, 1)}
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
