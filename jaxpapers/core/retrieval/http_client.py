"""A retriever that searches over HTTP: ours (`server.py`) or a Search-R1 retrieval server.

Wire format (PeterGriffinJin/Search-R1, search_r1/search/retrieval_server.py):
  POST {url}/retrieve {"queries": [str, ...], "topk": k, "return_scores": bool}
    -> {"result": [[{"document": {"id", "contents"}, "score": s}, ...], ...]}  (scores)
    -> {"result": [[{"id", "contents"}, ...], ...]}                            (no scores)
  A document's `contents` is '"Title"\\ntext' (Search-R1's wiki corpus rows); `to_document`
  writes it and `to_passage` reads it back, title unquoted (Search-R1's `_passages2string`
  splits on the first newline but keeps the quotes). A title's own newlines become spaces.
  GET {url}/health -> {"corpus_size": N, ...} on our server; a server without it (404)
  leaves the corpus size unknown, and k is then sent unclamped.

`HttpRetriever.search(queries, k)` keeps the in-process retriever rules (retriever.py):
a bare string is a TypeError, a query that is not a string or is empty gives an empty
result without reaching the server, k must be an int >= 1 and is clamped to the corpus size
when the server reports it. Failures raise, naming the URL: ConnectionError (unreachable,
after `retries` more tries with backoff), TimeoutError (no answer within `timeout_s`; not
retried: a slow server is not helped by more load), ValueError (the server rejected the
request, or its answer is malformed), RuntimeError (5xx after the retries). The search
environment above turns these into an error observation.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Mapping, Optional, Sequence

import requests

from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import retriever as retriever_lib

Hit = tuple[corpus_lib.Passage, Optional[float]]   # a passage and its score (None if absent)


# ----------------------------------------------------------------------------- wire format


def to_document(passage: corpus_lib.Passage) -> dict[str, str]:
  """Search-R1's {"id", "contents": '"Title"\\ntext'} for a passage."""
  title = passage.title.replace('\n', ' ')   # the first newline ends the title
  return {'id': passage.id, 'contents': f'"{title}"\n{passage.text}'}


def to_passage(document: Mapping[str, Any]) -> corpus_lib.Passage:
  """A document of either server back into a Passage (title unquoted)."""
  if not isinstance(document, Mapping):
    raise ValueError(f'document must be an object, got {type(document).__name__}')
  contents = document.get('contents')
  if isinstance(contents, str):
    title, _, text = contents.partition('\n')
    title = title.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
      title = title[1:-1]
  else:                                      # servers that send title/text fields
    title, text = document.get('title', ''), document.get('text')
    if not isinstance(text, str) or not isinstance(title, str):
      raise ValueError(f'document has neither string "contents" nor "title"/"text": '
                       f'{dict(document)!r:.120}')
  return corpus_lib.Passage(str(document.get('id', '')), title, text)


def to_hits(items: Any) -> list[Hit]:
  """One query's result list, items either {"document", "score"} or a bare document."""
  if not isinstance(items, list):
    raise ValueError(f'a query result must be a list, got {type(items).__name__}')
  hits = []
  for item in items:
    if isinstance(item, Mapping) and 'document' in item:
      score = item.get('score')
      hits.append((to_passage(item['document']),
                   None if score is None else float(score)))
    else:
      hits.append((to_passage(item), None))
  return hits


# ----------------------------------------------------------------------------- client


def _endpoints(url: str) -> tuple[str, str]:
  """(retrieve URL, base URL) from either form ('http://h:p' or 'http://h:p/retrieve')."""
  url = url.rstrip('/')
  base = url[:-len('/retrieve')] if url.endswith('/retrieve') else url
  return base + '/retrieve', base


def _detail(response: requests.Response) -> str:
  try:
    body = response.json()
  except ValueError:
    return response.text[:200]
  return str(body.get('detail', body) if isinstance(body, Mapping) else body)[:300]


class HttpRetriever:
  """`search(queries, k)` against a `/retrieve` server; see the module docstring."""

  def __init__(self, url: str, timeout_s: float = 10.0, retries: int = 2,
               backoff_s: float = 0.2):
    if timeout_s <= 0 or retries < 0 or backoff_s < 0:
      raise ValueError(f'need timeout_s > 0, retries >= 0, backoff_s >= 0; got '
                       f'{timeout_s}, {retries}, {backoff_s}')
    self.url, self.base_url = _endpoints(url)
    self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
    self._local = threading.local()          # one Session (connection pool) per thread
    self._corpus_size: int | None = None
    self._size_known = False

  def _session(self) -> requests.Session:
    if not hasattr(self._local, 'session'):
      self._local.session = requests.Session()
    return self._local.session

  def _send(self, method: str, url: str, payload: Any = None) -> requests.Response:
    """One HTTP call, retried on connection errors and 5xx; errors name the URL."""
    for attempt in range(self.retries + 1):
      if attempt:
        time.sleep(self.backoff_s * 2 ** (attempt - 1))
      try:
        response = self._session().request(method, url, json=payload, timeout=self.timeout_s)
      except requests.Timeout:                 # checked first: ConnectTimeout is both
        raise TimeoutError(f'retrieval server {url} gave no answer within '
                           f'{self.timeout_s:g} s') from None
      except requests.ConnectionError as e:
        error: Exception = ConnectionError(f'retrieval server {url} unreachable after '
                                           f'{attempt + 1} tries: {e}')
        continue
      if response.status_code < 500:
        return response
      error = RuntimeError(f'retrieval server {url} failed ({response.status_code}) after '
                           f'{attempt + 1} tries: {_detail(response)}')
    raise error

  @property
  def corpus_size(self) -> int | None:
    """The server's corpus size from GET /health (None when it does not report one)."""
    if not self._size_known:
      response = self._send('GET', self.base_url + '/health')
      try:
        size = response.json().get('corpus_size') if response.ok else None
      except (ValueError, AttributeError):     # not our server's JSON object
        size = None
      ok = isinstance(size, int) and not isinstance(size, bool) and size > 0
      self._corpus_size = size if ok else None
      self._size_known = True
    return self._corpus_size

  def _retrieve(self, queries: list[str], k: int) -> list[list[Hit]]:
    response = self._send('POST', self.url,
                          {'queries': queries, 'topk': k, 'return_scores': True})
    if response.status_code >= 400:
      raise ValueError(f'retrieval server {self.url} rejected the request '
                       f'({response.status_code}): {_detail(response)}')
    try:
      result = response.json()['result']
      if not isinstance(result, list) or len(result) != len(queries):
        raise ValueError(f'{len(queries)} queries sent, result is {result!r:.80}')
      return [to_hits(items) for items in result]
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(f'retrieval server {self.url}: malformed answer ({e})') from None

  def search_scored(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
    """(passage, score) pairs per query, best first (score None if the server omits it)."""
    cleaned = retriever_lib.clean_queries(queries)
    size = self.corpus_size
    k = retriever_lib.check_k(k, k if size is None else size)
    out: list[list[Hit]] = [[] for _ in cleaned]
    keep = [i for i, q in enumerate(cleaned) if q is not None]
    if keep:
      for i, hits in zip(keep, self._retrieve([cleaned[i] for i in keep], k)):
        out[i] = hits
    return out

  def search(self, queries: Sequence[str], k: int) -> list[list[corpus_lib.Passage]]:
    return [[p for p, _ in hits] for hits in self.search_scored(queries, k)]
