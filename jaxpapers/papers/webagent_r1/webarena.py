"""WebArena-Lite's 165 test tasks (the paper's benchmark), loaded for their schema.

The task definitions ship in PyPI `browsergym-webarenalite` (`browsergym/webarenalite/
test_webarena_lite.raw.json`, Apache-2.0). Importing the package pulls BrowserGym, playwright and
nltk (and downloads NLTK data), so the file is located through the package metadata and read as
JSON, never imported; install with `pip install --no-deps browsergym-webarenalite` (optional:
nothing else here needs it). WebArena's sites (Magento shop and admin, Postmill forum, GitLab,
OpenStreetMap, Wikipedia) are docker images that do not run here, so these tasks are not played;
they check that our task schema and `checkers` read WebArena's definitions. `supported` says which
tasks our checker can run: 131 of the 165 (the rest use WebArena's `func:` helpers or JavaScript
beyond one `querySelector`).

Placeholders (`__SHOPPING__`, `__REDDIT__`, ...) are WebArena's; `localize` fills them in.
"""
from __future__ import annotations

import importlib.metadata
import json
import pathlib

from jaxpapers.core import env as env_lib
from jaxpapers.papers.webagent_r1 import checkers

DISTRIBUTION = 'browsergym-webarenalite'
TASK_FILE = 'browsergym/webarenalite/test_webarena_lite.raw.json'
PLACEHOLDERS = ('__SHOPPING_ADMIN__', '__SHOPPING__', '__REDDIT__', '__GITLAB__', '__MAP__',
                '__WIKIPEDIA__', '__HOMEPAGE__')


def task_file() -> pathlib.Path | None:
  """The installed task file, or None when the package is not installed."""
  try:
    path = pathlib.Path(importlib.metadata.distribution(DISTRIBUTION).locate_file(TASK_FILE))
  except importlib.metadata.PackageNotFoundError:
    return None
  return path if path.is_file() else None


def load() -> list[dict]:
  """The 165 WebArena-Lite test tasks (dicts in WebArena's schema)."""
  path = task_file()
  if path is None:
    raise FileNotFoundError(f'{DISTRIBUTION} is not installed; pip install --no-deps '
                            f'{DISTRIBUTION}')
  return json.loads(path.read_text())


def localize(task: dict, site_urls: dict[str, str]) -> dict:
  """A copy of `task` with placeholders replaced (`{'__SHOPPING__': 'http://host:7770', ...}`)."""
  text = json.dumps(task)
  for key in PLACEHOLDERS:  # longest first: __SHOPPING_ADMIN__ before __SHOPPING__
    if key in site_urls:
      text = text.replace(key, site_urls[key].rstrip('/'))
  return json.loads(text)


def supported(task: dict) -> bool:
  """Whether `checkers.evaluate` can run every evaluation of the task (no `func:` helpers, no
  locators beyond `document.querySelector(CSS).outerText|...|value`)."""
  for check in task['eval'].get('program_html') or []:
    if check.get('url', '').startswith('func:'):
      return False
    locator = check.get('locator', '')
    if locator.strip():
      try:
        checkers.parse_locator(locator)
      except ValueError:
        return False
  return True


def to_task(task: dict) -> env_lib.Task:
  """A core Task (prompt: the intent) holding the WebArena dict in meta, as WebEnv expects."""
  return env_lib.Task(prompt=task['intent'], meta={'webarena': task})


def sites_of(tasks: list[dict]) -> set[str]:
  return {s for t in tasks for s in t['sites']}
