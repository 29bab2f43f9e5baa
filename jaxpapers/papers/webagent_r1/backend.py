"""The browser interface every backend implements, and the mapping of parsed actions onto it.

A `Backend` is one browser session (one tab, its own cookies and history) on the generated sites.
Element index k is the k-th node of `page.INTERACTIVE_XPATH` on the current page, the id the agent
sees in `page.simplify(backend.html())`. Two backends implement it: `sim` (in-process, lxml; see
sim.py) and `chromium` (headless Chromium; chromium.py). `run_action` is shared by both, so an
action means the same thing everywhere.

Errors: `ElementError` (no such element, not interactable, no such option) and `PageError` (an HTTP
error status, a failed navigation) become error observations; `BrowserDied` ends the episode.

Action semantics where the reference's grammar leaves room (`actions.DO_ACTIONS`):
- Search = Type then Press Enter on the same element; Press Enter (no element in the grammar)
  acts on the focused element, the last one clicked or typed into.
- Right Click and Hover change nothing on our sites, but the element must exist.
- Scroll Up/Down and Wait change nothing: the observation is always the whole page.
- Switch Tab: only tab 0 exists; any other index is an ElementError.
- exit is not a browser action; the env handles it.
"""
from __future__ import annotations

import dataclasses
import importlib

from jaxpapers.core.registry import Registry
from jaxpapers.papers.webagent_r1 import actions
from jaxpapers.papers.webagent_r1 import page as page_lib
from jaxpapers.papers.webagent_r1 import prompts

# name -> factory(app, base_url) -> Backend. `app` is the sites' ASGI app (sites.make_app) for
# in-process backends; `base_url` is where the same app is served over HTTP (sites.serve).
BACKENDS = Registry('browser backend')
_MODULES = {'sim': 'sim', 'chromium': 'chromium'}  # backend name -> module that registers it


class ElementError(Exception):
  """The action names no usable element (missing, not interactable, no such option, no tab)."""


class PageError(Exception):
  """The page failed: an HTTP error status (e.g. 500) or a navigation failure."""


class BrowserDied(Exception):
  """The browser is gone; the episode cannot go on."""


class Backend:
  """One browser session. Subclasses implement the navigation and element methods."""
  base_url: str = ''  # the sites' root, e.g. 'http://127.0.0.1:8000'; relative URLs join it

  def goto(self, url: str) -> None:
    """Loads `url` (absolute, or a path on the sites' base URL); a new history entry."""
    raise NotImplementedError

  def url(self) -> str:
    """The current page's absolute URL."""
    raise NotImplementedError

  def html(self) -> str:
    """The current DOM, form state written into attributes (value, checked, option selected,
    textarea text) so that `page.simplify` sees what the user sees."""
    raise NotImplementedError

  def click(self, k: int) -> None:
    """Clicks element k: follows a link, submits a submit button's form, toggles a checkbox."""
    raise NotImplementedError

  def type(self, k: int, text: str) -> None:
    """Clears the text field k and types `text` (no Enter)."""
    raise NotImplementedError

  def press_enter(self, k: int | None = None) -> None:
    """Presses Enter in element k (None: the focused element, i.e. the last one clicked or
    typed into): submits its form if it has one, else nothing."""
    raise NotImplementedError

  def select(self, k: int, option_label: str) -> None:
    """Selects the option with this label (exact, else case-blind) in the select k."""
    raise NotImplementedError

  def hover(self, k: int) -> None:
    raise NotImplementedError

  def scroll(self, direction: str) -> None:
    """'up' or 'down'; does not change the observation (it shows the whole page)."""
    if direction not in ('up', 'down'):
      raise ValueError(f'scroll direction must be up or down, got {direction!r}')

  def back(self) -> None:
    raise NotImplementedError

  def forward(self) -> None:
    raise NotImplementedError

  def close(self) -> None:
    """Ends the session; calling it twice is harmless."""

  # -- shared helpers, from the methods above

  def observe(self) -> page_lib.Page:
    """The simplified current page."""
    return page_lib.simplify(self.html())

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def make(name: str, app=None, base_url: str = '') -> Backend:
  """A new session of backend `name` on the sites (`app` in process or served at `base_url`)."""
  if name in _MODULES and name not in BACKENDS:
    importlib.import_module(f'{__package__}.{_MODULES[name]}')
  return BACKENDS.get(name)(app, base_url)


def element_index(element: str | None) -> int:
  if element is None or not element.isdigit():
    raise ElementError(f'invalid element id {element!r}')
  return int(element)


def run_action(backend: Backend, action: actions.Action) -> None:
  """Runs one parsed action on the backend; `exit` is not a browser action and is refused."""
  kind = action.kind
  if kind == actions.GO_BACKWARD:
    return backend.back()
  if kind == actions.GO_FORWARD:
    return backend.forward()
  if kind == actions.EXIT:
    raise ValueError('exit ends the episode; it is not run on the browser')
  if kind in ('Scroll Up', 'Scroll Down'):
    return backend.scroll(kind.split()[1].lower())
  if kind == 'Wait':
    return None
  if kind == 'Switch Tab':
    if action.argument != '0':
      raise ElementError(f'no tab {action.argument}; only tab 0 is open')
    return None
  if kind == 'Press Enter':  # the grammar gives it no element: the focused one
    return backend.press_enter(None if action.element is None else element_index(action.element))
  k = element_index(action.element)
  if kind == 'Click':
    return backend.click(k)
  if kind in ('Hover', 'Right Click'):
    return backend.hover(k)
  if kind == 'Type':
    return backend.type(k, action.argument or '')
  if kind == 'Search':
    backend.type(k, action.argument or '')
    return backend.press_enter(k)
  if kind == 'Select Dropdown Option':
    return backend.select(k, action.argument or '')
  raise ValueError(f'unknown action kind {kind!r}')


def page_error(e: Exception) -> str:
  """The reply when the action's page failed (no reference string: its sites did not fail)."""
  return f'Error: the page failed to load ({e}).'


@dataclasses.dataclass(frozen=True)
class Turn:
  """What one policy turn did on a browser: its action (None when unreadable), the error the
  next observation starts with, and whether the page failed or the browser died."""
  action: actions.Action | None
  error: str = ''
  page_failed: bool = False
  died: bool = False

  @property
  def exited(self) -> bool:
    return self.action is not None and self.action.kind == actions.EXIT


def take_turn(backend: Backend, turn: str, element_ids) -> Turn:
  """Reads a policy turn as the reference does and runs its action (not `exit`, which ends
  the episode); any failure becomes the error reply, never an exception."""
  action, error = prompts.read_turn(turn, element_ids)
  if action is None or action.kind == actions.EXIT:
    return Turn(action, error)
  try:
    run_action(backend, action)
  except ElementError:
    return Turn(action, prompts.invalid_action_error(actions.format_action(action)))
  except PageError as e:
    return Turn(action, page_error(e), page_failed=True)
  except BrowserDied:
    return Turn(action, died=True)
  return Turn(action)
