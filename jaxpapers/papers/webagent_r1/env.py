"""WebEnv: WebAgent-R1's multi-turn web environment on the generated sites (registered 'webagent').

Each row of a batch is one episode in its own browser session (a new one for every rollout, also
within a GRPO group), started on the task's `start_url`. A policy turn is parsed with
`actions.parse_answer` against the current page's element ids, run on the backend, and answered with
the reference's next user turn, `prompts.next_turn(k, page, error)`; its `brief` (what replaces it
in the context once the policy has answered it) is the same turn with `prompts.PLACEHOLDER` for
the page, the reference's history compression. Errors never raise: a turn with no `<answer>` or an
unparsable action gets the reference's error text (`prompts.NO_ANSWER_ERROR`,
`prompts.invalid_action_error`) and the same page; an HTTP error page is shown with `backend.page_error`;
a dead browser ends the episode (reward 0). `exit(message=...)` ends the episode and records the
message for the checker; so does the `max_steps`-th policy turn (paper: 15 interaction steps).

The reward is the checker's binary task success (`checkers.evaluate`), as in the paper.
"""
from __future__ import annotations

import dataclasses
import threading

from jaxpapers.core import env as env_lib
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import checkers
from jaxpapers.papers.webagent_r1 import prompts
from jaxpapers.papers.webagent_r1 import sites
from jaxpapers.papers.webagent_r1 import tasks as tasks_lib

MAX_STEPS = 15  # the paper's interaction budget


if 'brief' in {f.name for f in dataclasses.fields(env_lib.Observation)}:
  Observation = env_lib.Observation
else:  # core without history compression: the same fields, read by duck typing
  @dataclasses.dataclass(frozen=True)
  class Observation:
    text: str = ''
    done: bool = False
    tool_call: bool = False
    invalid: bool = False
    brief: str | None = None


@dataclasses.dataclass
class Row:
  """One episode's browser and counters."""
  task: dict
  backend: backend_lib.Backend | None
  page: object = None           # page.Page shown to the policy last
  turns: int = 0                # policy turns taken
  errors: int = 0               # error observations of any kind
  invalid: int = 0              # turns with no well-formed action
  page_errors: int = 0          # HTTP error pages and failed navigations
  answer: str | None = None     # exit's message
  done: bool = False
  died: bool = False
  outcome: object = None        # the checker's Outcome, once scored (scoring may navigate)


def webarena_dict(task) -> dict:
  """The WebArena-schema dict of a core Task (meta['webarena']) or of a dict itself."""
  return task.meta['webarena'] if isinstance(task, env_lib.Task) else task


@env_lib.ENVS.register('webagent')
class WebEnv(env_lib.Environment):
  """The generated sites through a `sim` or `chromium` backend; one session per row.

  Config fields (all optional): backend ('sim' | 'chromium'), max_steps (policy turns per
  episode, 15), world_seed (the sites' content, 0), items_per_page (list length, 5), site_url
  (where the same sites already run for a browser; '' serves them from this process on first use).
  """

  def __init__(self, config=None):
    super().__init__()
    get = lambda k, d: getattr(config, k, d) if config is not None else d  # noqa: E731
    self.backend_name = get('backend', 'sim')
    self.max_steps = int(get('max_steps', MAX_STEPS))
    self.world_seed = int(get('world_seed', 0))
    self.items_per_page = int(get('items_per_page', 5))
    self.base_url = get('site_url', '') or ''
    if self.max_steps < 1:
      raise ValueError(f'max_steps must be >= 1, got {self.max_steps}')
    self.app = sites.make_app(self.world_seed, self.items_per_page)
    self.rows: list[Row] = []
    self._stop_server = None
    self._start_pages: dict[str, str] = {}
    self._lock = threading.Lock()

  # -- sessions

  def _new_backend(self) -> backend_lib.Backend:
    if self.backend_name != 'sim' and not self.base_url:
      self.base_url, self._stop_server = sites.serve(self.app)  # a real server for a browser
    return backend_lib.make(self.backend_name, self.app, self.base_url)

  def _start(self, task: dict) -> Row:
    row = Row(task, None)
    try:
      row.backend = self._new_backend()
      row.backend.goto(tasks_lib.resolve_url(task['start_url'], row.backend.base_url))
    except backend_lib.PageError:
      row.page_errors += 1
    except backend_lib.BrowserDied:
      row.done = row.died = True
    if row.backend is not None and not row.died:
      row.page = row.backend.observe()
    return row

  def reset(self, tasks, seed: int = 0) -> None:
    super().reset(tasks, seed)
    self.close_sessions()
    self.rows = [self._start(webarena_dict(t)) for t in self.tasks]

  def close_sessions(self) -> None:
    for row in self.rows:
      if row.backend is not None:
        row.backend.close()
    self.rows = []

  def close(self) -> None:
    self.close_sessions()
    if self._stop_server is not None:
      self._stop_server()
      self._stop_server, self.base_url = None, ''

  # -- prompts

  def first_observation(self, task) -> tuple[str, str]:
    """(intent, start page text) of a task: a fresh session's view of its start page."""
    d = webarena_dict(task)
    with self._lock:
      if d['start_url'] not in self._start_pages:
        with self._new_backend() as b:
          try:
            b.goto(tasks_lib.resolve_url(d['start_url'], b.base_url))
          except backend_lib.PageError:
            pass
          self._start_pages[d['start_url']] = b.observe().text
    return d['intent'], self._start_pages[d['start_url']]

  def prompt(self, task) -> str:
    """The first user turn (Round 0)."""
    return prompts.first_turn(*self.first_observation(task))

  def brief_prompt(self, task) -> str:
    """The first user turn as it stays in the context once answered."""
    return prompts.first_turn(webarena_dict(task)['intent'], prompts.PLACEHOLDER)

  def make_task(self, d: dict) -> env_lib.Task:
    """A core Task for a WebArena-schema dict; meta holds the dict and the brief prompt."""
    return env_lib.Task(prompt=self.prompt(d), meta={'webarena': d,
                                                     'brief_prompt': self.brief_prompt(d)})

  def split_tasks(self, task_seed: int = 0, test_percent: int = 20
                  ) -> tuple[list[env_lib.Task], list[env_lib.Task]]:
    """(train, test) core Tasks on this env's world, split by `tasks.split`'s rule."""
    train, test = tasks_lib.split(tasks_lib.generate(self.world_seed, task_seed),
                                  test_percent=test_percent)
    return [self.make_task(d) for d in train], [self.make_task(d) for d in test]

  # -- episodes

  def step(self, rows, turns) -> list:
    return [self._step(self.rows[i], turn) for i, turn in zip(rows, turns)]

  def _step(self, row: Row, turn: str) -> Observation:
    if row.done:
      return Observation('', done=True)
    row.turns += 1
    done = backend_lib.take_turn(row.backend, turn, row.page.elements.keys())
    if done.exited:
      row.answer, row.done = done.action.message or '', True
      return Observation('', done=True)
    if done.died:
      row.done = row.died = True
      return Observation('', done=True, tool_call=True)
    error, invalid, tool = done.error, done.action is None, done.action is not None
    row.page_errors += done.page_failed
    row.errors += bool(error)
    row.invalid += invalid
    if row.turns >= self.max_steps:
      row.done = True
      return Observation('', done=True, tool_call=tool, invalid=invalid)
    try:
      row.page = row.backend.observe()
    except backend_lib.BrowserDied:
      row.done = row.died = True
      return Observation('', done=True, tool_call=tool, invalid=invalid)
    return Observation(prompts.next_turn(row.turns, row.page.text, error), done=False,
                       tool_call=tool, invalid=invalid,
                       brief=prompts.next_turn(row.turns, prompts.PLACEHOLDER, error))

  def score(self, row: int, episode=None) -> env_lib.Outcome:
    """The checker's verdict on the row's final state (computed once: checking navigates)."""
    r = self.rows[row]
    if r.outcome is not None:
      return r.outcome
    reward = 0.0
    if not r.died and r.backend is not None:
      try:
        reward = checkers.evaluate(r.task, checkers.FinalState(r.backend, r.answer))
      except backend_lib.BrowserDied:
        reward = 0.0
    info = {'steps': float(r.turns), 'errors': float(r.errors), 'invalid': float(r.invalid),
            'page_errors': float(r.page_errors), 'exited': float(r.answer is not None)}
    r.outcome = env_lib.Outcome(reward, {'success': reward}, info)
    return r.outcome

