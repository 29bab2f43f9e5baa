"""The chromium backend on the served sites: actions, form state, HTTP errors, a dead browser."""
import os
import pathlib
import signal
import socket
import time

import pytest

from jaxpapers.papers.webagent_r1 import actions
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import chromium
from jaxpapers.papers.webagent_r1 import sites

pytestmark = pytest.mark.skipif(not chromium.browser_available(),
                                reason='needs Debian chromium + chromium-driver')


@pytest.fixture(scope='module')
def site_url():
  url, stop = sites.serve(sites.make_app(0))
  yield url
  stop()


@pytest.fixture(scope='module')
def browser(site_url):
  b = chromium.ChromiumBackend(None, site_url)
  yield b
  b.close()


@pytest.fixture
def b(browser):
  browser.reset()
  return browser


def test_chromium_starts_within_seconds(browser):
  assert 0 < browser.start_s < 20


def test_chromium_search_click_back_forward(b, site_url):
  b.goto('/shop/')
  page = b.observe()
  box, button = page.find('input', 'Search'), page.find('button', 'Search')
  b.type(int(box.id), 'mug')
  b.click(int(button.id))
  assert b.url() == f'{site_url}/shop/search?q=mug'
  first = b.observe().find('link', contains='Mug')
  b.click(int(first.id))
  assert '/shop/product/' in b.url()
  product_url = b.url()
  b.back()
  assert b.url().endswith('/shop/search?q=mug')
  b.forward()
  assert b.url() == product_url
  assert b.observe().text.startswith(f'<h1>{first.label}</h1>')


def test_chromium_html_carries_form_state(b):
  b.goto('/admin/order/1117')
  page = b.observe()
  street = page.find('input', 'Street')
  status = next(e for e in page.elements.values() if 'Shipped' in e.options)
  b.type(int(street.id), '1 Test Rd')
  b.select(int(status.id), 'shipped')  # case-blind, as sim
  after = b.observe()
  assert after.elements[street.id].value == '1 Test Rd'
  assert after.elements[status.id].value == 'Shipped'


def test_chromium_run_action_and_enter_submits(b, site_url):
  b.goto('/shop/')
  box = b.observe().find('input', 'Search')
  backend_lib.run_action(b, actions.parse_action(
      f'do(action="Search", argument="lamp", element="{box.id}")'))
  assert b.url() == f'{site_url}/shop/search?q=lamp'
  backend_lib.run_action(b, actions.parse_action('do(action="Press Enter")'))  # nothing focused


def test_chromium_bad_elements_are_element_errors(b):
  b.goto('/shop/')
  with pytest.raises(backend_lib.ElementError, match='no element 99 on the page'):
    b.click(99)
  with pytest.raises(backend_lib.ElementError, match='not a text field'):
    b.type(0, 'x')  # a link
  with pytest.raises(backend_lib.ElementError, match='not a dropdown'):
    b.select(0, 'x')


def test_chromium_http_500_is_page_error_and_shows_the_page(b):
  with pytest.raises(backend_lib.PageError, match='HTTP 500 at /__error'):
    b.goto('/__error')
  assert 'Error 500.' in b.observe().text
  b.goto('/')
  broken = b.observe().find('link', 'Broken page')
  with pytest.raises(backend_lib.PageError, match='HTTP 500'):
    b.click(int(broken.id))
  b.back()  # the error stays with its page: leaving it is fine
  assert b.observe().find('link', 'Broken page') is not None


def test_chromium_unreachable_server_is_page_error(b):
  with socket.socket() as s:  # a port nothing listens on
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  with pytest.raises(backend_lib.PageError, match='ERR_CONNECTION_REFUSED'):
    b.goto(f'http://127.0.0.1:{port}/')


def test_chromium_reset_gives_a_fresh_session(b, site_url):
  b.goto('/shop/product/119')
  b.click(int(b.observe().find('button', 'Add to cart').id))
  b.goto('/shop/')
  assert b.observe().find('link', 'Cart (1)') is not None
  b.reset()
  b.back()  # the new tab has no history
  assert b.url() == 'about:blank'
  b.goto('/shop/')
  assert b.observe().find('link', 'Cart (0)') is not None  # new cookie, new cart


def browser_pid(b) -> int:
  """The Chromium process that ChromeDriver started (its child, from /proc)."""
  driver = b._driver.service.process.pid
  for stat in pathlib.Path('/proc').glob('[0-9]*/stat'):
    try:
      fields = stat.read_text().rsplit(')', 1)[1].split()
    except OSError:
      continue
    if int(fields[1]) == driver and fields[0] != 'Z':
      return int(stat.parent.name)
  raise AssertionError('no browser process under chromedriver')


def test_chromium_killed_browser_is_browser_died_fast(site_url):
  b = chromium.ChromiumBackend(None, site_url)
  b.goto('/shop/')
  os.kill(browser_pid(b), signal.SIGKILL)
  start = time.monotonic()
  with pytest.raises(backend_lib.BrowserDied):
    b.click(0)
  assert time.monotonic() - start < 10
  with pytest.raises(backend_lib.BrowserDied):
    b.html()
  b.close()
  b.close()  # harmless twice


def test_chromium_hung_page_is_browser_died_after_timeout(site_url):
  b = chromium.ChromiumBackend(None, site_url, call_timeout_s=2)
  b.goto('/shop/')
  start = time.monotonic()
  with pytest.raises(backend_lib.BrowserDied, match='no answer within 2 s'):
    b.run_js('while (true) {}')
  assert time.monotonic() - start < 10
  assert not b.alive()
  b.close()
