"""Experiment 'personaagent_baselines': the MovieLens LaMP tasks and their non-LLM rows.

  python -m jaxpapers.launch --config=configs/personaagent_baselines.py --workdir=W

Stages: validate; build both tasks (`tasks.build`); write LaMP files under W/lamp/
(LaMP_3_inputs.json, LaMP_3_outputs.json, LaMP_2_..., plus <task>_labels.json); predict with
every configured row (`baselines.py`) and write each as a LaMP predictions file under
W/predictions/<method>_<task>.json; read golds and predictions back from those files and
score them with LaMP's rules (`metrics.py`), bootstrap intervals over users; results.json.

results.json: `methods.<name>` has mae, rmse, tag_accuracy, tag_f1, each with `_ci`
([lo, hi]), None where a row does not do that task; `parse_failures` / `invalid_tags`;
`data` (users, queries, profile sizes); `mf` (final training loss); wall seconds.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from jaxpapers.core import config as config_lib
from jaxpapers.core import metrics as metrics_core
from jaxpapers.core import registry
from jaxpapers.papers.personaagent import baselines
from jaxpapers.papers.personaagent import memory as memory_lib
from jaxpapers.papers.personaagent import metrics
from jaxpapers.papers.personaagent import tasks as tasks_lib

RATING_ROWS = ('global_mean', 'user_mean', 'item_mean', 'mf')
TAG_ROWS = ('majority_label', 'user_majority_label', 'item_popular_label', 'history_rule')
KNN_ROWS = ('bm25_knn', 'dense_knn')
METHODS = RATING_ROWS + TAG_ROWS + KNN_ROWS
require = config_lib.require


def validate(c) -> None:
  """Every check names the field and the value received (ConfigError)."""
  config_lib.check_positive(c, 'data.num_users', 'data.queries_per_user', 'mf.dim', 'mf.l2',
                            'mf.learning_rate', 'mf.steps', 'memory.k',
                            'memory.recency_half_life', 'eval.level')
  require(c.data.num_users <= 943, 'data.num_users',
          f'MovieLens-100K has 943 users, got {c.data.num_users}')
  require(c.data.tag_min_genres >= 1, 'data.tag_min_genres',
          f'must be >= 1, got {c.data.tag_min_genres}')
  require(c.data.max_profile >= 0, 'data.max_profile', f'must be >= 0, got {c.data.max_profile}')
  require(0 <= c.memory.recency_weight <= 1, 'memory.recency_weight',
          f'must lie in [0, 1], got {c.memory.recency_weight}')
  require(c.eval.level < 1, 'eval.level', f'must lie in (0, 1), got {c.eval.level}')
  require(c.eval.bootstrap >= 0, 'eval.bootstrap', f'must be >= 0, got {c.eval.bootstrap}')
  config_lib.check_choice(c, 'memory.encoder', sorted(memory_lib.EMBEDDERS))
  config_lib.check_choice(c, 'eval.unit', ('user', 'query'))
  config_lib.check_choice(c, 'eval.parse', metrics.PARSE_MODES)
  config_lib.check_choice(c, 'eval.out_of_range', metrics.OUT_OF_RANGE)
  require(len(c.methods) > 0, 'methods', 'must name at least one row')
  for name in c.methods:
    require(name in METHODS, 'methods', f'{name!r} is not one of {list(METHODS)}')


def predict(c, t: tasks_lib.Tasks) -> tuple[dict[str, dict[str, list[str]]], dict]:
  """{task name: {method: outputs in input order}} and extra facts (MF loss)."""
  out = {tasks_lib.LAMP_3: {}, tasks_lib.LAMP_2: {}}
  extra = {}
  rating_q, tag_q = t.rating.queries, t.tagging.queries
  means = baselines.mean_predictions(baselines.history_means(t.splits), rating_q)
  out[tasks_lib.LAMP_3].update({k: v for k, v in means.items() if k in c.methods})
  if 'mf' in c.methods:
    start = time.perf_counter()
    mf = baselines.MFModel(t.splits, dim=c.mf.dim, l2=c.mf.l2,
                           learning_rate=c.mf.learning_rate, steps=c.mf.steps, seed=c.seed)
    out[tasks_lib.LAMP_3]['mf'] = [f'{x:.4f}' for x in np.clip(mf.predict(rating_q), 1, 5)]
    extra['mf'] = {'final_loss': float(mf.losses[-1]), 'wall_s': time.perf_counter() - start}
  tags = baselines.tag_predictions(t.splits, t.movies, tag_q)
  out[tasks_lib.LAMP_2].update({k: v for k, v in tags.items() if k in c.methods})
  memory = None
  for task in (t.rating, t.tagging):
    if 'bm25_knn' in c.methods:
      out[task.name]['bm25_knn'] = baselines.bm25_knn(task.inputs, task.name, c.memory.k,
                                                      task.labels)
    if 'dense_knn' in c.methods:
      memory = memory or memory_lib.EpisodicMemory(
          memory_lib.EMBEDDERS[c.memory.encoder](c.memory), c.memory.recency_weight,
          c.memory.recency_half_life)
      out[task.name]['dense_knn'] = baselines.dense_knn(task.inputs, task.name, c.memory.k,
                                                        task.labels, memory)
  return out, extra


def score(c, task: tasks_lib.LampTask, gold_path, pred_path) -> dict:
  """LaMP's evaluation of one predictions file against the gold file."""
  _, golds = tasks_lib.read_outputs(gold_path)
  _, preds = tasks_lib.read_outputs(pred_path)
  p, g, ids = metrics.align(golds, preds)
  groups = [i.split('-')[0] for i in ids] if c.eval.unit == 'user' else None
  kw = dict(groups=groups, bootstrap=c.eval.bootstrap, seed=c.seed, level=c.eval.level)
  if task.name == tasks_lib.LAMP_3:
    r = metrics.evaluate_rating(p, g, parse=c.eval.parse, out_of_range=c.eval.out_of_range, **kw)
    return {'mae': r['mae'], 'mae_ci': r['mae_ci'], 'rmse': r['rmse'], 'rmse_ci': r['rmse_ci'],
            'parse_failures': r['parse_failures']}
  r = metrics.evaluate_tagging(p, g, task.labels, **kw)
  return {'tag_accuracy': r['accuracy'], 'tag_accuracy_ci': r['accuracy_ci'],
          'tag_f1': r['f1'], 'tag_f1_ci': r['f1_ci'], 'invalid_tags': r['invalid']}


def empty_row() -> dict:
  keys = ('mae', 'rmse', 'tag_accuracy', 'tag_f1')
  return {**{k: None for k in keys}, **{f'{k}_ci': None for k in keys}}


@registry.experiment('personaagent_baselines')
def run(c, workdir: str) -> dict:
  validate(c)
  start = time.perf_counter()
  work = pathlib.Path(workdir)
  d = c.data
  t = tasks_lib.build_from_config(d, c.seed)
  files = {task.name: tasks_lib.write_task(work / 'lamp', task) for task in (t.rating, t.tagging)}
  build_s = time.perf_counter() - start
  predictions, extra = predict(c, t)
  rows = {}
  for task in (t.rating, t.tagging):
    for method, outputs in predictions[task.name].items():
      path = tasks_lib.write_outputs(work / 'predictions' / f'{method}_{task.name}.json',
                                     task.name, dict(zip((x['id'] for x in task.golds), outputs)))
      rows.setdefault(method, empty_row()).update(
          score(c, task, files[task.name]['outputs'], path))
  results = {'methods': {m: rows[m] for m in c.methods if m in rows},
             'data': data_stats(t), **extra,
             'build_s': build_s, 'wall_s': time.perf_counter() - start}
  metrics_core.write_json(work / 'results.json', results)
  return results


def data_stats(t: tasks_lib.Tasks) -> dict:
  sizes = [len(t.splits[u].history) for u in t.users]
  return {'users': len(t.users), 'rating_queries': len(t.rating.inputs),
          'tag_queries': len(t.tagging.inputs), 'profile_mean': float(np.mean(sizes)),
          'profile_min': int(np.min(sizes)), 'profile_max': int(np.max(sizes)),
          'labels': list(t.tagging.labels)}


# The LLM experiment 'personaagent' registers itself (it builds on the stages above).
# pylint: disable-next=wrong-import-position,unused-import
from jaxpapers.papers.personaagent import llm_experiment  # noqa: E402,F401
