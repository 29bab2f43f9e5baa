"""Retrieval server (configs/retrieval_server.py): Search-R1's `/retrieve` over our retrievers.

Stages: validate -> mesh -> corpus -> index (built or reopened) -> serve until interrupted.
The corpus is the HotpotQA sample (as retrieval_eval) or any passages jsonl
(`data.corpus`); the method is BM25, dense or hybrid. Protocol and batching: see
jaxpapers/core/retrieval/server.py; clients use http_client.HttpRetriever.
"""
from __future__ import annotations

import pathlib

from jaxpapers.core import config as config_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import paths
from jaxpapers.core import registry
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import retriever as retriever_lib


def validate(config) -> None:
  config_lib.require(config.method in retriever_lib.RETRIEVERS, 'method',
                     f'{config.method!r} unknown; valid: {retriever_lib.RETRIEVERS.names()}')
  config_lib.require(isinstance(config.port, int) and 0 <= config.port <= 65535, 'port',
                     f'must be an int in [0, 65535], got {config.port!r}')
  config_lib.require(bool(config.host), 'host', 'must be set, e.g. 127.0.0.1')
  config_lib.check_positive(config, 'max_batch', 'default_k')
  config_lib.require(config.max_wait_ms >= 0, 'max_wait_ms',
                     f'must be >= 0, got {config.max_wait_ms}')
  config_lib.require(config.data.limit >= 0, 'data.limit',
                     f'must be >= 0, got {config.data.limit}')
  try:
    mesh_lib.mesh_shape(config.mesh)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.{e}') from None


def load_corpus(data) -> corpus_lib.Corpus:
  """A passages jsonl when `data.corpus` is set, else the pooled HotpotQA sample."""
  limit = data.limit or None
  if data.corpus:
    return corpus_lib.from_jsonl(config_lib.find_file(data.corpus), limit=limit)
  return corpus_lib.hotpotqa(paths.data_file(data.file), limit=limit)[0]


@registry.experiment('retrieval_server')
def run(config, workdir: str) -> dict:
  validate(config)
  from jaxpapers.core.retrieval import server  # pylint: disable=import-outside-toplevel

  # --- mesh (the dense top-k shards corpus rows over it)
  mesh = mesh_lib.make_batch_mesh(config, batch_field=None)

  # --- corpus
  corpus = load_corpus(config.data)
  index_dir = pathlib.Path(config.index_dir or pathlib.Path(workdir) / 'index')
  corpus.save(index_dir)
  print(f'corpus: {len(corpus)} passages from {corpus.source}', flush=True)

  # --- index (reopened from index_dir when it matches the corpus and settings)
  retriever = retriever_lib.build(config.method, config.retriever, corpus, index_dir, mesh)
  retriever.rank(['warm up'], 1)             # compiles the dense encoder before serving

  # --- serve
  print(f'serving {config.method} on http://{config.host}:{config.port}/retrieve', flush=True)
  server.serve(retriever, host=config.host, port=config.port, max_batch=config.max_batch,
               max_wait_ms=config.max_wait_ms, default_k=config.default_k)
  return {'method': config.method, 'corpus_size': len(corpus)}
