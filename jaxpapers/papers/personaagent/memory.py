"""Episodic memory (PersonaAgent's personalised memory) and LaMP's BM25 retrieval over profile fields.

Episodic memory: per-user records (query, ground-truth response, metadata, time). A lookup
scores every record of the user against the new query and keeps the top K:
  score = (1 - w) * cos(embed(query), embed(record.query)) + w * 0.5 ** (age / half_life)
where age is the record's rank from the newest (0 = newest; ties in time keep insertion
order) and w = `recency_weight` (0: pure similarity, the paper's description; 1: the K most
recent). Choices (the paper gives no formula): rank-based rather than wall-clock age, since
MovieLens enters many ratings in one second; `before` drops records later than the query's
time, so a lookup never sees the future. Embeddings come from an injected `embed_fn`
(texts -> [N, D] unit rows): our MiniLM encoder (`minilm_embed_fn`) or, for tests and quick
runs, `hashing_embed_fn` (feature-hashed bag of words). Each distinct text is embedded once.
Top-K is `lax.top_k` over the user's records padded to a power of two (few compiles).

BM25 (LaMP's retrieval baseline, github LaMP-Benchmark/LaMP `LaMP/rank_profiles.py`): the
corpus is one field per profile item (LaMP-3 `text`, LaMP-2 `description`; `date` appended
with `use_date` as LaMP does) and the query is the input after its marker ("review:" in
LaMP-3, "movie:" in ours, "description:" in LaMP-2). LaMP splits on whitespace and uses
rank_bm25's Okapi; we use core BM25 (bm25s, stemming, stopwords), the project's one BM25.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.core.retrieval import bm25 as bm25_lib
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.papers.personaagent import tasks as tasks_lib

EmbedFn = Callable[[Sequence[str]], np.ndarray]
# LaMP task -> (profile field, query markers tried in order).
PROFILE_FIELDS = {tasks_lib.LAMP_3: ('text', ('review:', 'movie:')),
                  tasks_lib.LAMP_2: ('description', ('description:',))}


@dataclasses.dataclass(frozen=True)
class Record:
  query: str                      # what the user was asked (the item text)
  response: str                   # the user's true answer (rating, tag)
  time: int                       # interaction timestamp
  id: str = ''
  metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _pow2(n: int) -> int:
  return 1 << max(0, (int(n) - 1).bit_length())


@functools.partial(jax.jit, static_argnames=('k',))
def score_topk(records, valid, recency, queries, weight, *, k: int):
  """Top-k records per query by (1 - w) * cosine + w * recency.

  Args:
    records: [N, D] unit embeddings (rows past the user's records are padding).
    valid: [Q, N] bool, records a query may see.
    recency: [N] recency bonus in [0, 1].
    queries: [Q, D] unit embeddings.
    weight: [] recency weight w.
    k: results per query (<= N).
  Returns:
    scores [Q, k] float32 descending (-inf where fewer than k are valid), rows [Q, k] int32.
  """
  sim = jnp.einsum('qd,nd->qn', queries, records, preferred_element_type=jnp.float32)
  scores = (1 - weight) * sim + weight * recency[None, :]
  return jax.lax.top_k(jnp.where(valid, scores, -jnp.inf), k)


def recency_bonus(times: Sequence[int], half_life: float) -> np.ndarray:
  """[N] 0.5 ** (rank from newest / half_life); ties in time: later insertion is newer."""
  order = np.lexsort((np.arange(len(times)), np.asarray(times)))[::-1]
  rank = np.empty(len(times))
  rank[order] = np.arange(len(times))
  return np.power(0.5, rank / half_life).astype(np.float32)


class EpisodicMemory:
  """Per-user records with dense (and optionally recency-weighted) top-K lookup."""

  def __init__(self, embed_fn: EmbedFn, recency_weight: float = 0.0,
               recency_half_life: float = 20.0):
    if not 0 <= recency_weight <= 1:
      raise ValueError(f'recency_weight must lie in [0, 1], got {recency_weight}')
    if recency_half_life <= 0:
      raise ValueError(f'recency_half_life must be > 0, got {recency_half_life}')
    self.embed_fn = embed_fn
    self.recency_weight = float(recency_weight)
    self.half_life = float(recency_half_life)
    self.records: dict[Any, list[Record]] = {}
    self._cache: dict[str, np.ndarray] = {}

  def add(self, user, records: Sequence[Record]) -> None:
    self.records.setdefault(user, []).extend(records)
    self.embed([r.query for r in records])

  def embed(self, texts: Sequence[str]) -> np.ndarray:
    """[N, D] embeddings; each distinct text is embedded once per memory."""
    new = sorted({t for t in texts if t not in self._cache})
    if new:
      for t, e in zip(new, np.asarray(self.embed_fn(new), np.float32)):
        self._cache[t] = e
    return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)

  def scores(self, user, queries: Sequence[str], before: Sequence[int] | None = None
             ) -> np.ndarray:
    """[Q, N] the lookup scores of every record (-inf where a record is after `before`);
    the brute-force reference for `top_k`."""
    recs = self.records.get(user, [])
    if not recs:
      return np.zeros((len(queries), 0), np.float32)
    sim = self.embed(list(queries)) @ self.embed([r.query for r in recs]).T
    bonus = recency_bonus([r.time for r in recs], self.half_life)
    out = (1 - self.recency_weight) * sim + self.recency_weight * bonus[None, :]
    return np.where(self._valid(recs, len(queries), before, len(recs)), out, -np.inf)

  @staticmethod
  def _valid(recs, num_queries, before, width) -> np.ndarray:
    times = np.array([r.time for r in recs] + [0] * (width - len(recs)), np.int64)
    valid = np.broadcast_to(np.arange(width) < len(recs), (num_queries, width))
    if before is not None:
      valid = valid & (times[None, :] <= np.asarray(before, np.int64)[:, None])
    return valid

  def top_k(self, user, queries: Sequence[str], k: int, before: Sequence[int] | None = None
            ) -> list[list[Record]]:
    """The k best records per query, best first (fewer when fewer are visible)."""
    rows, _ = self.top_k_rows(user, queries, k, before)
    recs = self.records.get(user, [])
    return [[recs[i] for i in row if i >= 0] for row in rows]

  def top_k_rows(self, user, queries: Sequence[str], k: int,
                 before: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows [Q, k] int32, -1 past the visible records; scores [Q, k] float32)."""
    recs = self.records.get(user, [])
    if k < 1:
      raise ValueError(f'k must be >= 1, got {k}')
    width = _pow2(max(len(recs), k, 1))
    emb = self.embed([r.query for r in recs]) if recs else None
    table = np.zeros((width, self._dim(emb, queries)), np.float32)
    if recs:
      table[:len(recs)] = emb
    bonus = np.zeros(width, np.float32)
    bonus[:len(recs)] = recency_bonus([r.time for r in recs], self.half_life)
    valid = self._valid(recs, len(queries), before, width)
    s, r = score_topk(jnp.asarray(table), jnp.asarray(valid), jnp.asarray(bonus),
                      jnp.asarray(self.embed(list(queries))),
                      jnp.float32(self.recency_weight), k=k)
    s, r = np.asarray(s), np.asarray(r)
    return np.where(np.isfinite(s), r, -1).astype(np.int32), s

  def _dim(self, emb, queries) -> int:
    return emb.shape[1] if emb is not None else self.embed(list(queries)[:1]).shape[1]


# ----------------------------------------------------------------------------- embeddings


def hashing_embed_fn(dim: int = 256) -> EmbedFn:
  """Feature-hashed bag of lower-cased words, L2-normalised (deterministic, no model)."""
  def embed(texts: Sequence[str]) -> np.ndarray:
    out = np.zeros((len(texts), dim), np.float32)
    for n, text in enumerate(texts):
      for word in re.findall(r'\w+', text.lower()):
        out[n, int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norm > 0, norm, 1.0)
  return embed


def minilm_embed_fn(hf_dir: str = '', batch_size: int = 64) -> EmbedFn:
  """all-MiniLM-L6-v2 sentence embeddings through core's dense encoder."""
  from jaxpapers.core.retrieval import dense  # pylint: disable=import-outside-toplevel
  encoder = dense.Encoder.from_pretrained(hf_dir or None, batch_size=batch_size)
  return encoder.encode


EMBEDDERS = {'minilm': lambda c: minilm_embed_fn(c.hf_dir),
             'hashing': lambda c: hashing_embed_fn(c.hashing_dim)}


def from_lamp(example: Mapping[str, Any], task: str) -> list[Record]:
  """A LaMP example's profile as memory records (response = score or tag)."""
  field, _ = PROFILE_FIELDS[task]
  response = 'score' if task == tasks_lib.LAMP_3 else 'tag'
  return [Record(query=p[field], response=str(p[response]), time=int(p.get('time', n)),
                 id=str(p['id'])) for n, p in enumerate(example['profile'])]


# ----------------------------------------------------------------------------- BM25


def query_text(lamp_input: str, task: str) -> str:
  """The part of a LaMP input after its marker (LaMP's extract_after_*), else all of it."""
  for marker in PROFILE_FIELDS[task][1]:
    at = lamp_input.find(marker)
    if at >= 0:
      return lamp_input[at + len(marker):].strip()
  return lamp_input.strip()


def profile_corpus(profile: Sequence[Mapping[str, Any]], task: str,
                   use_date: bool = False) -> corpus_lib.Corpus:
  field, _ = PROFILE_FIELDS[task]
  text = lambda p: f'{p[field]} date: {p["date"]}' if use_date else p[field]  # noqa: E731
  return corpus_lib.Corpus([corpus_lib.Passage(str(p['id']), '', text(p)) for p in profile],
                           source='profile')


def bm25_rank(profile: Sequence[Mapping[str, Any]], inputs: Sequence[str], task: str, k: int,
              use_date: bool = False) -> np.ndarray:
  """[Q, k] profile rows by BM25 of each input's query text; -1 where fewer match."""
  if not profile:
    return np.full((len(inputs), k), -1, np.int32)
  logging.getLogger('bm25s').setLevel(logging.WARNING)   # it sets DEBUG: a line per index
  retriever = bm25_lib.BM25Retriever(profile_corpus(profile, task, use_date))
  k_eff = min(k, len(profile))
  rows, _ = retriever.rank([query_text(x, task) for x in inputs], k_eff)
  out = np.full((len(inputs), k), -1, np.int32)
  out[:, :k_eff] = rows
  return out
