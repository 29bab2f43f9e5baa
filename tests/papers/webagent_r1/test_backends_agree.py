"""The sim and chromium backends agree: the same observation text, URL and error after every step,
and the same checker outcome, on the expert's solutions and on hand-made sequences with errors."""
import urllib.parse

import pytest

from jaxpapers.papers.webagent_r1 import actions
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import checkers
from jaxpapers.papers.webagent_r1 import chromium
from jaxpapers.papers.webagent_r1 import expert
from jaxpapers.papers.webagent_r1 import sim
from jaxpapers.papers.webagent_r1 import sites
from jaxpapers.papers.webagent_r1 import tasks as tasks_lib
from tests.papers.webagent_r1 import test_sim

pytestmark = pytest.mark.skipif(not chromium.browser_available(),
                                reason='needs Debian chromium + chromium-driver')


@pytest.fixture(scope='module')
def app():
  return sites.make_app(0)


@pytest.fixture(scope='module')
def site_url(app):
  url, stop = sites.serve(app)
  yield url
  stop()


@pytest.fixture(scope='module')
def echo():
  app = test_sim.echo_app()
  url, stop = sites.serve(app)
  yield app, url
  stop()


@pytest.fixture(scope='module')
def browser():
  b = chromium.ChromiumBackend(None, '')
  yield b
  b.close()


def _pair(app, url, browser):
  """A fresh sim session on `app` and a fresh Chromium session on the same app served at `url`."""
  browser.reset()
  browser.base_url = url
  return sim.SimBackend(app), browser


def _where(url: str) -> str:
  parts = urllib.parse.urlsplit(url)
  return parts.path + ('?' + parts.query if parts.query else '')


def _run(b, step: str) -> str:
  """'ok', or the error the step raised; '@/path' is a goto, anything else an action."""
  try:
    if step.startswith('@'):
      b.goto(step[1:])
    else:
      backend_lib.run_action(b, actions.parse_action(step))
    return 'ok'
  except (backend_lib.ElementError, backend_lib.PageError) as e:
    return f'{type(e).__name__}: {e}'


def assert_agree(pair, steps):
  """Runs `steps` on both backends in lockstep; every step must look the same in both."""
  for i, step in enumerate(steps):
    results = [_run(b, step) for b in pair]
    assert results[0] == results[1], (i, step)
    texts = [b.observe().text for b in pair]
    assert texts[0] == texts[1], (i, step)
    assert _where(pair[0].url()) == _where(pair[1].url()), (i, step)


def _first_task_per_template():
  out = {}
  for task in tasks_lib.generate(0):
    out.setdefault(task['template'], task)
  return out


TASKS = _first_task_per_template()


@pytest.mark.parametrize('template', sorted(TASKS))
def test_backends_agree_on_expert_solution(app, site_url, browser, template):
  task = TASKS[template]
  solver = sim.SimBackend(app)
  solver.goto(tasks_lib.resolve_url(task['start_url'], solver.base_url))
  steps = [text for _, text in expert.solve(task, solver)]
  answer = actions.parse_action(steps[-1]).message if steps[-1].startswith('exit(') else None
  pair = _pair(app, site_url, browser)
  start = task['start_url']
  for prefix in tasks_lib.PLACEHOLDERS:
    start = start.replace(prefix, tasks_lib.PLACEHOLDERS[prefix])
  assert_agree(pair, ['@' + start] + [s for s in steps if not s.startswith('exit(')])
  scores = [checkers.evaluate(task, checkers.FinalState(b, answer)) for b in pair]
  assert scores == [1.0, 1.0]


def test_backends_agree_on_errors_and_history(app, site_url, browser):
  assert_agree(_pair(app, site_url, browser), [
      '@/shop/',
      'go_backward()',                                     # no earlier page
      'do(action="Click", element="99")',                  # no such element
      'do(action="Type", argument="x", element="0")',      # a link is not a text field
      'do(action="Select Dropdown Option", argument="x", element="0")',
      'do(action="Press Enter")',                          # nothing focused
      'do(action="Search", argument="mug", element="2")',
      'do(action="Click", element="7")',                   # Next page
      'go_backward()', 'go_forward()', 'go_forward()',     # forward at the end
      '@/',
      'do(action="Click", element="3")',                   # Broken page: HTTP 500
      'go_backward()',
      '@/admin/order/1117',
      'do(action="Select Dropdown Option", argument="no such", element="6")',
      'do(action="Select Dropdown Option", argument="ca", element="6")',
      'do(action="Type", argument="1 Main St", element="4")',
      'do(action="Click", element="8")',                   # Save address
      'do(action="Hover", element="3")', 'do(action="Scroll Down")', 'do(action="Wait")',
  ])


def test_backends_agree_on_form_submission(echo, browser):
  app, url = echo
  # ids: 0 q, 1 c1, 2 c2, 3 r=a, 4 r=b, 5 s, 6 t, 7 off, 8 First, 9 Second, 10 link
  assert_agree(_pair(app, url, browser), [
      '@/form', 'do(action="Type", argument="mug", element="0")',
      'do(action="Click", element="2")', 'do(action="Click", element="4")',
      'do(action="Select Dropdown Option", argument="two", element="5")',
      'do(action="Type", argument="new text", element="6")',
      'do(action="Click", element="9")',                  # POST with the second button
      '@/form?method=get', 'do(action="Click", element="1")',
      'do(action="Type", argument="start", element="0")',
      'do(action="Press Enter")',                         # implicit submission: first button
  ])
