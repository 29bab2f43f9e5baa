"""PersonaAgent's actions: a ReAct-style tool loop through core's agent loop (`core.agent`).

Grammar of a policy turn (ours; the paper names the tool kinds, not their syntax):
  Action: search_movies[words]    general tool: BM25 over every movie description
  Action: search_history[words]   personal tool: the user's episodic memory (dense top-K)
  Answer: <answer>                ends the episode
A turn that writes "Action:" without a well-formed call of a known tool gets an error
observation naming the grammar (`invalid`, the episode goes on); a turn with neither an
action nor "Answer:" is taken as the answer (small models often answer directly), as is an
EOS. Observations are appended inline ("\\nObservation: ...\\n") and sampling stops at "]"
so a call is answered before the model goes on. The answer is the text after the last
"Answer:" (else the last line that is not an action: a turn that stops after the word
"Action" is an unfinished call, not the tag "action"), with quotes, brackets and a trailing
full stop removed; tags are lower-cased (the label list is).
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

from jaxpapers.core import env as env_lib
from jaxpapers.core.retrieval import bm25 as bm25_lib
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.papers.personaagent import memory as memory_lib
from jaxpapers.papers.personaagent import prompts
from jaxpapers.papers.personaagent import tasks as tasks_lib

TOOLS = ('search_movies', 'search_history')
STOP = (']',)
_ACTION = re.compile(r'Action:\s*([A-Za-z_]+)\s*\[([^\]\n]*)\]')
_ANSWER = re.compile(r'Answer:\s*([^\n]*)')
ERROR = ('Error: {why}. Write "Action: search_movies[words]", "Action: search_history[words]" '
         'or "Answer: <answer>".')
OBSERVATION = '\nObservation: {text}\n'


def parse_turn(text: str) -> tuple[str, str, str]:
  """('tool', name, argument) | ('answer', text, '') | ('invalid', reason, '') | ('none',..)."""
  if 'Action:' in text:
    m = _ACTION.search(text)
    if m is None:
      return 'invalid', 'malformed action', ''
    name, arg = m.group(1), m.group(2).strip()
    if name not in TOOLS:
      return 'invalid', f'unknown tool {name!r} (tools: {", ".join(TOOLS)})', ''
    if not arg:
      return 'invalid', f'{name} needs search words inside the brackets', ''
    return 'tool', name, arg
  m = _ANSWER.search(text)
  if m is not None:
    return 'answer', m.group(1), ''
  return 'none', text, ''


def final_answer(policy_text: str, task: str) -> str:
  """The answer an episode gives (see the module docstring)."""
  found = _ANSWER.findall(policy_text)
  if found:
    text = found[-1]
  else:
    lines = [ln for ln in policy_text.splitlines()
             if ln.strip() and not ln.strip().startswith('Action') and 'Action:' not in ln]
    text = lines[-1] if lines else ''
  text = text.strip().strip('"\'[]()` ').rstrip('.').strip()
  return text.lower() if task == tasks_lib.LAMP_2 else text


def movie_search(movies: Mapping[int, tasks_lib.Movie], k: int) -> Callable[[str], str]:
  """search_movies: BM25 (core) over every movie's "Title (year). Genres: ..." text."""
  items = sorted(movies)
  corpus = corpus_lib.Corpus([corpus_lib.Passage(str(i), '', movies[i].text) for i in items],
                             source='movies')
  retriever = bm25_lib.BM25Retriever(corpus)

  def search(query: str) -> str:
    hits = retriever.search([query], k)[0]
    return ' | '.join(p.text for p in hits) or 'no movie matches'
  return search


class PersonaEnv(env_lib.Environment):
  """Answers tool calls; task.meta holds 'memory_key' (the user's key in `memory`)."""

  def __init__(self, search_movies: Callable[[str], str],
               memory: memory_lib.EpisodicMemory | None, k: int):
    super().__init__()
    self.search_movies, self.memory, self.k = search_movies, memory, k

  def _history(self, key, query: str) -> str:
    if self.memory is None:
      return 'Error: search_history is not available'
    hits = self.memory.top_k(key, [query], self.k)[0]
    return ' | '.join(prompts.record_line(r)[2:] for r in hits) or 'no past answers'

  def step(self, rows: Sequence[int], turns: Sequence[str]) -> list[env_lib.Observation]:
    out = []
    for row, turn in zip(rows, turns):
      kind, a, b = parse_turn(turn)
      if kind == 'invalid':
        out.append(env_lib.Observation(OBSERVATION.format(text=ERROR.format(why=a)),
                                       invalid=True))
      elif kind == 'tool':
        text = (self.search_movies(b) if a == 'search_movies'
                else self._history(self.tasks[row].meta['memory_key'], b))
        out.append(env_lib.Observation(OBSERVATION.format(text=text), tool_call=True))
      else:
        out.append(env_lib.Observation('', done=True))
    return out
