"""HTTP retrieval server speaking Search-R1's `/retrieve` protocol, with request batching.

  POST /retrieve {"queries": [str, ...], "topk": k, "return_scores": bool}
    -> {"result": [[{"document": {"id", "contents"}, "score": s}, ...], ...]} (one list per
       query, best first); without return_scores each item is the bare document. The wire
       format is in `http_client.py` (`to_document`); `HttpRetriever` is the client.
  GET /health -> {"status": "ok", "corpus_size": N, "requests": R, "retriever_calls": C}

As Search-R1's server: `topk` defaults to the server's `default_k`, `return_scores` to false.
Batching: one worker task drains an asyncio queue; requests arriving within `max_wait_ms` of
the first (or until `max_batch` queries are queued) are merged into one `retriever.rank` call
per distinct topk (ranking at a larger k and cutting could reorder ties). The call runs in a
thread, so the event loop keeps accepting requests meanwhile; those form the next batch.
Bad input is answered 400 (body not JSON) or 422 (a field is wrong) with
{"detail": "<field>: <what is wrong>", "field": "<field>"}; a retriever failure is a 500
naming the exception; neither stops the server. Choices: topk larger than the corpus is a
422 (the in-process retrievers clamp it; the client clamps using /health), and empty-string
queries are accepted and give an empty result (the retriever rules).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
from typing import Any, Callable, Sequence

import fastapi
from fastapi import responses
import numpy as np
import uvicorn

from jaxpapers.core.retrieval import http_client

DEFAULT_K = 3    # Search-R1's retrieval_topk default


class BadRequest(ValueError):
  def __init__(self, field: str, message: str):
    super().__init__(f'{field}: {message}')
    self.field, self.message = field, message


@dataclasses.dataclass(frozen=True)
class Request:
  queries: list[str]
  topk: int
  return_scores: bool


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def parse_request(body: Any, corpus_size: int, default_k: int = DEFAULT_K) -> Request:
  """The checked request; BadRequest naming the field otherwise."""
  if not isinstance(body, dict):
    raise BadRequest('body', f'must be a JSON object, got {type(body).__name__}')
  if 'queries' not in body:
    raise BadRequest('queries', 'missing; send a list of strings')
  queries = body['queries']
  if not isinstance(queries, list):
    raise BadRequest('queries', f'must be a list of strings, got {type(queries).__name__}')
  for i, q in enumerate(queries):
    if not isinstance(q, str):
      raise BadRequest(f'queries[{i}]', f'must be a string, got {type(q).__name__}')
  topk = body.get('topk')
  topk = min(default_k, corpus_size) if topk is None else topk
  if not _is_int(topk) or not 1 <= topk <= corpus_size:
    raise BadRequest('topk', f'must be an int between 1 and {corpus_size} (the corpus '
                     f'size), got {topk!r}')
  return_scores = body.get('return_scores', False)
  if not isinstance(return_scores, bool):
    raise BadRequest('return_scores', f'must be true or false, got {return_scores!r}')
  return Request(queries, topk, return_scores)


def scored_search(retriever, queries: list[str], k: int) -> list[list[http_client.Hit]]:
  """(passage, score) per query from `rank` (our retrievers); `search` without scores."""
  if not hasattr(retriever, 'rank'):
    return [[(p, None) for p in hits] for hits in retriever.search(queries, k)]
  rows, scores = retriever.rank(queries, k)
  corpus = retriever.corpus
  return [[(corpus[int(r)], float(s)) for r, s in zip(row, score) if r >= 0]
          for row, score in zip(np.asarray(rows), np.asarray(scores))]


def render(hits: Sequence[http_client.Hit], return_scores: bool) -> list[dict]:
  if not return_scores:
    return [http_client.to_document(p) for p, _ in hits]
  return [{'document': http_client.to_document(p), 'score': s} for p, s in hits]


# ----------------------------------------------------------------------------- batching


@dataclasses.dataclass
class _Pending:
  queries: list[str]
  k: int
  future: asyncio.Future


class Batcher:
  """Merges queued requests into one search call per distinct k (see the module docstring)."""

  def __init__(self, search_fn: Callable[[list[str], int], list[list[http_client.Hit]]],
               max_batch: int, max_wait_s: float):
    self.search_fn, self.max_batch, self.max_wait_s = search_fn, max_batch, max_wait_s
    self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
    self.requests = self.calls = 0

  async def submit(self, queries: list[str], k: int) -> list[list[http_client.Hit]]:
    self.requests += 1
    future = asyncio.get_running_loop().create_future()
    await self.queue.put(_Pending(queries, k, future))
    return await future

  async def _collect(self) -> list[_Pending]:
    loop = asyncio.get_running_loop()
    batch = [await self.queue.get()]
    deadline, size = loop.time() + self.max_wait_s, len(batch[0].queries)
    while size < self.max_batch:
      if self.queue.empty():
        left = deadline - loop.time()
        if left <= 0:
          break
        try:
          item = await asyncio.wait_for(self.queue.get(), left)
        except asyncio.TimeoutError:
          break
      else:
        item = self.queue.get_nowait()
      batch.append(item)
      size += len(item.queries)
    return batch

  async def _run(self, items: list[_Pending], k: int) -> None:
    queries = [q for item in items for q in item.queries]
    self.calls += 1
    try:
      hits = await asyncio.to_thread(self.search_fn, queries, k)
      if len(hits) != len(queries):
        raise RuntimeError(f'retriever returned {len(hits)} results for {len(queries)} '
                           'queries')
    except Exception as e:  # noqa: BLE001 - every waiting request gets the error
      logging.exception('retrieval failed on a batch of %d queries', len(queries))
      for item in items:
        if not item.future.done():
          item.future.set_exception(e)
      return
    start = 0
    for item in items:
      if not item.future.done():             # done: the client went away
        item.future.set_result(hits[start:start + len(item.queries)])
      start += len(item.queries)

  async def work(self) -> None:
    """The worker loop; runs until cancelled."""
    while True:
      batch = await self._collect()
      by_k: dict[int, list[_Pending]] = {}
      for item in batch:
        by_k.setdefault(item.k, []).append(item)
      for k, items in by_k.items():
        await self._run(items, k)


# ----------------------------------------------------------------------------- app


def _error(status: int, field: str, message: str) -> responses.JSONResponse:
  return responses.JSONResponse({'detail': f'{field}: {message}', 'field': field},
                                status_code=status)


def make_app(retriever, max_batch: int = 64, max_wait_ms: float = 5.0,
             default_k: int = DEFAULT_K) -> fastapi.FastAPI:
  """The server over any retriever with `.corpus` and `.rank` (or `.search`)."""
  if max_batch < 1 or max_wait_ms < 0 or default_k < 1:
    raise ValueError(f'need max_batch >= 1, max_wait_ms >= 0, default_k >= 1; got '
                     f'{max_batch}, {max_wait_ms}, {default_k}')
  corpus_size = len(retriever.corpus)
  batcher = Batcher(lambda q, k: scored_search(retriever, q, k), max_batch, max_wait_ms / 1e3)

  @contextlib.asynccontextmanager
  async def lifespan(_):
    worker = asyncio.create_task(batcher.work())
    yield
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
      await worker

  app = fastapi.FastAPI(title='jaxpapers retrieval server', lifespan=lifespan)
  app.state.batcher = batcher

  @app.get('/health')
  async def health():
    return {'status': 'ok', 'corpus_size': corpus_size, 'requests': batcher.requests,
            'retriever_calls': batcher.calls}

  @app.post('/retrieve')
  async def retrieve(request: fastapi.Request):
    try:
      body = json.loads(await request.body())
    except ValueError as e:
      return _error(400, 'body', f'not valid JSON ({e})')
    try:
      req = parse_request(body, corpus_size, default_k)
    except BadRequest as e:
      return _error(422, e.field, e.message)
    if not req.queries:
      return {'result': []}
    try:
      hits = await batcher.submit(req.queries, req.topk)
    except Exception as e:  # noqa: BLE001 - reported to the client, the server goes on
      return _error(500, 'retriever', f'{type(e).__name__}: {e}')
    return responses.JSONResponse({'result': [render(h, req.return_scores) for h in hits]})

  return app


# ----------------------------------------------------------------------------- running


def serve(retriever, host: str = '127.0.0.1', port: int = 8000, **app_kwargs) -> None:
  """Serves until interrupted (Ctrl-C)."""
  uvicorn.run(make_app(retriever, **app_kwargs), host=host, port=port, log_level='info')


def _bind(host: str, port: int) -> socket.socket:
  family = socket.AF_INET6 if ':' in host else socket.AF_INET
  sock = socket.socket(family, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  sock.bind((host, port))
  return sock


def start_in_thread(retriever, host: str = '127.0.0.1', port: int = 0,
                    startup_timeout_s: float = 10.0, **app_kwargs
                    ) -> tuple[str, Callable[[], None]]:
  """Starts the server on a background thread; returns (base URL, stop()).

  port=0 picks a free port. The socket is bound here, so the URL is known before start.
  """
  sock = _bind(host, port)
  bound = sock.getsockname()[1]
  config = uvicorn.Config(make_app(retriever, **app_kwargs), log_level='warning',
                          access_log=False, timeout_graceful_shutdown=5)
  server = uvicorn.Server(config)
  thread = threading.Thread(target=server.run, kwargs={'sockets': [sock]}, daemon=True,
                            name=f'retrieval-server-{bound}')
  thread.start()

  def stop() -> None:
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()

  deadline = time.monotonic() + startup_timeout_s
  while not server.started:
    if not thread.is_alive() or time.monotonic() > deadline:
      stop()
      raise RuntimeError(f'retrieval server on {host}:{bound} did not start')
    time.sleep(0.01)
  netloc = f'[{host}]' if ':' in host else host
  return f'http://{netloc}:{bound}', stop
