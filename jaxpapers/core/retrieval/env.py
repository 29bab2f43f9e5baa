"""Search environment for the multi-turn agent loop: `<search>q</search>` -> `<information>`.

Follows Search-R1 (PeterGriffinJin/Search-R1, search_r1/llm_agent/generation.py), which
DeSA forks:
  - the action is the first `<(search|answer)>(.*?)</\\1>` match in the model turn
    (`postprocess_predictions`; generation stops at `</search>`, so it is also the last);
  - a search appends '\\n\\n<information>{passages}</information>\\n\\n' where passages are
    'Doc {i}(Title: {title}) {text}\\n' for i = 1.. (`_passages2string`, `execute_predictions`);
  - an answer ends the episode with no observation;
  - anything else gets Search-R1's invalid-action message and the episode continues.
Our choices: an empty `<search></search>` is an invalid action (Search-R1 would send '' to
its retriever); a model turn that is not a string is invalid too. `style='instructrag'`
renders 'Document {i} (Title: {title}): {text}' blocks separated by blank lines instead
(InstructRAG's prompt format). A search with no hits gives an empty <information> block.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Sequence

from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import retriever as retriever_lib

ACTION = re.compile(r'<(search|answer)>(.*?)</\1>', re.DOTALL)
INVALID_ACTION = ('\nMy previous action is invalid. If I want to search, I should put the '
                  'query between <search> and </search>. If I want to give the final answer, '
                  'I should put the answer between <answer> and </answer>. Let me try again.\n')


def _search_r1(passages: Sequence[corpus_lib.Passage]) -> str:
  return ''.join(f'Doc {i}(Title: {p.title}) {p.text}\n' for i, p in enumerate(passages, 1))


def _instructrag(passages: Sequence[corpus_lib.Passage]) -> str:
  return '\n\n'.join(f'Document {i} (Title: {p.title}): {p.text}'
                     for i, p in enumerate(passages, 1))


STYLES: dict[str, Callable[[Sequence[corpus_lib.Passage]], str]] = {
    'search_r1': _search_r1,
    'instructrag': _instructrag,
}


def format_passages(passages: Sequence[corpus_lib.Passage], style: str = 'search_r1') -> str:
  if style not in STYLES:
    raise ValueError(f'passage style {style!r} unknown; valid: {sorted(STYLES)}')
  return STYLES[style](passages)


def information_block(passages: Sequence[corpus_lib.Passage], style: str = 'search_r1') -> str:
  """The observation appended after a search (Search-R1's execute_predictions)."""
  return f'\n\n<information>{format_passages(passages, style).strip()}</information>\n\n'


def parse_action(text: Any) -> tuple[str | None, str]:
  """('search', query) | ('answer', answer) | (None, '') for a model turn."""
  if not isinstance(text, str):
    return None, ''
  match = ACTION.search(text)
  if match is None:
    return None, ''
  action, content = match.group(1), match.group(2).strip()
  if action == 'search' and not content:
    return None, ''
  return action, content


@dataclasses.dataclass(frozen=True)
class Observation:
  text: str          # appended to the context ('' when done)
  done: bool         # the model answered
  valid: bool        # the turn held a well-formed action
  is_search: bool    # the turn searched
  query: str = ''    # the query searched ('' otherwise)


class SearchEnv:
  """Environment callback: model turns -> observations, one batched retriever call per step."""

  def __init__(self, retriever, top_k: int = 3, style: str = 'search_r1'):
    if style not in STYLES:
      raise ValueError(f'passage style {style!r} unknown; valid: {sorted(STYLES)}')
    # Fail at construction, not mid-rollout. A remote retriever (HttpRetriever) has no
    # corpus here: k is then only checked to be an int >= 1.
    corpus = getattr(retriever, 'corpus', None)
    retriever_lib.check_k(top_k, top_k if corpus is None else len(corpus))
    self.retriever, self.top_k, self.style = retriever, int(top_k), style

  def step(self, turns: Sequence[Any]) -> list[Observation]:
    """One observation per model turn (see the module docstring)."""
    actions = [parse_action(t) for t in turns]
    queries = [c for a, c in actions if a == 'search']
    results = iter(self.retriever.search(queries, self.top_k) if queries else [])
    out = []
    for action, content in actions:
      if action == 'answer':
        out.append(Observation('', True, True, False))
      elif action == 'search':
        out.append(Observation(information_block(next(results), self.style), False, True,
                               True, content))
      else:
        out.append(Observation(INVALID_ACTION, False, False, False))
    return out

  def __call__(self, turn: Any) -> Observation:
    return self.step([turn])[0]
