"""The retriever interface, input checks shared by every retriever, and the build registry.

A retriever is a plain object with
  rank(queries, k)   -> (rows [Q, k] int32, scores [Q, k] float32), -1 / -inf padding;
  search(queries, k) -> list[list[Passage]], best first, padding dropped.
Input rules (the same for BM25, dense, FAISS and hybrid):
  - `queries` is a list/tuple of strings; a bare string is a TypeError (it would otherwise
    be searched character by character).
  - a query that is not a string, is empty or whitespace only gives an empty result
    (a row of -1), never an exception, so a bad model turn cannot crash a rollout;
  - `k` must be an int >= 1 (ValueError otherwise); k larger than the corpus returns the
    whole corpus ranked (k is clamped), so results may be shorter than k.
Methods are chosen by config string through `RETRIEVERS` (`bm25`, `dense`, `hybrid`);
`build_all` shares components, so the hybrid reuses the BM25 and dense retrievers.
"""
from __future__ import annotations

import pathlib
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from jaxpapers.core.registry import Registry
from jaxpapers.core.retrieval import corpus as corpus_lib

MAX_QUERY_CHARS = 2000   # longer queries are cut (tokenisers truncate anyway)


class Retriever(Protocol):
  corpus: corpus_lib.Corpus

  def rank(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    ...

  def search(self, queries: Sequence[str], k: int) -> list[list[corpus_lib.Passage]]:
    ...


def check_k(k: Any, corpus_size: int) -> int:
  """k clamped to the corpus size; ValueError when k is not a positive int."""
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
    raise ValueError(f'k must be an int >= 1, got {k!r}')
  return int(min(k, corpus_size))


def clean_queries(queries: Any) -> list[str | None]:
  """Each query stripped and length-capped; None where it cannot be searched."""
  if isinstance(queries, (str, bytes)) or not isinstance(queries, (list, tuple)):
    raise TypeError(f'queries must be a list of strings, got {type(queries).__name__}')
  out = []
  for q in queries:
    q = q.strip()[:MAX_QUERY_CHARS] if isinstance(q, str) else ''
    out.append(q or None)
  return out


def empty_ranking(num_queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
  return (np.full((num_queries, k), -1, np.int32),
          np.full((num_queries, k), -np.inf, np.float32))


def rank_valid(queries: Any, k: Any, corpus_size: int,
               rank_fn: Callable[[list[str], int], tuple[np.ndarray, np.ndarray]]
               ) -> tuple[np.ndarray, np.ndarray]:
  """Runs `rank_fn` on the searchable queries only and scatters rows back in order."""
  cleaned = clean_queries(queries)
  k = check_k(k, corpus_size)
  rows, scores = empty_ranking(len(cleaned), k)
  keep = [i for i, q in enumerate(cleaned) if q is not None]
  if keep:
    r, s = rank_fn([cleaned[i] for i in keep], k)
    rows[keep], scores[keep] = r, s
  return rows, scores


def to_passages(corpus: corpus_lib.Corpus, rows: np.ndarray) -> list[list[corpus_lib.Passage]]:
  return [[corpus[int(r)] for r in row if r >= 0] for row in np.asarray(rows)]


# ----------------------------------------------------------------------------- registry

# Builders: fn(config, corpus, directory, mesh, get) -> Retriever, where `get(name)` returns
# another method's retriever (built once per build_all call).
RETRIEVERS = Registry('retriever')
register = RETRIEVERS.register


def build_all(methods: Sequence[str], config, corpus: corpus_lib.Corpus,
              directory: str | pathlib.Path | None = None, mesh=None) -> dict[str, Retriever]:
  """Builds each named method from `config` (a retriever ConfigDict), sharing components.

  Args:
    methods: names registered in RETRIEVERS.
    config: has one sub-dict per method (`bm25`, `dense`, `hybrid`).
    corpus: the passages.
    directory: where indexes persist (None: in memory only).
    mesh: device mesh for the dense top-k (None: all devices on 'data').
  """
  built: dict[str, Retriever] = {}

  def get(name: str) -> Retriever:
    if name not in built:
      builder = RETRIEVERS.get(name)
      built[name] = builder(config, corpus, None if directory is None
                            else pathlib.Path(directory), mesh, get)
    return built[name]
  return {m: get(m) for m in methods}


def build(method: str, config, corpus: corpus_lib.Corpus, directory=None, mesh=None
          ) -> Retriever:
  return build_all([method], config, corpus, directory, mesh)[method]
