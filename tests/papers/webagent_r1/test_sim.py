"""The sim backend: browser-like form submission, redirects, history, errors and run_action."""
import asyncio
import urllib.parse

import fastapi
from fastapi import responses
import pytest

from jaxpapers.papers.webagent_r1 import actions
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import sim
from jaxpapers.papers.webagent_r1 import sites

FORM = '''<html><body><form action="/echo" method="{method}">
<input name="q" value="start"><input type="hidden" name="h" value="secret">
<input type="checkbox" name="c1" value="yes" checked><input type="checkbox" name="c2">
<input type="radio" name="r" value="a" checked><input type="radio" name="r" value="b">
<select name="s"><option value="v1">One</option><option>Two</option></select>
<textarea name="t">old</textarea><input name="off" value="x" disabled>
<button name="go" value="first">First</button><button name="go" value="second">Second</button>
</form><a href="/form?method=get">other</a></body></html>'''


def echo_app() -> fastapi.FastAPI:
  app = fastapi.FastAPI()

  @app.get('/form')
  async def form(method: str = 'post'):
    return responses.HTMLResponse(FORM.format(method=method))

  async def echo(request: fastapi.Request):
    body = (await request.body()).decode() if request.method == 'POST' else request.url.query
    return responses.HTMLResponse(f'<html><body><p>{request.method} {body}</p></body></html>')
  app.add_api_route('/echo', echo, methods=['GET', 'POST'])
  return app


@pytest.fixture(scope='module')
def echo():
  return echo_app()


@pytest.fixture(scope='module')
def app():
  return sites.make_app(0)


def _echoed(b) -> tuple[str, list]:
  method, _, query = b.observe().text.partition(' ')
  return method, urllib.parse.parse_qsl(query, keep_blank_values=True)


def test_post_form_sends_fields_like_a_browser(echo):
  b = sim.SimBackend(echo)
  b.goto('/form')
  # ids: 0 q, 1 c1, 2 c2, 3 r=a, 4 r=b, 5 s, 6 t, 7 off, 8 First, 9 Second, 10 link
  b.type(0, 'mug')
  b.click(2)  # check c2
  b.click(4)  # radio b
  b.select(5, 'two')  # case-blind
  b.type(6, 'new text')
  b.click(9)  # the second submit button
  method, fields = _echoed(b)
  assert method == 'POST'
  assert fields == [('q', 'mug'), ('h', 'secret'), ('c1', 'yes'), ('c2', 'on'), ('r', 'b'),
                    ('s', 'Two'), ('t', 'new text'), ('go', 'second')]


def test_get_form_and_enter_submit_with_the_default_button(echo):
  b = sim.SimBackend(echo)
  b.goto('/form?method=get')
  b.click(1)  # uncheck c1
  b.press_enter(0)  # implicit submission: the first submit button
  method, fields = _echoed(b)
  assert method == 'GET'
  assert dict(fields) == {'q': 'start', 'h': 'secret', 'r': 'a', 's': 'v1', 't': 'old',
                          'go': 'first'}
  assert b.url().startswith(sim.DEFAULT_BASE + '/echo?')


def test_typed_state_shows_in_the_observation(echo):
  b = sim.SimBackend(echo)
  b.goto('/form')
  b.type(0, 'abc')
  b.select(5, 'Two')
  b.click(1)
  b.click(4)
  p = b.observe()
  assert p.elements['0'].value == 'abc' and 'value="abc"' in p.text
  assert p.elements['5'].value == 'Two'
  assert not p.elements['1'].checked
  assert p.elements['4'].checked and not p.elements['3'].checked  # one radio of a group


def test_press_enter_without_focus_does_nothing_and_in_textarea_does_not_submit(echo):
  b = sim.SimBackend(echo)
  b.goto('/form')
  b.press_enter()
  b.type(6, 'x')
  b.press_enter()
  assert b.url().endswith('/form')


def test_element_errors(echo):
  b = sim.SimBackend(echo)
  b.goto('/form')
  for call in (lambda: b.click(99), lambda: b.type(10, 'x'), lambda: b.type(5, 'x'),
               lambda: b.select(5, 'Three'), lambda: b.select(0, 'One'), lambda: b.hover(-1)):
    with pytest.raises(backend_lib.ElementError):
      call()


def test_post_redirect_get_history_and_back_forward(app):
  b = sim.SimBackend(app)
  b.goto('/shop/product/101')
  b.click(b.observe().find('button', 'Add to cart').index)
  assert b.url().endswith('/shop/cart')
  assert [u.split('sim.local')[1] for u in b.history] == ['/shop/product/101', '/shop/cart']
  b.back()
  assert b.url().endswith('/shop/product/101')
  b.forward()
  assert b.url().endswith('/shop/cart') and 'Cart (1)' in b.observe().text
  b.back()
  b.goto('/forum/')  # a new page drops the forward entries
  b.forward()
  assert b.url().endswith('/forum/')
  assert len(b.history) == 2


def test_http_error_loads_the_page_and_raises(app):
  b = sim.SimBackend(app)
  b.goto('/')
  with pytest.raises(backend_lib.PageError, match='500'):
    b.click(b.observe().find('link', 'Broken page').index)
  assert 'Server error' in b.observe().text


def test_closed_backend_dies(app):
  b = sim.SimBackend(app)
  b.goto('/shop/')
  b.close()
  b.close()
  with pytest.raises(backend_lib.BrowserDied):
    b.observe()


def test_run_action_maps_every_action(app):
  b = sim.SimBackend(app)
  b.goto('/shop/')
  run = lambda text: backend_lib.run_action(b, actions.parse_action(text))  # noqa: E731
  run('do(action="Search", argument="red mug", element="2")')
  assert 'q=red+mug' in b.url()
  for text in ('do(action="Scroll Down")', 'do(action="Scroll Up")', 'do(action="Wait")',
               'do(action="Switch Tab", argument="0")', 'do(action="Hover", element="0")',
               'do(action="Right Click", element="0")'):
    before = b.url()
    run(text)
    assert b.url() == before
  with pytest.raises(backend_lib.ElementError):
    run('do(action="Switch Tab", argument="1")')
  run('go_backward()')
  assert b.url().endswith('/shop/')
  run('go_forward()')
  assert 'q=red+mug' in b.url()
  run('do(action="Click", element="0")')
  assert b.url().endswith('/shop/')
  run('do(action="Type", argument="kite", element="2")')
  run('do(action="Press Enter")')
  assert 'q=kite' in b.url()
  with pytest.raises(ValueError):
    run('exit(message="done")')


def test_make_looks_up_backends_by_name(app):
  assert isinstance(backend_lib.make('sim', app), sim.SimBackend)
  with pytest.raises(ValueError, match='sim'):
    backend_lib.make('netscape', app)


def test_works_inside_a_running_event_loop(app):
  async def inside():
    b = sim.SimBackend(app)
    b.goto('/forum/')
    return b.observe().text
  assert 'Boards:' in asyncio.run(inside())
