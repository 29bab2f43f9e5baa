"""What the three sites share: per-session state, the page layout, forms, redirects, pagination.

State is per browser session (the `sid` cookie), so parallel episodes never see each other's carts,
replies or edits; an unknown or missing cookie starts a clean session. Each session keeps only its
changes over the immutable generated world (`world.py`). Forms are posted url-encoded and parsed
here (no multipart dependency), and every POST answers 303 to a GET page (post-redirect-get), so a
browser's history holds only GETs and back/forward re-fetch the same pages in every backend.
"""
from __future__ import annotations

import collections
import dataclasses
import html
import itertools
import secrets
import threading
import urllib.parse

import fastapi
from fastapi import responses

COOKIE = 'sid'
MAX_SESSIONS = 4096  # oldest sessions are dropped beyond this (long RL runs open many)


@dataclasses.dataclass
class Session:
  """One browser session's changes to the world."""
  cart: list[int] = dataclasses.field(default_factory=list)            # product ids, in order
  shop_orders: list[dict] = dataclasses.field(default_factory=list)    # placed orders
  replies: dict[int, list] = dataclasses.field(default_factory=dict)   # thread id -> new Posts
  new_threads: list = dataclasses.field(default_factory=list)          # Threads posted
  order_edits: dict[int, dict] = dataclasses.field(default_factory=dict)  # order id -> fields


class Sessions:
  """sid -> Session, least recently used dropped first; thread-safe (uvicorn runs in a thread)."""

  def __init__(self, capacity: int = MAX_SESSIONS):
    self.capacity = capacity
    self._store: collections.OrderedDict[str, Session] = collections.OrderedDict()
    self._lock = threading.Lock()
    self._count = itertools.count()

  def get(self, sid: str | None) -> tuple[str, Session]:
    """The session of `sid`, or a new one (with a new sid) when unknown."""
    with self._lock:
      if sid in self._store:
        self._store.move_to_end(sid)
        return sid, self._store[sid]
      sid = f'{next(self._count)}-{secrets.token_hex(6)}'
      self._store[sid] = Session()
      while len(self._store) > self.capacity:
        self._store.popitem(last=False)
      return sid, self._store[sid]

  def reset(self, sid: str) -> None:
    with self._lock:
      self._store[sid] = Session()

  def drop(self, sid: str) -> None:
    with self._lock:
      self._store.pop(sid, None)

  def __len__(self) -> int:
    return len(self._store)


class Site:
  """One site: its pages are async methods named in `ROUTES` (HTTP method, path, method name)."""
  PREFIX = ''
  ROUTES: tuple[tuple[str, str, str], ...] = ()

  def __init__(self, world, sessions: Sessions, per_page: int):
    self.world, self.sessions, self.per_page = world, sessions, per_page

  def session(self, request) -> Session:
    return self.sessions.get(request.state.sid)[1]

  def router(self) -> fastapi.APIRouter:
    r = fastapi.APIRouter(prefix=self.PREFIX)
    for method, path, name in self.ROUTES:
      r.add_api_route(path, getattr(self, name), methods=[method])
    return r


def esc(text) -> str:
  return html.escape(str(text), quote=True)


def document(title: str, nav: str, body: str) -> str:
  """A full page: the site's heading and navigation line, then the body."""
  return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{esc(title)}</title></head>'
          f'<body><h1>{esc(title)}</h1><nav>{nav}</nav>{body}</body></html>')


def link(href: str, text: str, attrs: str = '') -> str:
  return f'<a href="{esc(href)}"{attrs}>{esc(text)}</a>'


def page_response(content: str, status: int = 200) -> responses.HTMLResponse:
  # no-store: back/forward re-fetch the page (no bfcache, no restored form state) in a browser too
  return responses.HTMLResponse(content, status, headers={'Cache-Control': 'no-store'})


def redirect(url: str) -> responses.RedirectResponse:
  return responses.RedirectResponse(url, status_code=303)


async def form_fields(request) -> dict[str, str]:
  """The url-encoded form of a POST; the last value of a repeated name wins."""
  body = (await request.body()).decode('utf-8', 'replace')
  return {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}


def int_arg(value, default: int = 1) -> int:
  try:
    return max(1, int(value))
  except (TypeError, ValueError):
    return default


def paginate(items: list, page: int, per_page: int, base: str, query: dict | None = None
             ) -> tuple[list, str]:
  """(the items of page `page`, the Previous/Next links line) for a list shown `per_page` at a
  time; `base` is the page's path and `query` its other query parameters."""
  pages = max(1, -(-len(items) // per_page))
  page = min(page, pages)
  shown = items[(page - 1) * per_page:page * per_page]
  links = []
  for label, target in (('Previous', page - 1), ('Next', page + 1)):
    if 1 <= target <= pages:
      q = urllib.parse.urlencode({**(query or {}), 'page': target})
      links.append(link(f'{base}?{q}', label))
  footer = f'<p>Page {page}/{pages} {" ".join(links)}</p>' if pages > 1 else ''
  return shown, footer


def lines(rows: list[str]) -> str:
  """Rows as list items (one line each in the simplified page)."""
  return '<ul>' + ''.join(f'<li>{r}</li>' for r in rows) + '</ul>'


def select(name: str, label: str, options, chosen: str) -> str:
  opts = ''.join(f'<option{" selected" if o == chosen else ""}>{esc(o)}</option>' for o in options)
  return f'<select name="{esc(name)}" aria-label="{esc(label)}">{opts}</select>'


def text_input(name: str, label: str, value: str = '') -> str:
  return f'<input name="{esc(name)}" aria-label="{esc(label)}" value="{esc(value)}">'
