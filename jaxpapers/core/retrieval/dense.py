"""Dense retrieval: jitted MiniLM sentence encoding and exact top-k sharded over the mesh.

Encoder: all-MiniLM-L6-v2 (our BERT, `core/models/bert.py`) with sentence-transformers'
pipeline: tokenise (truncate at 256 tokens, as its sentence_bert_config.json), mean-pool
over the attention mask, L2-normalise. Passages are encoded as `title + ' ' + text` (BEIR's
convention for sentence-transformers models). Texts are sorted by length and cut into
batches; each batch is padded to the smallest length bucket (multiples of 32 up to 256:
on the HotpotQA corpus that is 11% more tokens than padding each batch to its own longest
text, against 36% with powers of two) and to a row bucket (a power of two times the mesh's
batch divisor, at most `batch_size` and at most `max_batch_tokens` / length, so long
batches stay cache-sized: 14% faster per token at 256 tokens on CPU), so a whole corpus or
any query batch compiles at most len(buckets) x log2(batch_size) programs.
Batches are dispatched asynchronously and fetched at the end.

Top-k (`sharded_topk`): corpus embeddings [N, D] are laid out row-sharded over every mesh
axis; inside `shard_map` each device scores its rows (q @ e^T, float32), masks padding rows
and keeps its local `lax.top_k`; the [Q, k x devices] candidates are merged with a second
`lax.top_k`. This is exact (the global top-k is inside the union of local top-ks) and
equals numpy's argsort ranking. Scores are cosine similarities (unit vectors).
FAISS (`backend='faiss'`, PyPI faiss-cpu, imported lazily) uses an exact IndexFlatIP.

Embeddings persist as a memory-mapped .npy under `<directory>/` keyed by the corpus
fingerprint and the encoder settings (`corpus.cached_array`).
"""
from __future__ import annotations

import functools
import os
import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import bert
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import retriever as retriever_lib

LENGTH_BUCKETS = (32, 64, 96, 128, 160, 192, 224, 256)
FAISS_INSTALL = 'pip install faiss-cpu'
BACKENDS = ('jax', 'faiss')


def _pow2_at_least(n: int) -> int:
  return 1 << max(0, (int(n) - 1).bit_length())


class Encoder:
  """Texts -> [N, D] float32 unit vectors with a jitted BERT sentence encoder."""

  def __init__(self, model: bert.Bert, tokenizer, mesh=None, batch_size: int = 64,
               max_seq_len: int = bert.MINILM_MAX_SEQ_LEN,
               buckets: Sequence[int] = LENGTH_BUCKETS, max_batch_tokens: int = 4096,
               name: str = 'bert'):
    self.mesh = mesh
    self.tokenizer = tokenizer
    self.max_seq_len = int(max_seq_len)
    self.buckets = tuple(sorted({b for b in buckets if b < self.max_seq_len}
                                | {self.max_seq_len}))
    self.divisor = 1 if mesh is None else mesh_lib.batch_divisor(mesh)
    self.batch_size = -(-int(batch_size) // self.divisor) * self.divisor
    self.max_batch_tokens = int(max_batch_tokens)
    self.dim = model.config.hidden_size
    self.name = name
    self._fn = bert.sentence_encoder(model)
    self._sharding = None if mesh is None else mesh_lib.batch_sharding(mesh)

  @classmethod
  def from_pretrained(cls, path: str | os.PathLike | None = None, mesh=None, **kw) -> 'Encoder':
    """Our BERT from an HF dir (default: the all-MiniLM-L6-v2 package) + its tokenizer."""
    path = pathlib.Path(path) if path else bert.minilm_dir()
    size = (path / hf.SAFETENSORS_FILE).stat().st_size
    model = bert.from_pretrained(path, mesh=mesh, add_pooling_layer=False)
    return cls(model, bert.load_tokenizer(path), mesh=mesh, name=f'{path}:{size}', **kw)

  @property
  def settings(self) -> dict:
    """What the embeddings depend on (stored beside cached embeddings)."""
    return {'model': self.name, 'max_seq_len': self.max_seq_len, 'pooling': 'mean+l2',
            'dim': self.dim}

  def _rows(self, n: int, cap: int) -> int:
    return min(self.divisor * _pow2_at_least(-(-n // self.divisor)), cap)

  def _row_cap(self, length: int) -> int:
    """Rows per batch at this padded length: batch_size, lowered to the token budget."""
    fit = max(1, self.max_batch_tokens // (length * self.divisor))
    return min(self.batch_size, self.divisor * (1 << (fit.bit_length() - 1)))

  def _length(self, n: int) -> int:
    return next(b for b in self.buckets if b >= n)

  def _put(self, x: np.ndarray):
    return jnp.asarray(x) if self._sharding is None else jax.device_put(x, self._sharding)

  def batches(self, ids: Sequence[Sequence[int]]):
    """Yields (positions, tokens [R, L] int32, mask [R, L] int32), longest texts first."""
    order = np.argsort([-len(x) for x in ids], kind='stable')
    pad = self.tokenizer.pad_token_id or 0
    start = 0
    while start < len(order):
      cap = self._row_cap(self._length(len(ids[order[start]])))   # longest text first
      chunk = order[start:start + cap]
      start += len(chunk)
      rows, length = self._rows(len(chunk), cap), self._length(len(ids[chunk[0]]))
      tokens = np.full((rows, length), pad, np.int32)
      mask = np.zeros((rows, length), np.int32)
      for r, i in enumerate(chunk):
        tokens[r, :len(ids[i])] = ids[i]
        mask[r, :len(ids[i])] = 1
      yield chunk, tokens, mask

  def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
    return self.tokenizer(list(texts), truncation=True, max_length=self.max_seq_len,
                          add_special_tokens=True)['input_ids']

  def precompile(self, texts: Sequence[str]) -> int:
    """Compiles every batch shape `encode(texts)` will use (on zeros); returns the count."""
    if not texts:
      return 0
    shapes = {tokens.shape for _, tokens, _ in self.batches(self.tokenize(texts))}
    for shape in sorted(shapes):
      zeros = np.zeros(shape, np.int32)
      self._fn(self._put(zeros), self._put(zeros)).block_until_ready()
    return len(shapes)

  def encode(self, texts: Sequence[str]) -> np.ndarray:
    """[N, D] float32 L2-normalised embeddings, in the order of `texts`."""
    texts = list(texts)
    out = np.zeros((len(texts), self.dim), np.float32)
    if not texts:
      return out
    pending = [(chunk, self._fn(self._put(tokens), self._put(mask)))
               for chunk, tokens, mask in self.batches(self.tokenize(texts))]
    for chunk, emb in pending:
      out[chunk] = np.asarray(emb)[:len(chunk)]
    return out


# ----------------------------------------------------------------------------- top-k


def shard_corpus(embeddings: np.ndarray, mesh) -> jax.Array:
  """[N, D] host (or memmapped) rows -> [N_pad, D] float32 rows sharded over all mesh axes.

  Each device's block is read straight from `embeddings` (no full host copy); rows past N
  are zeros and masked in `sharded_topk`.
  """
  n, d = embeddings.shape
  n_pad = -(-n // mesh.size) * mesh.size
  sharding = NamedSharding(mesh, P(mesh.axis_names, None))

  def block(index):
    start, stop, _ = index[0].indices(n_pad)
    out = np.zeros((stop - start, d), np.float32)
    real = np.asarray(embeddings[start:min(stop, n)], np.float32)
    out[:len(real)] = real
    return out
  return jax.make_array_from_callback((n_pad, d), sharding, block)


@functools.partial(jax.jit, static_argnames=('k', 'n_valid', 'mesh'))
def sharded_topk(corpus_emb: jax.Array, queries: jax.Array, *, k: int, n_valid: int, mesh):
  """Exact inner-product top-k of each query over row-sharded corpus embeddings.

  Args:
    corpus_emb: [N_pad, D] from `shard_corpus` (rows over all mesh axes).
    queries: [Q, D] (replicated).
    k: results per query, 1 <= k <= n_valid.
    n_valid: real rows N (rows >= N are padding and never returned).
    mesh: the mesh `corpus_emb` lives on.
  Returns:
    scores [Q, k] float32 descending, rows [Q, k] int32.
  """
  axes = mesh.axis_names
  n_local = corpus_emb.shape[0] // mesh.size
  k_local = min(k, n_local)

  def local(emb, q):
    offset = jax.lax.axis_index(axes) * n_local
    scores = jnp.einsum('qd,nd->qn', q, emb, preferred_element_type=jnp.float32)
    rows = offset + jnp.arange(n_local, dtype=jnp.int32)
    scores = jnp.where(rows[None, :] < n_valid, scores, -jnp.inf)
    s, i = jax.lax.top_k(scores, k_local)
    return s, (i + offset).astype(jnp.int32)

  s, i = jax.shard_map(local, mesh=mesh, in_specs=(P(axes, None), P()),
                       out_specs=(P(None, axes), P(None, axes)))(corpus_emb, queries)
  s, j = jax.lax.top_k(s, k)
  return s, jnp.take_along_axis(i, j, axis=1)


def numpy_topk(embeddings: np.ndarray, queries: np.ndarray, k: int):
  """Reference exact top-k (stable argsort of -scores): (scores [Q, k], rows [Q, k])."""
  scores = np.asarray(queries, np.float32) @ np.asarray(embeddings, np.float32).T
  rows = np.argsort(-scores, axis=1, kind='stable')[:, :k]
  return np.take_along_axis(scores, rows, axis=1), rows.astype(np.int32)


class FaissFlat:
  """Exact inner-product FAISS index (IndexFlatIP) over [N, D] float32 embeddings."""

  def __init__(self, embeddings: np.ndarray):
    try:
      import faiss  # pylint: disable=import-outside-toplevel
    except ImportError as e:
      raise ImportError(f'backend "faiss" needs FAISS: {FAISS_INSTALL}') from e
    emb = np.ascontiguousarray(embeddings, np.float32)
    self.index = faiss.IndexFlatIP(emb.shape[1])
    self.index.add(emb)

  def topk(self, queries: np.ndarray, k: int):
    scores, rows = self.index.search(np.ascontiguousarray(queries, np.float32), k)
    return scores.astype(np.float32), rows.astype(np.int32)


# ----------------------------------------------------------------------------- retriever


class DenseRetriever:
  """Encodes queries and ranks the corpus by cosine similarity (jax mesh or FAISS)."""

  def __init__(self, corpus: corpus_lib.Corpus, encoder: Encoder, embeddings: np.ndarray,
               mesh=None, backend: str = 'jax'):
    if backend not in BACKENDS:
      raise ValueError(f'dense backend {backend!r} unknown; valid: {BACKENDS}')
    if embeddings.shape != (len(corpus), encoder.dim):
      raise ValueError(f'embeddings shape {embeddings.shape} != ({len(corpus)}, {encoder.dim})')
    self.corpus, self.encoder, self.embeddings, self.backend = corpus, encoder, embeddings, backend
    self.mesh = mesh if mesh is not None else mesh_lib.make_mesh({'data': -1})
    self.reopened = False
    if backend == 'faiss':
      self._faiss = FaissFlat(embeddings)
    else:
      self._corpus_emb = shard_corpus(embeddings, self.mesh)
      self._replicated = mesh_lib.replicated(self.mesh)

  @classmethod
  def open_or_build(cls, corpus: corpus_lib.Corpus, encoder: Encoder,
                    directory: str | os.PathLike | None = None, mesh=None,
                    backend: str = 'jax') -> 'DenseRetriever':
    """Reopens cached embeddings under `directory` (memory-mapped) or encodes the corpus."""
    build = lambda: encoder.encode(corpus.contents())  # noqa: E731
    if directory is None:
      return cls(corpus, encoder, build(), mesh, backend)
    meta = {'fingerprint': corpus.fingerprint(), 'count': len(corpus), **encoder.settings}
    emb, reopened = corpus_lib.cached_array(directory, meta, build)
    out = cls(corpus, encoder, emb, mesh, backend)
    out.reopened = reopened
    return out

  def rank_embeddings(self, query_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of [Q, D] query embeddings: (rows [Q, k] int32, scores [Q, k] float32)."""
    if self.backend == 'faiss':
      scores, rows = self._faiss.topk(query_emb, k)
      return rows, scores
    q = len(query_emb)
    padded = np.zeros((_pow2_at_least(q), query_emb.shape[1]), np.float32)
    padded[:q] = query_emb
    scores, rows = sharded_topk(self._corpus_emb, jax.device_put(padded, self._replicated),
                                k=k, n_valid=len(self.corpus), mesh=self.mesh)
    return np.asarray(rows)[:q], np.asarray(scores)[:q]

  def _rank(self, queries: list[str], k: int):
    return self.rank_embeddings(self.encoder.encode(queries), k)

  def rank(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    return retriever_lib.rank_valid(queries, k, len(self.corpus), self._rank)

  def search(self, queries: Sequence[str], k: int) -> list[list[corpus_lib.Passage]]:
    return retriever_lib.to_passages(self.corpus, self.rank(queries, k)[0])


@retriever_lib.register('dense')
def build(config, corpus, directory, mesh, get):
  del get
  c = config.dense
  encoder = Encoder.from_pretrained(c.hf_dir or None, mesh=mesh, batch_size=c.batch_size,
                                    max_seq_len=c.max_seq_len, buckets=tuple(c.buckets),
                                    max_batch_tokens=c.max_batch_tokens)
  return DenseRetriever.open_or_build(corpus, encoder,
                                      None if directory is None else directory / 'dense',
                                      mesh, c.backend)
