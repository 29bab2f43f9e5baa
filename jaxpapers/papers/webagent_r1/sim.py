"""`sim`: a browser-free Backend that drives the sites' ASGI app in process.

It does what a browser does with our pages, on an lxml DOM: follows links and 30x redirects, keeps
cookies (one session per SimBackend), writes typed text, checked boxes and selected options into the
DOM's attributes, submits forms as HTML does (named fields in document order, checked boxes and
radios only, a select's chosen option value, the submitter button's name/value; GET forms become
query strings, POST forms url-encoded bodies), and keeps a history for back/forward. Requests go
straight to the app (no sockets), each on a fresh asyncio loop, so a backend works from any thread
(in a thread that runs a loop, on a helper thread). No JavaScript or CSS: the sites use neither.

An HTTP error status (>= 400) still loads the error page, then raises `PageError`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import urllib.parse

from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import page as page_lib

DEFAULT_BASE = 'http://sim.local'
MAX_REDIRECTS = 10
_TEXT_TYPES = frozenset({'text', 'search', 'email', 'password', 'tel', 'url', 'number', 'date'})
_NO_SUBMIT_TYPES = frozenset({'submit', 'button', 'reset', 'image', 'file'})


@backend_lib.BACKENDS.register('sim')
class SimBackend(backend_lib.Backend):
  """One simulated browser tab with its own cookies and history."""

  def __init__(self, app, base_url: str = ''):
    if app is None:
      raise ValueError('the sim backend runs the sites app in process; pass sites.make_app(...)')
    self.app = app
    self.base_url = (base_url or DEFAULT_BASE).rstrip('/')
    self.cookies: dict[str, str] = {}
    self.history: list[str] = []
    self.position = -1
    self.closed = False
    self._url = 'about:blank'
    self._root = page_lib.parse('')
    self._nodes: list = []
    self._focus: int | None = None

  # -- HTTP

  def _absolute(self, url: str) -> str:
    return urllib.parse.urljoin(self._url if self._url.startswith('http') else
                                self.base_url + '/', url)

  def _fetch(self, method: str, url: str, body: bytes = b'') -> tuple[int, str, str]:
    """(status, final url, html) after following redirects."""
    for _ in range(MAX_REDIRECTS):
      status, headers, content = _run(self._asgi(method, url, body))
      location = headers.get('location')
      if status in (301, 302, 303, 307, 308) and location:
        url = urllib.parse.urljoin(url, location)
        if status in (301, 302, 303):
          method, body = 'GET', b''
        continue
      return status, url, content.decode('utf-8', 'replace')
    raise backend_lib.PageError(f'too many redirects at {url}')

  async def _asgi(self, method: str, url: str, body: bytes):
    parts = urllib.parse.urlsplit(url)
    headers = [(b'host', (parts.netloc or 'sim.local').encode())]
    if self.cookies:
      headers.append((b'cookie', '; '.join(f'{k}={v}' for k, v in self.cookies.items()).encode()))
    if method == 'POST':
      headers += [(b'content-type', b'application/x-www-form-urlencoded'),
                  (b'content-length', str(len(body)).encode())]
    path = urllib.parse.unquote(parts.path or '/')
    scope = {'type': 'http', 'asgi': {'version': '3.0'}, 'http_version': '1.1',
             'method': method, 'scheme': parts.scheme or 'http', 'path': path,
             'raw_path': (parts.path or '/').encode(), 'query_string': parts.query.encode(),
             'root_path': '', 'headers': headers, 'client': ('127.0.0.1', 1),
             'server': (parts.hostname or 'sim.local', parts.port or 80)}
    pending = [{'type': 'http.request', 'body': body, 'more_body': False}]
    out = {'status': 500, 'headers': {}, 'body': []}

    async def receive():
      if pending:
        return pending.pop()
      await asyncio.Event().wait()  # the client never disconnects

    async def send(message):
      if message['type'] == 'http.response.start':
        out['status'] = message['status']
        for k, v in message.get('headers', ()):
          key, value = k.decode('latin-1').lower(), v.decode('latin-1')
          if key == 'set-cookie':
            name, _, val = value.split(';', 1)[0].partition('=')
            self.cookies[name.strip()] = val.strip()
          out['headers'][key] = value
      elif message['type'] == 'http.response.body':
        out['body'].append(message.get('body', b''))

    await self.app(scope, receive, send)
    return out['status'], out['headers'], b''.join(out['body'])

  def _load(self, method: str, url: str, body: bytes = b'', push: bool = True) -> None:
    self._check_open()
    status, final, content = self._fetch(method, self._absolute(url), body)
    self._url, self._root = final, page_lib.parse(content)
    self._nodes, self._focus = page_lib.interactive(self._root), None
    if push:
      self.history = self.history[:self.position + 1] + [final]
      self.position = len(self.history) - 1
    if status >= 400:
      raise backend_lib.PageError(f'HTTP {status} at {urllib.parse.urlsplit(final).path}')

  def _check_open(self) -> None:
    if self.closed:
      raise backend_lib.BrowserDied('the sim browser was closed')

  # -- Backend

  def goto(self, url: str) -> None:
    self._load('GET', url)

  def url(self) -> str:
    return self._url

  def html(self) -> str:
    self._check_open()
    return page_lib.to_string(self._root)

  def _node(self, k: int):
    self._check_open()
    if not 0 <= k < len(self._nodes):
      raise backend_lib.ElementError(f'no element {k} on the page')
    return self._nodes[k]

  def click(self, k: int) -> None:
    node = self._node(k)
    self._focus = k
    kind = page_lib.element_kind(node)
    if kind == 'link':
      href = node.get('href', '')
      if href and not href.startswith(('#', 'javascript:')):
        self.goto(href)
    elif kind == 'button':
      if (node.get('type') or 'submit').lower() == 'submit':
        self._submit(node.iterancestors('form'), node)
    elif kind == 'checkbox':
      _set_flag(node, 'checked', node.get('checked') is None)
    elif kind == 'radio':
      for other in self._radio_group(node):
        _set_flag(other, 'checked', other is node)

  def type(self, k: int, text: str) -> None:
    node = self._node(k)
    if node.tag == 'textarea':
      for child in list(node):
        node.remove(child)
      node.text = text
    elif node.tag == 'input' and page_lib.element_kind(node) == 'input' and \
        (node.get('type') or 'text').lower() in _TEXT_TYPES:
      node.set('value', text)
    else:
      raise backend_lib.ElementError(f'element {k} is not a text field')
    self._focus = k

  def press_enter(self, k: int | None = None) -> None:
    if k is None:
      if self._focus is None:
        return
      k = self._focus
    node = self._node(k)
    kind = page_lib.element_kind(node)
    if kind in ('link', 'button', 'checkbox', 'radio'):
      return self.click(k) if kind in ('link', 'button') else None
    if kind == 'input':  # implicit submission, with the form's first submit button
      forms = list(node.iterancestors('form'))
      if forms:
        buttons = [b for b in forms[0].xpath('.//button | .//input')
                   if page_lib.element_kind(b) == 'button'
                   and (b.get('type') or 'submit').lower() == 'submit']
        self._submit(iter(forms), buttons[0] if buttons else None)

  def select(self, k: int, option_label: str) -> None:
    node = self._node(k)
    if node.tag != 'select':
      raise backend_lib.ElementError(f'element {k} is not a dropdown')
    options = node.xpath('.//option')
    labels = [page_lib.option_label(o) for o in options]
    match = [o for o, l in zip(options, labels) if l == option_label.strip()] or \
        [o for o, l in zip(options, labels) if l.lower() == option_label.strip().lower()]
    if not match:
      raise backend_lib.ElementError(f'no option {option_label!r} in element {k}; options: '
                                     f'{", ".join(labels)}')
    for o in options:
      _set_flag(o, 'selected', o is match[0])
    self._focus = k

  def hover(self, k: int) -> None:
    self._node(k)

  def back(self) -> None:
    self._check_open()
    if self.position > 0:
      self.position -= 1
      self._load('GET', self.history[self.position], push=False)

  def forward(self) -> None:
    self._check_open()
    if self.position + 1 < len(self.history):
      self.position += 1
      self._load('GET', self.history[self.position], push=False)

  def close(self) -> None:
    if not self.closed:
      try:
        self._fetch('GET', self.base_url + '/__end')  # frees the session's server state
      except Exception:  # noqa: BLE001 - closing never fails
        pass
      self.closed = True

  # -- forms

  def _radio_group(self, node) -> list:
    form = next(node.iterancestors('form'), None)
    scope = form if form is not None else self._root
    name = node.get('name')
    return [r for r in scope.xpath('.//input[@type="radio"]')
            if name and r.get('name') == name] or [node]

  def _submit(self, forms, submitter) -> None:
    form = next(forms, None)
    if form is None:
      return
    fields = form_data(form, submitter)
    method = (form.get('method') or 'get').upper()
    action = self._absolute(form.get('action') or self._url)
    if method == 'POST':
      self._load('POST', action, urllib.parse.urlencode(fields).encode())
    else:
      self._load('GET', urllib.parse.urlsplit(action)._replace(
          query=urllib.parse.urlencode(fields), fragment='').geturl())


def _run(coro):
  """Runs a coroutine to the end from sync code, also when this thread runs an event loop."""
  try:
    asyncio.get_running_loop()
  except RuntimeError:
    return asyncio.run(coro)
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    return pool.submit(asyncio.run, coro).result()


def _set_flag(node, attr: str, on: bool) -> None:
  if on:
    node.set(attr, attr)
  elif attr in node.attrib:
    del node.attrib[attr]


def form_data(form, submitter=None) -> list[tuple[str, str]]:
  """The (name, value) pairs a browser submits for `form`, in document order."""
  out = []
  for node in form.xpath('.//input | .//select | .//textarea | .//button'):
    name = node.get('name')
    if not name or node.get('disabled') is not None:
      continue
    if node.tag == 'select':
      chosen = page_lib.selected_option(node)
      if chosen is not None:
        out.append((name, page_lib.option_value(chosen)))
    elif node.tag == 'textarea':
      out.append((name, node.text_content()))
    elif node.tag == 'button' or (node.get('type') or '').lower() in _NO_SUBMIT_TYPES:
      if node is submitter:
        out.append((name, node.get('value', '')))
    elif (node.get('type') or '').lower() in ('checkbox', 'radio'):
      if node.get('checked') is not None:
        out.append((name, node.get('value', 'on')))
    else:
      out.append((name, node.get('value', '')))
  return out
