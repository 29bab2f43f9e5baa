"""The generated sites: deterministic worlds, per-session state, post-redirect-get, serving."""
import asyncio
import urllib.request

import pytest

from jaxpapers.papers.webagent_r1 import sim
from jaxpapers.papers.webagent_r1 import sites
from jaxpapers.papers.webagent_r1.sites import common
from jaxpapers.papers.webagent_r1.sites import world as world_lib


@pytest.fixture(scope='module')
def app():
  return sites.make_app(0)


def _raw(b: sim.SimBackend, method: str, path: str, body: bytes = b''):
  """One request without following redirects: (status, headers, body)."""
  return asyncio.run(b._asgi(method, b.base_url + path, body))  # pylint: disable=protected-access


def test_world_is_a_function_of_the_seed():
  a, b, c = world_lib.generate(0), world_lib.generate(0), world_lib.generate(1)
  assert a.products == b.products and a.orders == b.orders
  assert a.products != c.products


def test_world_names_are_unique_and_never_substrings_of_each_other():
  w = world_lib.generate(0)
  for names in ([p.name for p in w.products], [t.title for t in w.threads],
                [c.name for c in w.customers]):
    assert len(set(names)) == len(names)
    assert not [(x, y) for x in names for y in names if x != y and x in y]
  for items in (w.products, w.threads, w.orders):
    assert len({len(str(x.id)) for x in items}) == 1  # fixed width: /product/101 vs /product/1011
  assert len({p.price for p in w.products}) == len(w.products)


def test_post_answers_303_to_a_get_page(app):
  b = sim.SimBackend(app)
  for path, body in (('/shop/cart/add', b'pid=101'), ('/forum/t/101/reply', b'text=hi'),
                     ('/admin/order/1042/status', b'status=Shipped'),
                     ('/forum/b/music/new', b'title=x&body=y')):
    status, headers, _ = _raw(b, 'POST', path, body)
    assert status == 303, path
    assert _raw(b, 'GET', headers['location'])[0] == 200


def test_state_is_per_session_and_reset_clears_it(app):
  a, b = sim.SimBackend(app), sim.SimBackend(app)
  a.goto('/shop/product/101')
  a.click(a.observe().find('button', 'Add to cart').index)
  assert 'Cart (1)' in a.observe().text
  b.goto('/shop/cart')
  assert 'Cart (0)' in b.observe().text
  a.goto('/__reset')
  a.goto('/shop/cart')
  assert 'Cart (0)' in a.observe().text
  assert a.cookies['sid'] != b.cookies['sid']


def test_admin_edits_are_per_session(app):
  a, b = sim.SimBackend(app), sim.SimBackend(app)
  a.goto('/admin/order/1042')
  p = a.observe()
  a.select(p.find('select', 'Status').index, 'Canceled')
  a.click(p.find('button', 'Update status').index)
  assert a.observe().find('select', 'Status').value == 'Canceled'
  assert 'Saved.' in a.observe().text
  b.goto('/admin/order/1042')
  assert b.observe().find('select', 'Status').value == world_lib.generate(0).order(1042).status


def test_sessions_drop_the_oldest_beyond_capacity():
  s = common.Sessions(capacity=2)
  first, _ = s.get(None)
  s.get(None), s.get(None)
  assert len(s) == 2
  assert s.get(first)[0] != first  # evicted: a new session


def test_forum_board_lists_newest_first_across_pages(app):
  b = sim.SimBackend(app)
  w = world_lib.generate(0)
  want = [t.title for t in sorted((t for t in w.threads if t.board == 'music'),
                                  key=lambda t: -t.time)]
  b.goto('/forum/b/music')
  seen = []
  while True:
    p = b.observe()
    seen += [e.label for e in p.elements.values() if e.href.startswith('/forum/t/')]
    nxt = p.find('link', 'Next')
    if nxt is None:
      break
    b.click(nxt.index)
  assert seen == want


def test_error_route_answers_500(app):
  assert _raw(sim.SimBackend(app), 'GET', '/__error')[0] == 500


def test_serve_runs_a_real_http_server(app):
  url, stop = sites.serve(app)
  try:
    with urllib.request.urlopen(url + '/shop/', timeout=10) as r:
      assert r.status == 200
      assert 'sid=' in r.headers['set-cookie']
      assert b'Search products' in r.read()
  finally:
    stop()
