"""Retrieval server and HTTP client: Search-R1 protocol, batching, bad input, failures."""
import http.server
import json
import socket
import threading
import time

import pytest
import requests

from configs import retrieval_server as server_config
from jaxpapers.core import config as config_lib
from jaxpapers.core import env as core_env
from jaxpapers.core.retrieval import bm25
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import env as search_env_lib
from jaxpapers.core.retrieval import http_client
from jaxpapers.core.retrieval import server
from jaxpapers.core.runners import retrieval_server as runner

PASSAGES = [
    ('paris', 'Paris', 'Paris is the capital and largest city of France.'),
    ('berlin', 'Berlin', 'Berlin is the capital of Germany, on the river Spree.'),
    ('rome', 'Rome', 'Rome is the capital city of Italy.'),
    ('heroes', '"Heroes" (song)', 'A song by David Bowie.\nReleased in 1977 from Berlin.'),
    ('nile', 'Nile', 'The Nile is a major river in northeastern Africa.'),
    ('guitar', 'Guitar', 'A guitar is a fretted musical instrument with six strings.'),
    ('violin', 'Violin', 'The violin is a bowed string instrument.'),
    ('everest', 'Mount Everest', 'Everest is the highest mountain above sea level.'),
]
QUERIES = ['capital of France', 'Bowie song Berlin', 'zzqx', 'string instrument river']


class CountingRetriever:
  """A BM25 retriever that counts its calls, and can be made slow or failing."""

  def __init__(self, inner):
    self.inner, self.corpus = inner, inner.corpus
    self.calls, self.delay_s, self.fail = 0, 0.0, False
    self._lock = threading.Lock()

  def rank(self, queries, k):
    with self._lock:
      self.calls += 1
    time.sleep(self.delay_s)
    if self.fail:
      raise RuntimeError('index file vanished')
    return self.inner.rank(queries, k)


@pytest.fixture(scope='module')
def local():
  corpus = corpus_lib.Corpus(corpus_lib.Passage(*row) for row in PASSAGES)
  return bm25.BM25Retriever(corpus)


@pytest.fixture(scope='module')
def counting(local):
  return CountingRetriever(local)


@pytest.fixture(scope='module')
def url(counting):
  base, stop = server.start_in_thread(counting, max_batch=64, max_wait_ms=20)
  yield base
  stop()


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _contents(p):
  return f'"{p.title}"\n{p.text}'


# ----------------------------------------------------------------------------- protocol


def test_retrieve_protocol_matches_in_process_ranking(url, local):
  rows, scores = local.rank(QUERIES, 3)
  r = requests.post(url + '/retrieve', json={'queries': QUERIES, 'topk': 3,
                                             'return_scores': True}, timeout=5)
  assert r.status_code == 200
  result = r.json()['result']
  assert len(result) == len(QUERIES)
  for items, row, score in zip(result, rows, scores):
    want = [(local.corpus[int(i)], float(s)) for i, s in zip(row, score) if i >= 0]
    assert [(it['document']['id'], it['document']['contents'], it['score']) for it in items] \
        == [(p.id, _contents(p), s) for p, s in want]
  assert result[2] == []                                 # no query term in the corpus
  assert result[1][0]['document']['contents'] == (
      '""Heroes" (song)"\nA song by David Bowie.\nReleased in 1977 from Berlin.')

  plain = requests.post(url + '/retrieve', json={'queries': QUERIES[:2], 'topk': 2},
                        timeout=5).json()['result']
  assert plain == [[{'id': p.id, 'contents': _contents(p)} for p in hits]
                   for hits in local.search(QUERIES[:2], 2)]
  default_k = requests.post(url + '/retrieve', json={'queries': ['capital']}, timeout=5)
  assert len(default_k.json()['result'][0]) == server.DEFAULT_K
  assert requests.post(url + '/retrieve', json={'queries': []}, timeout=5).json() == {
      'result': []}


def test_document_wire_format_round_trips():
  for row in PASSAGES + [('e', '', 'no title'), ('q', 'a "quoted" title', '')]:
    p = corpus_lib.Passage(*row)
    assert http_client.to_passage(http_client.to_document(p)) == p
  # Search-R1 corpus rows: integer-like ids, quoted titles; other servers: title/text.
  assert http_client.to_passage({'id': 7, 'contents': '"Paris"\nCapital.\nCity.'}) == (
      corpus_lib.Passage('7', 'Paris', 'Capital.\nCity.'))
  assert http_client.to_passage({'id': 'x', 'title': 'T', 'text': 'body'}) == (
      corpus_lib.Passage('x', 'T', 'body'))
  with pytest.raises(ValueError, match='contents'):
    http_client.to_passage({'id': 'x'})


def test_http_retriever_matches_in_process(url, local):
  remote = http_client.HttpRetriever(url + '/retrieve')
  assert remote.url == url + '/retrieve' and remote.corpus_size == len(PASSAGES)
  assert remote.search(QUERIES, 3) == local.search(QUERIES, 3)
  scored = remote.search_scored(QUERIES, 3)
  rows, scores = local.rank(QUERIES, 3)
  assert [[s for _, s in hits] for hits in scored] == [
      [float(s) for i, s in zip(r, sc) if i >= 0] for r, sc in zip(rows, scores)]
  # The in-process rules: bad queries give empty results, k is clamped, a bare string fails.
  odd = ['capital of France', None, '   ', 42]
  assert remote.search(odd, 2) == local.search(odd, 2)
  assert remote.search(['capital'], 100) == local.search(['capital'], 100)
  with pytest.raises(TypeError, match='list of strings'):
    remote.search('capital', 2)
  with pytest.raises(ValueError, match='k must be'):
    remote.search(['capital'], 0)


def test_concurrent_requests_are_batched(url, local, counting):
  queries = [f'{w} capital river instrument' for w in
             ('France', 'Germany', 'Italy', 'Africa', 'Bowie', 'six', 'bowed', 'highest')] * 2
  remote = http_client.HttpRetriever(url)
  remote.search(['warm'], 1)                             # /health read once, up front
  before = counting.calls
  barrier, results, errors = threading.Barrier(len(queries)), {}, []

  def ask(i):
    try:
      barrier.wait()
      results[i] = remote.search([queries[i]], 2)[0]
    except Exception as e:  # noqa: BLE001 - reported by the assert below
      errors.append(e)
  counting.delay_s = 0.05                                # requests queue behind each call
  try:
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(queries))]
    for t in threads:
      t.start()
    for t in threads:
      t.join(10)
  finally:
    counting.delay_s = 0.0
  assert not errors
  assert counting.calls - before < len(queries) // 2
  assert [results[i] for i in range(len(queries))] == local.search(queries, 2)
  health = requests.get(url + '/health', timeout=5).json()
  assert health['status'] == 'ok' and health['retriever_calls'] == counting.calls


@pytest.mark.parametrize('body,status,field', [
    ('not json', 400, 'body'),
    ([1, 2], 422, 'body'),
    ({'topk': 2}, 422, 'queries'),
    ({'queries': 'capital'}, 422, 'queries'),
    ({'queries': ['ok', 3]}, 422, 'queries[1]'),
    ({'queries': ['ok'], 'topk': 0}, 422, 'topk'),
    ({'queries': ['ok'], 'topk': len(PASSAGES) + 1}, 422, 'topk'),
    ({'queries': ['ok'], 'topk': 2.5}, 422, 'topk'),
    ({'queries': ['ok'], 'topk': True}, 422, 'topk'),
    ({'queries': ['ok'], 'return_scores': 'yes'}, 422, 'return_scores'),
])
def test_bad_input_is_4xx_naming_the_field(url, body, status, field):
  data = body if isinstance(body, str) else json.dumps(body)
  r = requests.post(url + '/retrieve', data=data, timeout=5,
                    headers={'Content-Type': 'application/json'})
  assert r.status_code == status
  assert r.json()['field'] == field and r.json()['detail'].startswith(f'{field}: ')
  assert requests.get(url + '/health', timeout=5).ok      # still serving


def test_retriever_failure_is_500_and_server_goes_on(url, counting):
  remote = http_client.HttpRetriever(url, retries=0)
  counting.fail = True
  try:
    r = requests.post(url + '/retrieve', json={'queries': ['capital']}, timeout=5)
    assert r.status_code == 500 and 'index file vanished' in r.json()['detail']
    with pytest.raises(RuntimeError, match='500'):
      remote.search(['capital'], 2)
  finally:
    counting.fail = False
  assert remote.search(['capital of France'], 1)[0][0].id == 'paris'


# ----------------------------------------------------------------------------- env


def test_search_env_over_http_gives_the_same_observations(url, local):
  turns = ['<search>capital of France</search>', '<answer>Paris</answer>', 'garbage',
           '<search>zzqx</search>', '<search>Bowie song</search>']
  remote_env = search_env_lib.SearchEnv(http_client.HttpRetriever(url), top_k=2)
  assert remote_env.step(turns) == search_env_lib.SearchEnv(local, top_k=2).step(turns)
  with pytest.raises(ValueError, match='k must be'):
    search_env_lib.SearchEnv(http_client.HttpRetriever(url), top_k=0)


class _Wrapper(core_env.Environment):
  def __init__(self, search_env):
    super().__init__()
    self.search_env = search_env

  def step(self, rows, turns):
    return self.search_env.step(turns)


def test_dead_server_fails_fast_and_becomes_an_error_observation():
  dead = f'http://127.0.0.1:{_closed_port()}'
  remote = http_client.HttpRetriever(dead, timeout_s=2, retries=1, backoff_s=0.01)
  start = time.perf_counter()
  with pytest.raises(ConnectionError, match=f'{dead}/health unreachable after 2 tries'):
    remote.search(['capital'], 2)
  assert time.perf_counter() - start < 2
  search_env = search_env_lib.SearchEnv(remote, top_k=2)  # no network at construction
  out = core_env.call_step(_Wrapper(search_env), [0, 1],
                           ['<search>capital</search>', '<answer>x</answer>'])
  assert out[0].error.startswith('ConnectionError') and dead in out[0].error
  assert out[0].text == '' and not out[0].done
  assert out[1] == core_env.StepResult('', True)         # the answer row is unaffected


def test_slow_server_times_out_naming_the_url():
  with socket.socket() as listener:                      # accepts, never answers
    listener.bind(('127.0.0.1', 0))
    listener.listen()
    slow = f'http://127.0.0.1:{listener.getsockname()[1]}'
    remote = http_client.HttpRetriever(slow, timeout_s=0.2, retries=2)
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match=f'{slow}/health gave no answer within 0.2 s'):
      remote.search(['capital'], 2)
    assert time.perf_counter() - start < 1


class _SearchR1Handler(http.server.BaseHTTPRequestHandler):
  """Search-R1's server shape: /retrieve only, documents without scores."""

  def do_POST(self):  # noqa: N802 - http.server's name
    body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
    docs = [{'id': str(i), 'contents': f'"T{i}"\nquery {q} k {body["topk"]}'}
            for q in body['queries'] for i in range(1)]
    self._send(200, {'result': [[d] for d in docs]})

  def do_GET(self):  # noqa: N802
    self._send(404, {'detail': 'Not Found'})

  def _send(self, status, payload):
    data = json.dumps(payload).encode()
    self.send_response(status)
    self.send_header('Content-Type', 'application/json')
    self.send_header('Content-Length', str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def log_message(self, *args):
    del args


def test_client_speaks_to_a_search_r1_server_without_health():
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _SearchR1Handler)
  thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
  thread.start()
  try:
    remote = http_client.HttpRetriever(f'http://127.0.0.1:{httpd.server_address[1]}/retrieve')
    assert remote.corpus_size is None
    assert remote.search_scored(['a', None, 'b'], 50) == [
        [(corpus_lib.Passage('0', 'T0', 'query a k 50'), None)], [],
        [(corpus_lib.Passage('0', 'T0', 'query b k 50'), None)]]
  finally:
    httpd.shutdown()
    httpd.server_close()


# ----------------------------------------------------------------------------- experiment


def test_retrieval_server_config_validates():
  config = server_config.get_config()
  runner.validate(config)
  assert (config.host, config.port, config.method) == ('127.0.0.1', 8000, 'bm25')
  assert server_config.get_config('method=hybrid').method == 'hybrid'
  config.method = 'tfidf'
  with pytest.raises(config_lib.ConfigError, match='config.method'):
    runner.validate(config)
