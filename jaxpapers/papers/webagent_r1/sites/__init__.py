"""Generated websites for the web agent: a shop, a forum and an admin site under one app.

`make_app(world_seed)` builds a FastAPI app serving `/shop`, `/forum` and `/admin` over the world of
`world_seed` (world.py), the stand-ins for WebArena's shopping, reddit and shopping-admin sites.
State is per browser session (cookie `sid`); `GET /__reset` clears the caller's session and
`GET /__end` drops it. `GET /__error` answers HTTP 500; the root page `/` links to it (fault
tests; tasks start under the sites, never at `/`). `serve(app)` runs the app on
127.0.0.1 with uvicorn in a background thread, for backends that need a real HTTP server.

`items_per_page` bounds every list: the policy reads whole pages, so pages stay short (~300-700
characters of simplified text with the default 5).
"""
from __future__ import annotations

import socket
import threading
import time

import fastapi

from jaxpapers.papers.webagent_r1.sites import admin
from jaxpapers.papers.webagent_r1.sites import common
from jaxpapers.papers.webagent_r1.sites import forum
from jaxpapers.papers.webagent_r1.sites import shop
from jaxpapers.papers.webagent_r1.sites import world as world_lib

SITES = ('shop', 'forum', 'admin')


def make_app(world_seed: int = 0, items_per_page: int = 5) -> fastapi.FastAPI:
  """The three sites over the world of `world_seed`."""
  world = world_lib.generate(world_seed)
  sessions = common.Sessions()
  app = fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
  app.state.world, app.state.sessions = world, sessions

  @app.get('/')
  async def root():
    links = ' '.join(common.link(f'/{s}/', s) for s in SITES)
    links += ' ' + common.link('/__error', 'Broken page')  # no task starts here: for fault tests
    return common.page_response(common.document('Sites', links, ''))

  @app.get('/__reset')
  async def reset(request: fastapi.Request):
    sessions.reset(request.state.sid)
    return common.page_response(common.document('Reset', '', '<p>Session cleared.</p>'))

  @app.get('/__end')
  async def end(request: fastapi.Request):
    sessions.drop(request.state.sid)
    return common.page_response(common.document('Ended', '', ''))

  @app.get('/__error')
  async def error():
    return common.page_response(common.document('Server error', '', '<p>Error 500.</p>'), 500)

  for site in (shop, forum, admin):
    app.include_router(site.router(world, sessions, items_per_page))
  app.add_middleware(SessionCookie, sessions=sessions)
  return app


class SessionCookie:
  """ASGI middleware: puts the caller's session id in `request.state.sid` and sets the cookie
  when the session is new. (Plain ASGI, not `app.middleware('http')`, which would make responses
  stream and wait on client disconnects.)"""

  def __init__(self, app, sessions: common.Sessions):
    self.app, self.sessions = app, sessions

  async def __call__(self, scope, receive, send):
    if scope['type'] != 'http':
      return await self.app(scope, receive, send)
    sent = _cookie(scope.get('headers', ()), common.COOKIE)
    sid, _ = self.sessions.get(sent)
    scope.setdefault('state', {})['sid'] = sid

    async def send_with_cookie(message):
      if message['type'] == 'http.response.start' and sent != sid:
        cookie = f'{common.COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax'
        message = {**message, 'headers': [*message.get('headers', ()),
                                          (b'set-cookie', cookie.encode())]}
      await send(message)
    return await self.app(scope, receive, send_with_cookie)


def _cookie(headers, name: str) -> str | None:
  for key, value in headers:
    if key.lower() == b'cookie':
      for part in value.decode('latin-1').split(';'):
        k, _, v = part.strip().partition('=')
        if k == name:
          return v
  return None


def serve(app, port: int = 0, host: str = '127.0.0.1', timeout_s: float = 20.0):
  """Runs `app` with uvicorn on a background thread; returns (base_url, stop_fn)."""
  import uvicorn  # pylint: disable=g-import-not-at-top  (only the HTTP backends need it)
  sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  sock.bind((host, port))
  server = uvicorn.Server(uvicorn.Config(app, log_level='warning', access_log=False,
                                         lifespan='off'))
  thread = threading.Thread(target=server.run, kwargs={'sockets': [sock]}, daemon=True)
  thread.start()
  deadline = time.monotonic() + timeout_s
  while not server.started:
    if not thread.is_alive() or time.monotonic() > deadline:
      raise RuntimeError('the site server did not start')
    time.sleep(0.02)
  url = f'http://{host}:{sock.getsockname()[1]}'

  def stop():
    server.should_exit = True
    thread.join(timeout_s)
    sock.close()
  return url, stop
