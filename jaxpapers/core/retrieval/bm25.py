"""BM25 over a corpus through PyPI `bm25s` (Lù 2024), with its tokenisation and stemming.

Documents are `title + ' ' + text`. Tokenisation is bm25s's: lower-case, the regex
`(?u)\\b\\w\\w+\\b`, English stopwords removed, Snowball stemming through PyStemmer when
`stemmer` names a language. PyStemmer is optional: when it is missing we warn once and index
without stemming (results.json records which). Scoring defaults to bm25s's 'lucene'
variant with k1=1.5, b=0.75.

Choices: passages with score 0 (no query term in common) are not returned, so a query whose
terms are all unknown or stopwords yields an empty result rather than arbitrary passages.
With a directory, the index is saved by bm25s under `bm25/` with a meta.json (corpus
fingerprint + parameters) and memory-mapped on reopen.
"""
from __future__ import annotations

import json
import logging
import pathlib
import shutil
from typing import Sequence

import numpy as np

from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import retriever as retriever_lib

STEMMER_INSTALL = 'pip install PyStemmer'


def load_stemmer(language: str | None):
  """A PyStemmer stemmer for `language`, or None (no stemming) when unset or missing."""
  if not language:
    return None
  try:
    import Stemmer  # pylint: disable=import-outside-toplevel
  except ImportError:
    logging.warning('PyStemmer not installed (%s): BM25 runs without stemming',
                    STEMMER_INSTALL)
    return None
  return Stemmer.Stemmer(language)


class BM25Retriever:
  """Sparse retriever; see the module docstring."""

  def __init__(self, corpus: corpus_lib.Corpus, k1: float = 1.5, b: float = 0.75,
               method: str = 'lucene', stemmer: str | None = 'english',
               directory: str | pathlib.Path | None = None):
    import bm25s  # pylint: disable=import-outside-toplevel
    self._bm25s = bm25s
    self.corpus = corpus
    self._stemmer = load_stemmer(stemmer)
    self.stemmer = stemmer if self._stemmer is not None else None
    self.params = {'k1': k1, 'b': b, 'method': method, 'stemmer': self.stemmer,
                   'fingerprint': corpus.fingerprint(), 'count': len(corpus)}
    self.reopened = False
    self.index = self._open(pathlib.Path(directory)) if directory else None
    if self.index is None:
      self.index = self._build()
      if directory:
        self._save(pathlib.Path(directory))

  def _tokenize(self, texts: Sequence[str], return_ids: bool):
    return self._bm25s.tokenize(list(texts), stemmer=self._stemmer, return_ids=return_ids,
                                show_progress=False)

  def _build(self):
    index = self._bm25s.BM25(k1=self.params['k1'], b=self.params['b'],
                             method=self.params['method'])
    index.index(self._tokenize(self.corpus.contents(), True), show_progress=False)
    return index

  def _open(self, directory: pathlib.Path):
    meta_path = directory / 'meta.json'
    try:
      if json.loads(meta_path.read_text()) != self.params:
        return None
      index = self._bm25s.BM25.load(str(directory), mmap=True)
    except (OSError, ValueError) as e:           # missing or damaged: rebuild
      logging.info('BM25 index at %s not reopened (%s); rebuilding', directory, e)
      return None
    self.reopened = True
    return index

  def _save(self, directory: pathlib.Path) -> None:
    tmp = directory.with_name(directory.name + '.tmp')
    shutil.rmtree(tmp, ignore_errors=True)
    self.index.save(str(tmp), show_progress=False)
    (tmp / 'meta.json').write_text(json.dumps(self.params))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)

  def _rank(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    tokens = self._tokenize(queries, False)
    rows, scores = retriever_lib.empty_ranking(len(queries), k)
    keep = [i for i, t in enumerate(tokens) if t]
    if keep:
      r, s = self.index.retrieve([tokens[i] for i in keep], k=k, show_progress=False,
                                 n_threads=1)
      hit = s > 0
      rows[keep] = np.where(hit, r, -1)
      scores[keep] = np.where(hit, s, -np.inf)
    return rows, scores

  def rank(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows [Q, k] int32, scores [Q, k] float32), -1/-inf where fewer than k match."""
    return retriever_lib.rank_valid(queries, k, len(self.corpus), self._rank)

  def search(self, queries: Sequence[str], k: int) -> list[list[corpus_lib.Passage]]:
    return retriever_lib.to_passages(self.corpus, self.rank(queries, k)[0])


@retriever_lib.register('bm25')
def build(config, corpus, directory, mesh, get):
  del mesh, get
  c = config.bm25
  return BM25Retriever(corpus, k1=c.k1, b=c.b, method=c.method, stemmer=c.stemmer or None,
                       directory=None if directory is None else directory / 'bm25')
