"""MiniWoB++ tasks in headless Chromium, seen and acted on as WebAgent-R1 sees the generated sites.

MiniWoB++ (Liu et al. 2018; PyPI `miniwob`, Farama) ships each task as one HTML page whose
`core.js` generates a problem from `Math.random`, writes the instruction into `#query` and the
widgets into `#area`, and calls `core.endEpisode(reward)` when the task is solved or failed; the
result is read from the page's globals `WOB_DONE_GLOBAL`, `WOB_REWARD_GLOBAL` (time-discounted)
and `WOB_RAW_REWARD_GLOBAL`. We read only the package's `html/` folder (found with importlib, so
the package's gymnasium dependency is never imported) and drive the pages ourselves, as its own
`selenium_instance.py` does: `Math.seedrandom(seed)`, `core.setDataMode('train')`,
`core.startEpisodeReal()`, then poll `WOB_TASK_READY`.

Choices made here:
- Pages are served over HTTP from 127.0.0.1 (a stdlib static server on a free port), not file://:
  the same `ChromiumBackend.goto` path as the generated sites, status checks work, and the
  flight.* tasks, which refuse file://, would work too.
- The episode timer (`core.EPISODE_MAX_TIME`, 10 s for human demonstrations) is raised to
  `episode_s`, so a slow policy turn does not end the episode; success uses the raw reward.
- Observation: `page.simplify` of the whole document with MiniWoB's own chrome removed (the
  instruction `#query`, the reward display, the start cover, the click canvas). None of these
  holds an interactive element, so element ids stay the live page's `INTERACTIVE_XPATH` order,
  and widgets that jQuery UI appends to `<body>` (dialogs) stay visible to the agent.
- One browser per batch row, taken from a process-wide pool and given back on `close()`: a new
  episode reloads the task page in the same tab (~0.1 s) instead of starting Chromium (~1 s).
- Reward: success = raw reward > 0 once MiniWoB says done (1.0 / 0.0), MiniWoB's own success
  rule; the raw reward and `perfect` (raw reward 1) are kept as components, since a few tasks
  (the checkbox ones) give partial credit, so a mostly right answer counts as a success. An episode also ends on `exit(...)` (no success unless MiniWoB said done) or after
  `max_steps` policy turns.
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import functools
import http.server
import importlib.util
import pathlib
import threading
import time

from lxml import etree

from jaxpapers.core import env as env_lib
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import chromium
from jaxpapers.papers.webagent_r1 import page as page_lib
from jaxpapers.papers.webagent_r1 import prompts

MAX_STEPS = 15          # the paper's interaction budget (MiniWoB++ tasks here take 1-13 actions)
EPISODE_S = 600.0       # MiniWoB's own limit is 10 s, for humans
CHROME_IDS = ('query', 'reward-display', 'sync-task-cover', 'click-canvas')
_READY_TRIES, _READY_SLEEP_S = 100, 0.02

_LOADED_JS = ('return typeof core !== "undefined" && typeof genProblem === "function" && '
              '!!document.getElementById("sync-task-cover");')
_START_JS = """
core.EPISODE_MAX_TIME = arguments[0];
Math.seedrandom(arguments[1]);
core.setDataMode(arguments[2]);
core.startEpisodeReal();
"""
_STATE_JS = ('return [WOB_TASK_READY, WOB_DONE_GLOBAL, WOB_RAW_REWARD_GLOBAL, '
             'WOB_REWARD_GLOBAL, String(WOB_REWARD_REASON), core.getUtterance()];')


# History compression (`brief`) where core's Observation has it.
_HAS_BRIEF = 'brief' in {f.name for f in dataclasses.fields(env_lib.Observation)}


def _observation(text: str, brief: str | None = None, **kw) -> env_lib.Observation:
  return env_lib.Observation(text, brief=brief, **kw) if _HAS_BRIEF else \
      env_lib.Observation(text, **kw)


def html_dir() -> pathlib.Path:
  """The installed `miniwob` package's html/ folder (`pip install --no-deps miniwob`)."""
  spec = importlib.util.find_spec('miniwob')
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError('MiniWoB++ is not installed: pip install --no-deps miniwob')
  path = pathlib.Path(list(spec.submodule_search_locations)[0]) / 'html'
  if not (path / 'core' / 'core.js').is_file():
    raise FileNotFoundError(f'no MiniWoB++ html/core/core.js under {path}')
  return path


def available_tasks() -> list[str]:
  """Every MiniWoB++ task name the package ships."""
  return sorted(p.stem for p in (html_dir() / 'miniwob').glob('*.html'))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
  # The task files are UTF-8 without a <meta charset>; undeclared, Chromium would read them as
  # windows-1252 and garble unicode-test's labels.
  extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                    '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                    '.css': 'text/css; charset=utf-8'}

  def log_message(self, *args):  # one line per file would drown the logs
    pass


def serve(directory: pathlib.Path | None = None):
  """Serves MiniWoB's html/ on 127.0.0.1 (free port): returns (base URL, stop function)."""
  handler = functools.partial(_QuietHandler, directory=str(directory or html_dir()))
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  server.daemon_threads = True
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()

  def stop():
    server.shutdown()
    server.server_close()
  return f'http://127.0.0.1:{server.server_address[1]}/', stop


def observe_html(html: str) -> page_lib.Page:
  """The simplified page, MiniWoB's chrome (CHROME_IDS) removed."""
  root = page_lib.parse(html)
  live = set(page_lib.interactive(root))
  for node in root.xpath(' | '.join(f'//*[@id="{i}"]' for i in CHROME_IDS)):
    if any(d in live for d in node.iter()):
      continue  # never drop an interactive element: ids must stay the live page's
    node.getparent().remove(node)
  return page_lib.simplify(etree.tostring(root, method='html', encoding='unicode'))


@dataclasses.dataclass(frozen=True)
class State:
  """MiniWoB's episode globals."""
  ready: bool
  done: bool
  raw_reward: float
  reward: float        # time-discounted by MiniWoB
  reason: str
  utterance: str


class Session:
  """MiniWoB++ episodes in one browser tab (reused across episodes and tasks)."""

  def __init__(self, base_url: str, backend: chromium.ChromiumBackend | None = None,
               episode_s: float = EPISODE_S, data_mode: str = 'train'):
    self.base_url = base_url
    self.episode_s = episode_s
    self.data_mode = data_mode
    self.backend = backend or chromium.ChromiumBackend(None, base_url, end_path='')

  def start(self, task: str, seed: int) -> State:
    """Loads `task` and starts its episode `seed`; the same seed gives the same problem."""
    self.backend.goto(f'{self.base_url}miniwob/{task}.html')
    self._wait(_LOADED_JS, f'{task} did not load')
    self.backend.run_js(_START_JS, int(self.episode_s * 1000), int(seed), self.data_mode)
    self._wait('return WOB_TASK_READY;', f'{task} did not become ready')
    return self.state()

  def state(self) -> State:
    ready, done, raw, reward, reason, utterance = self.backend.run_js(_STATE_JS)
    return State(bool(ready), bool(done), float(raw or 0.0), float(reward or 0.0), reason,
                 utterance)

  def observe(self) -> page_lib.Page:
    return observe_html(self.backend.html())

  def close(self) -> None:
    self.backend.close()

  def _wait(self, script: str, message: str) -> None:
    for _ in range(_READY_TRIES):
      if self.backend.run_js(script):
        return
      time.sleep(_READY_SLEEP_S)
    raise backend_lib.PageError(message)


class _Pool:
  """The task server and idle browsers shared by every MiniWoBEnv of the process: Chromium takes
  about a second to start, and core's GRPO runner builds a new env for every rollout."""

  def __init__(self):
    self.lock = threading.Lock()
    self.base_url = ''
    self.idle: list[Session] = []
    self.started: list[chromium.ChromiumBackend] = []

  def url(self) -> str:
    with self.lock:
      if not self.base_url:
        self.base_url, _ = serve()  # lives as long as the process
      return self.base_url

  def take(self, call_timeout_s: float, episode_s: float) -> tuple[Session, float]:
    """An idle live browser, else a new one; returns it with its start time (0 if reused)."""
    with self.lock:
      while self.idle:
        session = self.idle.pop()
        if session.backend.alive() and session.backend.call_timeout_s == call_timeout_s:
          session.episode_s = episode_s
          return session, 0.0
        session.close()
    backend = chromium.ChromiumBackend(None, self.url(), call_timeout_s=call_timeout_s,
                                       end_path='')
    with self.lock:
      self.started.append(backend)
    return Session(self.url(), backend, episode_s), backend.start_s

  def give(self, session: Session) -> None:
    if session.backend.alive():
      with self.lock:
        self.idle.append(session)

  def close_all(self) -> None:
    with self.lock:
      started, self.started, self.idle = self.started, [], []
    for backend in started:
      backend.close()


POOL = _Pool()
atexit.register(POOL.close_all)


@dataclasses.dataclass
class Row:
  """One episode's task, page and counters."""
  task: str
  seed: int
  utterance: str = ''
  page: page_lib.Page | None = None
  turns: int = 0
  errors: int = 0
  invalid: int = 0
  state: State | None = None
  exited: bool = False
  done: bool = False
  died: bool = False


def make_task(name: str, seed: int, prompt=None) -> env_lib.Task:
  """A core Task for MiniWoB task `name` at `seed` (`MiniWoBEnv.make_task` adds the prompt)."""
  return env_lib.Task(prompt=prompt, meta={'miniwob': name, 'seed': int(seed)})


@env_lib.ENVS.register('miniwob')
class MiniWoBEnv(env_lib.Environment):
  """MiniWoB++ episodes, one browser per row (config: max_steps, episode_s, call_timeout_s).

  Browsers come from the process-wide `POOL` and go back to it on `close()` (or when the env is
  garbage-collected), so envs built one after another reuse the same browsers.
  """

  def __init__(self, config=None):
    super().__init__()
    get = lambda k, d: getattr(config, k, d) if config is not None else d  # noqa: E731
    self.max_steps = int(get('max_steps', MAX_STEPS))
    self.episode_s = float(get('episode_s', EPISODE_S))
    self.call_timeout_s = float(get('call_timeout_s', 30.0))
    if self.max_steps < 1:
      raise ValueError(f'max_steps must be >= 1, got {self.max_steps}')
    self.base_url = POOL.url()
    self.sessions: list[Session | None] = []
    self.rows: list[Row] = []
    self._prompts: dict[tuple[str, int], tuple[str, str]] = {}
    self.start_s: list[float] = []    # browser start times
    self.reset_s: list[float] = []    # episode start times (load + generate + first page)

  # -- sessions

  def _session(self, i: int) -> Session:
    while len(self.sessions) <= i:
      self.sessions.append(None)
    s = self.sessions[i]
    if s is None or not s.backend.alive():
      if s is not None:
        s.close()
      s, start_s = POOL.take(self.call_timeout_s, self.episode_s)
      self.sessions[i] = s
      if start_s:
        self.start_s.append(start_s)
    return s

  def _start(self, i: int, task) -> Row:
    name, seed = task.meta['miniwob'], task.meta['seed']
    row = Row(name, seed)
    start = time.perf_counter()
    for attempt in range(2):  # a pooled browser may have died while idle: one fresh retry
      try:
        session = self._session(i)
        row.state = session.start(name, seed)
        row.utterance, row.page = row.state.utterance, session.observe()
        break
      except backend_lib.BrowserDied:
        if attempt:
          row.done = row.died = True
      except backend_lib.PageError:
        row.done = row.died = True
        break
    self.reset_s.append(time.perf_counter() - start)
    return row

  def reset(self, tasks, seed: int = 0) -> None:
    super().reset(tasks, seed)
    self.rows = [self._start(i, t) for i, t in enumerate(self.tasks)]

  def close(self) -> None:
    """Gives the browsers back to the pool (they stay running for the next env)."""
    sessions, self.sessions = self.sessions, []
    for s in sessions:
      if s is not None:
        POOL.give(s)

  def __del__(self):
    with contextlib.suppress(Exception):
      self.close()

  # -- prompts

  def first_turn(self, row: int) -> str:
    """Round 0 of a started row: the instruction and its first page."""
    r = self.rows[row]
    return prompts.first_turn(r.utterance, r.page.text if r.page else '')

  def make_task(self, name: str, seed: int) -> env_lib.Task:
    """A Task whose prompt is the Round-0 turn (the seeded page is loaded once to build it)."""
    key = (name, int(seed))
    if key not in self._prompts:
      session = self._session(len(self.rows))  # a browser no current row uses
      state = session.start(name, seed)
      self._prompts[key] = (state.utterance, session.observe().text)
    utterance, page = self._prompts[key]
    task = make_task(name, seed, prompts.first_turn(utterance, page))
    task.meta['brief_prompt'] = prompts.first_turn(utterance, prompts.PLACEHOLDER)
    return task

  # -- episodes

  def step(self, rows, turns) -> list:
    return [self._step(i, turn) for i, turn in zip(rows, turns)]

  def _step(self, i: int, turn: str) -> env_lib.Observation:
    row = self.rows[i]
    if row.done:
      return env_lib.Observation('', done=True)
    row.turns += 1
    done = backend_lib.take_turn(self.sessions[i].backend, turn, row.page.elements.keys())
    if done.exited:
      row.exited = row.done = True
      return env_lib.Observation('', done=True)
    if done.died:
      row.done = row.died = True
      return env_lib.Observation('', done=True, tool_call=True)
    error, invalid, tool = done.error, done.action is None, done.action is not None
    row.errors += bool(error)
    row.invalid += invalid
    try:
      row.state = self.sessions[i].state()
      if not (row.state.done or row.turns >= self.max_steps):
        row.page = self.sessions[i].observe()
    except backend_lib.BrowserDied:
      row.done = row.died = True
    if row.done or row.state.done or row.turns >= self.max_steps:
      row.done = True
      return env_lib.Observation('', done=True, tool_call=tool, invalid=invalid)
    return _observation(prompts.next_turn(row.turns, row.page.text, error),
                        prompts.next_turn(row.turns, prompts.PLACEHOLDER, error),
                        done=False, tool_call=tool, invalid=invalid)

  def score(self, row: int, episode=None) -> env_lib.Outcome:
    r = self.rows[row]
    finished = r.state is not None and r.state.done and not r.died
    raw = r.state.raw_reward if finished else 0.0
    success = float(raw > 0)
    info = {'steps': float(r.turns), 'errors': float(r.errors), 'invalid': float(r.invalid),
            'exited': float(r.exited), 'died': float(r.died), 'miniwob_done': float(finished)}
    return env_lib.Outcome(success, {'success': success, 'raw_reward': raw,
                                     'perfect': float(raw >= 1.0)}, info)

