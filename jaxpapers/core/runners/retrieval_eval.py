"""Retrieval evaluation (configs/retrieval_eval.py): recall@k and MRR per retrieval method.

Stages: validate -> mesh -> data -> indexes (built or reopened) -> rank -> metrics -> outputs.
Metrics per method, averaged over questions (qa_metrics): recall@k of the supporting
titles, all@k (both supporting paragraphs in the top k), answer recall@k (a gold answer
string inside the top-k passages) and MRR over the top max(ks) passages.
"""
from __future__ import annotations

import pathlib
import time

import numpy as np

from jaxpapers.core import config as config_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import paths
from jaxpapers.core import qa_metrics
from jaxpapers.core import registry
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import dense as dense_lib
from jaxpapers.core.retrieval import retriever as retriever_lib


def validate(config) -> None:
  config_lib.require(len(config.methods) > 0, 'methods', 'needs at least one method')
  for m in config.methods:
    config_lib.require(m in retriever_lib.RETRIEVERS, 'methods',
                       f'{m!r} unknown; valid: {retriever_lib.RETRIEVERS.names()}')
  config_lib.require(len(config.ks) > 0 and all(isinstance(k, int) and k >= 1
                                                for k in config.ks),
                     'ks', f'must be ints >= 1, got {tuple(config.ks)!r}')
  config_lib.check_positive(config, 'query_batch', 'retriever.dense.batch_size',
                            'retriever.dense.max_seq_len', 'retriever.hybrid.depth')
  config_lib.require(config.data.limit >= 0, 'data.limit', f'must be >= 0, got '
                     f'{config.data.limit}')
  config_lib.check_choice(config, 'retriever.dense.backend', dense_lib.BACKENDS)
  h = config.retriever.hybrid
  config_lib.require(len(h.weights) in (0, len(h.components)), 'retriever.hybrid.weights',
                     f'{len(h.weights)} weights for {len(h.components)} components')
  try:
    mesh_lib.mesh_shape(config.mesh)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.{e}') from None


def rank_all(retriever, questions: list[str], k: int, batch: int) -> tuple[np.ndarray, float]:
  """Rows [Q, k] of every question, and seconds per question."""
  start, rows = time.perf_counter(), []
  for i in range(0, len(questions), batch):
    rows.append(retriever.rank(questions[i:i + batch], k)[0])
  return np.concatenate(rows), (time.perf_counter() - start) / max(len(questions), 1)


def score(corpus: corpus_lib.Corpus, examples, rows: np.ndarray, ks) -> dict[str, float]:
  """Mean retrieval metrics of one method over the questions."""
  out: dict[str, list[float]] = {}
  for ex, row in zip(examples, rows):
    ranked = [corpus[int(r)].id for r in row if r >= 0]
    texts = [corpus[int(r)].contents for r in row if r >= 0]
    for k in ks:
      out.setdefault(f'recall@{k}', []).append(qa_metrics.recall_at_k(ranked, ex.gold_ids, k))
      out.setdefault(f'all@{k}', []).append(qa_metrics.all_recall_at_k(ranked, ex.gold_ids, k))
      out.setdefault(f'answer_recall@{k}', []).append(
          qa_metrics.answer_in_texts(texts[:k], ex.answers))
    out.setdefault('mrr', []).append(qa_metrics.reciprocal_rank(ranked, ex.gold_ids))
  return {name: round(float(np.mean(v)), 4) for name, v in out.items()}


def table(results: dict, ks) -> str:
  cols = [f'recall@{k}' for k in ks] + ['mrr', f'all@{max(ks)}', f'answer_recall@{max(ks)}',
                                         'ms_per_query']
  lines = ['| method | ' + ' | '.join(cols) + ' |', '|---' * (len(cols) + 1) + '|']
  for method, r in results.items():
    lines.append(f'| {method} | ' + ' | '.join(f'{r[c]:.3f}' if c != 'ms_per_query'
                                                 else f'{r[c]:.1f}' for c in cols) + ' |')
  return '\n'.join(lines) + '\n'


@registry.experiment('retrieval_eval')
def run(config, workdir: str) -> dict:
  validate(config)
  workdir = pathlib.Path(workdir)
  t_start = time.time()

  # --- mesh
  mesh = mesh_lib.make_batch_mesh(config, batch_field=None)

  # --- data
  corpus, examples = corpus_lib.hotpotqa(paths.data_file(config.data.file),
                                         limit=config.data.limit or None)
  index_dir = pathlib.Path(config.index_dir) if config.index_dir else workdir / 'index'
  corpus.save(index_dir)
  print(f'corpus: {len(corpus)} passages, {len(examples)} questions', flush=True)

  # --- indexes (reopened from index_dir when they match the corpus and settings)
  t_index = time.perf_counter()
  retrievers = retriever_lib.build_all(config.methods, config.retriever, corpus, index_dir,
                                       mesh)
  index_s = time.perf_counter() - t_index
  reopened = {m: bool(getattr(r, 'reopened', False)) for m, r in retrievers.items()}
  print(f'indexes ready in {index_s:.1f} s (reopened: {reopened})', flush=True)

  # --- rank and score
  questions = [ex.question for ex in examples]
  results = {}
  for method, retriever in retrievers.items():
    retriever.rank(questions[:config.query_batch], max(config.ks))  # warm-up (compiles)
    rows, per_query = rank_all(retriever, questions, max(config.ks), config.query_batch)
    results[method] = {**score(corpus, examples, rows, config.ks),
                       'ms_per_query': round(1e3 * per_query, 2)}
    print(f'{method}: {results[method]}', flush=True)

  # --- outputs
  points = [{'k': k, 'method': m, 'recall': r[f'recall@{k}'], 'all': r[f'all@{k}'],
             'answer_recall': r[f'answer_recall@{k}']}
            for m, r in results.items() for k in config.ks]
  metrics_lib.plot_curves(points, ['recall', 'all', 'answer_recall'], workdir / 'recall.png',
                          x='k', series='method',
                          title=f'HotpotQA sample: {len(corpus)} passages, '
                                f'{len(examples)} questions')
  (workdir / 'results.md').write_text(table(results, config.ks))
  stemmer = getattr(retrievers.get('bm25'), 'stemmer', None)
  out = {'methods': results, 'corpus_size': len(corpus), 'questions': len(examples),
         'index_s': round(index_s, 1), 'reopened': reopened, 'bm25_stemmer': stemmer,
         'dense_backend': config.retriever.dense.backend,
         'wall_s': round(time.time() - t_start, 1)}
  metrics_lib.write_json(workdir / 'results.json', out)
  print(table(results, config.ks) + f'outputs in {workdir}', flush=True)
  return out
