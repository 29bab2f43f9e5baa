"""The `chromium` backend: one headless Chromium tab driven through Selenium 4 and ChromeDriver.

It implements `backend.Backend` on a real browser, so pages run their own JavaScript (MiniWoB++,
miniwob.py) and the generated sites (sites.py) are checked against the `sim` backend
(tests/papers/webagent_r1/test_backends_agree.py). Choices where Selenium leaves room:

- Binaries are Debian's `chromium` and `chromium-driver` (/usr/bin/chromium, /usr/bin/chromedriver;
  `JAXPAPERS_CHROMIUM` / `JAXPAPERS_CHROMEDRIVER` override), started with the flags a closed
  loopback-only network needs (no background networking, sync or component updates) and a fresh
  `--user-data-dir` that `close()` removes. Selenium Manager is never asked for a driver.
- Element k is `snapshotItem(k)` of `document.evaluate(page.INTERACTIVE_XPATH, ...)`, the same
  expression `page.simplify` numbers with lxml. `html()` clones the document and writes the live
  form state (value, checked, option selected, textarea text) into the clone's attributes, so the
  page itself is not touched.
- HTTP errors: WebDriver cannot read status codes, so after every navigation the page's own
  Navigation Timing entry is read (`performance.getEntriesByType('navigation')[0].responseStatus`,
  Chromium >= 109); a status >= 400 raises `PageError` and the error page stays shown, as after a
  real click. A new document is told apart from the old one by `performance.timeOrigin`. Network
  failures (Chromium's chrome-error:// page, e.g. ERR_CONNECTION_REFUSED) and page-load timeouts
  are `PageError` too.
- Actions are real input events: Selenium's click, clear + send_keys, an Enter key press, a click
  on the chosen `<option>`, a pointer move for hover. A click whose element's centre is covered
  goes to a visible part of it, as a person would click; a hidden or wholly covered element is an
  `ElementError`, and Enter follows the browser's implicit-submission rules (the `sim` backend's
  rule, submit with the form's first submit button, is what a browser does on forms that have
  one; a textarea gets a newline). Press Enter with nothing focused does nothing, as in `sim`.
  Type takes the text-like input types and textareas; a date input is refused here (Chromium's
  date field does not take typed ISO dates) while `sim` accepts it.
- Never hang: every call runs under a watchdog that kills the browser's process group after
  `call_timeout_s`; a killed or crashed browser or driver is `BrowserDied`.
- Reuse: starting Chromium costs about a second, so `reset()` gives a fresh session in the same
  browser (a new tab, hence empty history, with cookies and site storage cleared).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

from selenium import webdriver
from selenium.common import exceptions as selenium_errors
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import page as page_lib

CHROMIUM = os.environ.get('JAXPAPERS_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('JAXPAPERS_CHROMEDRIVER', '/usr/bin/chromedriver')
FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--window-size=1280,1024')

# Input types that take typed text; anything else (checkbox, button, file, ...) refuses Type.
_TEXT_TYPES = ('text', 'search', 'email', 'password', 'url', 'tel', 'number', '')
_DEAD_MARKERS = ('invalid session id', 'chrome not reachable', 'disconnected',
                 'session deleted', 'no such window', 'target window already closed')

_FIND_JS = """
const r = document.evaluate(arguments[0], document, null,
                            XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
return [r.snapshotLength, r.snapshotItem(arguments[1])];
"""

# The document with live form state as attributes, on a clone (cloning copies values, checkedness
# and selectedness, and querySelectorAll visits both trees in the same order).
_HTML_JS = """
const sel = 'input, textarea, select';
const live = document.documentElement.querySelectorAll(sel);
const copy = document.documentElement.cloneNode(true);
const out = copy.querySelectorAll(sel);
for (let i = 0; i < live.length; i++) {
  const el = live[i], c = out[i];
  if (el.tagName === 'INPUT') {
    if (el.type === 'checkbox' || el.type === 'radio') {
      if (el.checked) c.setAttribute('checked', ''); else c.removeAttribute('checked');
    } else if (el.type !== 'file') {
      c.setAttribute('value', el.value);
    }
  } else if (el.tagName === 'TEXTAREA') {
    c.textContent = el.value;
  } else {
    for (let j = 0; j < el.options.length; j++) {
      if (el.options[j].selected) c.options[j].setAttribute('selected', '');
      else c.options[j].removeAttribute('selected');
    }
  }
}
return copy.outerHTML;
"""

# [document id, HTTP status, network error] of the current page; Chromium shows a failed load
# (e.g. connection refused) as a chrome-error:// page whose .error-code names the error.
_NAV_JS = """
const nav = performance.getEntriesByType('navigation')[0];
let error = '';
if (location.protocol === 'chrome-error:') {
  const code = document.querySelector('.error-code');
  error = (code && code.textContent.trim()) || 'the page could not be loaded';
}
return [String(performance.timeOrigin), nav ? nav.responseStatus : 0, error];
"""

# Before an action that may navigate: note (synchronously, inside the event dispatch) a form
# submission or a click on a link to another document, so `_settle` knows a load is coming even
# when the browser has not started it yet when the action returns.
_ARM_JS = """
window.__jpNav = null;
if (!window.__jpHooked) {
  window.__jpHooked = true;
  document.addEventListener('submit', e => { window.__jpNav = e; });
  document.addEventListener('click', e => {
    const a = e.target.closest ? e.target.closest('a[href]') : null;
    if (!a || a.protocol === 'javascript:') return;
    if (a.href.split('#')[0] === location.href.split('#')[0] && a.href.includes('#')) return;
    window.__jpNav = e;
  });
}
return String(performance.timeOrigin);
"""

# [document id, whether an armed navigation is still to come].
_PENDING_JS = """
const e = window.__jpNav;
return [String(performance.timeOrigin), !!(e && !e.defaultPrevented)];
"""

# An offset from the centre of arguments[0] to a point where it (or a child) is what a click
# hits, or null; for elements partly covered by others (MiniWoB places widgets that overlap).
_VISIBLE_POINT_JS = """
const el = arguments[0];
el.scrollIntoView({block: 'center', inline: 'center'});
const r = el.getBoundingClientRect();
const fractions = [0.5, 0.3, 0.7, 0.15, 0.85, 0.05, 0.95];
for (const fy of fractions) for (const fx of fractions) {
  const x = r.left + fx * r.width, y = r.top + fy * r.height;
  const hit = document.elementFromPoint(x, y);
  if (hit && (hit === el || el.contains(hit))) {
    return [Math.round((fx - 0.5) * r.width), Math.round((fy - 0.5) * r.height)];
  }
}
return null;
"""

# Whether the tab shows only the blank page it was opened with.
_BLANK_JS = ("return history.length === 1 && "
             "(location.href === 'about:blank' || location.href === 'data:,');")

# [index, labels] of the option labelled arguments[1] (exact, else case-blind) in the select
# arguments[0]; null when it is not a select. Labels as `page.option_label` reads them.
_OPTION_JS = """
const el = arguments[0];
if (el.tagName !== 'SELECT') return null;
const norm = s => (s || '').replace(/\\s+/g, ' ').trim();
const labels = Array.from(el.options, o => norm(o.getAttribute('label') || o.textContent));
const want = arguments[1].trim();
let i = labels.indexOf(want);
if (i < 0) i = labels.map(l => l.toLowerCase()).indexOf(want.toLowerCase());
return [i, labels];
"""

_ELEMENT_ERRORS = (selenium_errors.NoSuchElementException,
                   selenium_errors.StaleElementReferenceException,
                   selenium_errors.ElementNotInteractableException,
                   selenium_errors.InvalidElementStateException,
                   selenium_errors.MoveTargetOutOfBoundsException,
                   selenium_errors.UnexpectedTagNameException)


def browser_available() -> bool:
  """Whether the Chromium and ChromeDriver binaries are installed (tests skip without them)."""
  return all(os.path.isfile(p) and os.access(p, os.X_OK) for p in (CHROMIUM, CHROMEDRIVER))


@backend_lib.BACKENDS.register('chromium')
class ChromiumBackend(backend_lib.Backend):
  """One headless Chromium tab; `base_url` resolves relative URLs given to `goto`."""

  def __init__(self, app=None, base_url: str = '', *, page_load_timeout_s: float = 20.0,
               call_timeout_s: float = 30.0, end_path: str = '/__end'):
    del app  # a real browser reaches the sites over HTTP only
    self.base_url = base_url
    self.end_path = end_path  # GET before a session ends: the sites free its state (as `sim`)
    self.call_timeout_s = call_timeout_s
    self._driver = None
    self._killed = self._closing = False
    self._origins: set[str] = set()
    self._doc = ''  # performance.timeOrigin of the page last checked for its status
    self._profile = tempfile.mkdtemp(prefix='jaxpapers-chromium-')
    start = time.perf_counter()
    try:
      self._driver = _start_driver(self._profile)
      self._driver.set_page_load_timeout(page_load_timeout_s)
      self._driver.set_script_timeout(call_timeout_s)
    except Exception as e:
      self.close()
      raise backend_lib.BrowserDied(f'Chromium did not start: {_short(e)}') from e
    self.start_s = time.perf_counter() - start  # seconds to a usable browser

  # -- lifecycle

  def alive(self) -> bool:
    return (self._driver is not None and not self._killed
            and self._driver.service.process.poll() is None)

  def reset(self) -> None:
    """A fresh session in the same browser: new tab (empty history), cookies and storage cleared."""
    self._end_session()
    with self._guard('reset'):
      driver = self._driver
      old = driver.current_window_handle
      driver.switch_to.new_window('tab')
      new = driver.current_window_handle
      driver.switch_to.window(old)
      driver.close()
      driver.switch_to.window(new)
      driver.execute_cdp_cmd('Network.clearBrowserCookies', {})
      for origin in self._origins:
        driver.execute_cdp_cmd('Storage.clearDataForOrigin',
                               {'origin': origin, 'storageTypes': 'all'})
      self._origins.clear()
      self._doc = ''

  def close(self) -> None:
    if self._closing:
      return
    self._closing = True
    if self._driver is not None and not self._killed:
      self._end_session()
    driver, self._driver = self._driver, None
    if driver is not None:
      if not self._killed:
        timer = threading.Timer(10.0, _kill_group, (driver,))
        timer.daemon = True
        timer.start()
        with contextlib.suppress(Exception):
          driver.quit()
        timer.cancel()
      _kill_group(driver)
    if self._profile:
      shutil.rmtree(self._profile, ignore_errors=True)
      self._profile = ''

  def __del__(self):  # a backend never closed: no goodbye request, just free the processes
    with contextlib.suppress(Exception):
      if self._driver is not None:
        _kill_group(self._driver)
      if self._profile:
        shutil.rmtree(self._profile, ignore_errors=True)

  # -- navigation

  def goto(self, url: str) -> None:
    full = urllib.parse.urljoin(self.base_url, url)
    with self._guard(f'goto {full}'):
      web = full.startswith(('http://', 'https://'))  # pages may not replace() to data: etc.
      if web and self._driver.execute_script(_BLANK_JS):
        # A new tab's blank page is replaced, not kept in history: going back from the first
        # page does nothing, as in `sim`.
        before = self._arm()
        self._driver.execute_script(
            'window.__jpNav = {defaultPrevented: false}; location.replace(arguments[0]);', full)
        self._settle_load(before)
      else:
        self._driver.get(full)
      parts = urllib.parse.urlsplit(full)
      if parts.scheme in ('http', 'https'):
        self._origins.add(f'{parts.scheme}://{parts.netloc}')
      self._check_navigation(force=True)

  def url(self) -> str:
    with self._guard('url'):
      return self._driver.current_url

  def html(self) -> str:
    with self._guard('html'):
      return self._driver.execute_script(_HTML_JS)

  def back(self) -> None:
    with self._guard('back'):
      self._driver.back()
      self._check_navigation()

  def forward(self) -> None:
    with self._guard('forward'):
      self._driver.forward()
      self._check_navigation()

  def scroll(self, direction: str) -> None:
    super().scroll(direction)
    with self._guard('scroll'):
      sign = -1 if direction == 'up' else 1
      self._driver.execute_script(f'window.scrollBy(0, {sign} * 0.8 * window.innerHeight);')

  # -- elements

  def click(self, k: int) -> None:
    with self._guard(f'click {k}'):
      el = self._element(k)
      before = self._arm()
      try:
        el.click()
      except selenium_errors.ElementClickInterceptedException:
        self._click_visible_part(el)
      self._settle(before)

  def type(self, k: int, text: str) -> None:
    with self._guard(f'type {k}'):
      el = self._element(k)
      kind = self._driver.execute_script(
          'const e = arguments[0]; return e.tagName === "TEXTAREA" ? "textarea" :'
          ' (e.tagName === "INPUT" ? (e.getAttribute("type") || "").toLowerCase() : null);', el)
      if kind is None or (kind != 'textarea' and kind not in _TEXT_TYPES):
        raise backend_lib.ElementError(f'element {k} is not a text field')
      el.clear()
      el.send_keys(text)

  def press_enter(self, k: int | None = None) -> None:
    with self._guard('press_enter'):
      if k is None:
        el = self._driver.switch_to.active_element
        if el.tag_name.lower() in ('body', 'html'):
          return  # nothing focused: Enter does nothing
      else:
        el = self._element(k)
      before = self._arm()
      el.send_keys(Keys.ENTER)
      self._settle(before)

  def select(self, k: int, option_label: str) -> None:
    with self._guard(f'select {k}'):
      el = self._element(k)
      found = self._driver.execute_script(_OPTION_JS, el, option_label)
      if found is None:
        raise backend_lib.ElementError(f'element {k} is not a dropdown')
      index, labels = found
      if index < 0:
        raise backend_lib.ElementError(f'no option {option_label!r} in element {k}; options: '
                                       f'{", ".join(labels)}')
      before = self._arm()
      try:
        Select(el).select_by_index(index)
      except NotImplementedError as e:  # Selenium refuses disabled options this way
        raise backend_lib.ElementError(f'element {k}: {e}') from None
      self._settle(before)

  def hover(self, k: int) -> None:
    with self._guard(f'hover {k}'):
      ActionChains(self._driver).move_to_element(self._element(k)).perform()

  def run_js(self, script: str, *args):
    """Runs `script` in the page (as Selenium's execute_script) under the same guard."""
    with self._guard('script'):
      return self._driver.execute_script(script, *args)

  def element_count(self) -> int:
    """How many nodes INTERACTIVE_XPATH selects on the live page."""
    with self._guard('element_count'):
      return self._driver.execute_script(_FIND_JS, page_lib.INTERACTIVE_XPATH, 0)[0]

  # -- internals

  def _end_session(self) -> None:
    if self.base_url and self.end_path:
      with contextlib.suppress(backend_lib.PageError, backend_lib.BrowserDied):
        self.goto(self.end_path)

  def _element(self, k: int):
    _, el = self._driver.execute_script(_FIND_JS, page_lib.INTERACTIVE_XPATH, int(k))
    if el is None:
      raise backend_lib.ElementError(f'no element {k} on the page')
    return el

  def _click_visible_part(self, el) -> None:
    """Clicks a point of `el` that no other element covers (its centre was covered)."""
    offset = self._driver.execute_script(_VISIBLE_POINT_JS, el)
    if offset is None:
      raise backend_lib.ElementError('another element covers it')
    ActionChains(self._driver).move_to_element_with_offset(el, *offset).click().perform()

  def _arm(self) -> str:
    """Watches for a load the next action starts; returns the current document's id."""
    return self._driver.execute_script(_ARM_JS)

  def _settle(self, before: str) -> None:
    """Waits for the load an armed action started, then checks the new page's status."""
    self._settle_load(before)
    self._check_navigation()

  def _settle_load(self, before: str) -> None:
    deadline = time.monotonic() + self.call_timeout_s
    while True:
      doc, pending = self._driver.execute_script(_PENDING_JS)  # waits while a page loads
      if doc != before or not pending or time.monotonic() > deadline:
        return
      time.sleep(0.01)

  def _check_navigation(self, force: bool = False) -> None:
    """PageError when a new document (or, with `force`, the current one) has an HTTP error."""
    doc, status, error = self._driver.execute_script(_NAV_JS)
    if doc == self._doc and not force:
      return
    self._doc = doc
    if error:
      raise backend_lib.PageError(f'{error} at {self._driver.current_url}')
    if status >= 400:
      path = urllib.parse.urlsplit(self._driver.current_url).path
      raise backend_lib.PageError(f'HTTP {status} at {path}')

  @contextlib.contextmanager
  def _guard(self, what: str):
    """Runs one call under the watchdog and maps Selenium's failures onto the backend errors."""
    if self._driver is None or self._killed:
      raise backend_lib.BrowserDied(f'{what}: the browser is closed')
    timer = threading.Timer(self.call_timeout_s, self._watchdog)
    timer.daemon = True
    timer.start()
    try:
      yield
    except (backend_lib.ElementError, backend_lib.PageError):
      raise
    except _ELEMENT_ERRORS as e:
      raise backend_lib.ElementError(f'{what}: {_short(e)}') from None
    except selenium_errors.ElementClickInterceptedException as e:
      raise backend_lib.ElementError(f'{what}: another element covers it') from e
    except Exception as e:  # noqa: BLE001 - sorted into died / page failure below
      if self._killed or not self.alive() or _looks_dead(e):
        reason = f'no answer within {self.call_timeout_s:g} s' if self._killed else _short(e)
        self.close()
        raise backend_lib.BrowserDied(f'{what}: {reason}') from None
      if isinstance(e, selenium_errors.TimeoutException):
        raise backend_lib.PageError(f'{what}: page load timed out') from None
      if isinstance(e, selenium_errors.WebDriverException):
        raise backend_lib.PageError(f'{what}: {_short(e)}') from None
      raise
    finally:
      timer.cancel()

  def _watchdog(self) -> None:
    self._killed = True
    if self._driver is not None:
      _kill_group(self._driver)


def _start_driver(profile: str):
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for flag in FLAGS:
    options.add_argument(flag)
  options.add_argument(f'--user-data-dir={profile}')
  options.unhandled_prompt_behavior = 'accept'  # a page's alert() must not block the agent
  # Its own process group, so the watchdog can kill chromedriver and Chromium together.
  # Its log (and the Debian wrapper script's stderr noise) is not kept.
  service = Service(CHROMEDRIVER, log_output=subprocess.DEVNULL,
                    popen_kw={'start_new_session': True})
  return webdriver.Chrome(service=service, options=options)


def _kill_group(driver) -> None:
  process = getattr(driver.service, 'process', None)
  if process is None:
    return
  with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
    os.killpg(process.pid, signal.SIGKILL)
  with contextlib.suppress(Exception):
    process.wait(timeout=5)


def _looks_dead(e: Exception) -> bool:
  if isinstance(e, (selenium_errors.InvalidSessionIdException,
                    selenium_errors.NoSuchWindowException, ConnectionError)):
    return True
  if type(e).__module__.startswith('urllib3'):
    return True
  return any(m in str(e).lower() for m in _DEAD_MARKERS)


def _short(e: Exception) -> str:
  """The first line of a Selenium message, without its stack trace."""
  text = getattr(e, 'msg', None) or str(e) or type(e).__name__
  return text.strip().splitlines()[0][:300]
