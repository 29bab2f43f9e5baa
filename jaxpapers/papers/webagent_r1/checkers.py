"""Task checkers, scoring as WebArena's `evaluation_harness/evaluators.py` does.

`evaluate(task, final_state)` multiplies the scores of the task's `eval_types`:
- string_match on the exit message: `exact_match` (equal after WebArena's `clean_answer`: strip,
  drop surrounding quotes, lower case), `must_include` (each reference a substring; a one-character
  reference must be a whole token, as WebArena tokenises it), `fuzzy_match`. WebArena asks an LLM
  judge (gpt-4) whether the answer means the reference; here it is normalised must-include, so a
  paraphrase scores 0 where the judge might give 1.
- url_match with WebArena's 'GOLD in PRED' rule: a reference's host+path (trailing '/' dropped)
  is a substring of the current URL's, and every reference query parameter has a matching value.
- program_html: for each check, the page at `url` ('last' = the current page; placeholders
  resolved) in the same browser session, read by `locator`: '' = the page's text content, or
  `document.querySelector("CSS").outerText|innerText|textContent|value` evaluated with lxml (CSS:
  tag, #id, .class, [attr] and [attr="v"], joined by spaces for descendants); then
  `required_contents` `exact_match` or `must_include` (alternatives joined by ' |OR| ').
  Other locators (WebArena's `func:` helpers, `lastChild` chains) are not supported; they score 0.

It runs at episode end and may navigate the backend; it restores nothing.
"""
from __future__ import annotations

import dataclasses
import re
import urllib.parse

from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import page as page_lib
from jaxpapers.papers.webagent_r1 import tasks as tasks_lib

_LOCATOR = re.compile(r'^document\.querySelector\((["\'])(.+?)\1\)\.'
                      r'(outerText|innerText|textContent|value)$')
_SIMPLE = re.compile(r'^([a-zA-Z][a-zA-Z0-9]*)?((?:#[\w-]+|\.[\w-]+|'
                     r'\[[\w-]+(?:=(?:"[^"]*"|\'[^\']*\'|[\w-]+))?\])*)$')
_PART = re.compile(r'#([\w-]+)|\.([\w-]+)|\[([\w-]+)(?:=("[^"]*"|\'[^\']*\'|[\w-]+))?\]')


@dataclasses.dataclass
class FinalState:
  """What an episode leaves: the browser session and the exit message (None: no exit)."""
  backend: backend_lib.Backend
  answer: str | None = None


# ----------------------------------------------------------------------------- string matching

def clean_answer(text) -> str:
  text = str(text).strip()
  if len(text) >= 2 and text[0] == text[-1] and text[0] in '"\'':
    text = text[1:-1]
  return text.lower()


def exact_match(ref: str, pred: str) -> float:
  return float(clean_answer(ref) == clean_answer(pred))


def must_include(ref: str, pred: str, tokenize: bool = False) -> float:
  ref, pred = clean_answer(ref), clean_answer(pred)
  if tokenize and len(ref) == 1:  # a one-character answer must be a token, not a digit of 13
    return float(ref in re.findall(r'\w+|[^\w\s]', pred))
  return float(ref in pred)


def string_score(answers: dict, pred: str | None) -> float:
  if pred is None:
    return 0.0
  score = 1.0
  for approach, value in answers.items():
    if approach == 'exact_match':
      score *= exact_match(value, pred)
    elif approach == 'must_include':
      score *= min((must_include(v, pred, tokenize=len(value) == 1) for v in value), default=1.0)
    elif approach == 'fuzzy_match':
      refs = [value] if isinstance(value, str) else value
      score *= min((must_include(v, pred) for v in refs), default=1.0)
    else:
      raise ValueError(f'unknown string match {approach!r}')
  return score


# ----------------------------------------------------------------------------- url matching

def _base_and_query(url: str) -> tuple[str, dict]:
  parts = urllib.parse.urlsplit(url.rstrip('/'))
  return parts.netloc + parts.path, urllib.parse.parse_qs(parts.query)


def url_score(reference: str, current: str, base_url: str) -> float:
  refs = [tasks_lib.resolve_url(u.strip(), base_url) for u in reference.split(' |OR| ')]
  pred_base, pred_query = _base_and_query(current)
  parsed = [_base_and_query(u) for u in refs]
  base = float(any(b in pred_base for b, _ in parsed))
  query = 1.0
  for _, q in parsed:  # WebArena merges the references' queries; every key must match
    for key, values in q.items():
      query *= float(any(v in pred_query.get(key, []) for v in values))
  return base * query


# ----------------------------------------------------------------------------- program_html

def css_to_xpath(css: str) -> str:
  """XPath for the small CSS subset above; ValueError on anything else."""
  unquoted = re.sub(r'"[^"]*"|\'[^\']*\'', '', css)
  if unquoted.count('[') > unquoted.count(']'):
    css += ']'  # a browser closes a bracket left open at the end (WebArena has such locators)
  steps = []
  for compound in css.split():
    match = _SIMPLE.match(compound)
    if not match or not compound:
      raise ValueError(f'unsupported CSS selector {css!r}')
    conditions = []
    for ident, cls, attr, value in _PART.findall(match.group(2)):
      if ident:
        conditions.append(f'@id="{ident}"')
      elif cls:
        conditions.append(f'contains(concat(" ", normalize-space(@class), " "), " {cls} ")')
      elif value:
        conditions.append(f'@{attr}="{value.strip(chr(34) + chr(39))}"')
      else:
        conditions.append(f'@{attr}')
    steps.append((match.group(1) or '*') + ''.join(f'[{c}]' for c in conditions))
  return '//' + '//'.join(steps)


def parse_locator(locator: str) -> tuple[str, str]:
  """(XPath of the CSS selector, property) of a supported locator; ValueError otherwise."""
  match = _LOCATOR.match(locator.strip())
  if not match:
    raise ValueError(f'unsupported locator {locator!r}')
  return css_to_xpath(match.group(2)), match.group(3)


def read_locator(html: str, locator: str) -> str:
  """The locator's value on the page; '' when the element is missing."""
  root = page_lib.parse(html)
  if not locator.strip():
    body = root.find('body')
    return _text(body if body is not None else root)
  xpath, prop = parse_locator(locator)
  nodes = root.xpath(xpath)
  if not nodes:
    return ''
  node = nodes[0]
  if prop != 'value':
    return _text(node)
  if node.tag == 'select':
    chosen = page_lib.selected_option(node)
    return '' if chosen is None else page_lib.option_value(chosen)
  return node.text_content() if node.tag == 'textarea' else node.get('value', '')


def _text(node) -> str:
  """Rendered text, roughly as `innerText`: text nodes joined by spaces, no scripts/styles."""
  parts = node.xpath('.//text()[not(ancestor::script) and not(ancestor::style)]')
  return page_lib.squash(' '.join(parts))


def contents_score(required: dict, found: str) -> float:
  score = 1.0
  for approach, value in required.items():
    if approach == 'exact_match':
      score *= exact_match(value, found)
    elif approach == 'must_include':
      for ref in value:
        score *= max(must_include(alt, found) for alt in ref.split(' |OR| '))
    else:
      raise ValueError(f'unknown required_contents {approach!r}')
  return score


def html_score(checks: list[dict], backend: backend_lib.Backend) -> float:
  score = 1.0
  for check in checks:
    url = check.get('url', 'last')
    if url != 'last':
      try:
        backend.goto(tasks_lib.resolve_url(url, backend.base_url))
      except backend_lib.PageError:
        return 0.0
    try:
      found = read_locator(backend.html(), check.get('locator', ''))
    except ValueError:
      return 0.0
    score *= contents_score(check['required_contents'], found)
  return score


def evaluate(task, final_state: FinalState) -> float:
  """The task's score in [0, 1] (1 = success); `task` is a WebArena dict or a Task with one in
  `meta['webarena']`."""
  task = task.meta['webarena'] if hasattr(task, 'meta') else task
  ev = task['eval']
  current_url = final_state.backend.url()  # before program_html navigates
  score = 1.0
  for kind in ev['eval_types']:
    if kind == 'string_match':
      score *= string_score(ev['reference_answers'], final_state.answer)
    elif kind == 'url_match':
      score *= url_score(ev['reference_url'], current_url, final_state.backend.base_url)
    elif kind == 'program_html':
      score *= html_score(ev['program_html'], final_state.backend)
    else:
      raise ValueError(f'unknown eval type {kind!r}')
  return score
