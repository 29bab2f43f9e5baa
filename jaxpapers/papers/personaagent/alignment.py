"""Test-time persona alignment (PersonaAgent, Sec. "test-time user-preference alignment").

For each user, one iteration:
  1. simulate: the agent LLM answers the user's latest n interactions (n = 3 in the paper)
     with the current persona as system prompt;
  2. textual loss: the feedback LLM compares simulated with true answers and writes
     feedback (one call over all n, i.e. the aggregated feedback);
  3. update: the update LLM rewrites the persona from the feedback.
E iterations (the paper's gains plateau near 3). Users run as one batch per call.

Choices (the paper is silent): the latest n interactions are the newest n of the history
(never a query); the simulation is the single-shot rating prompt with the persona alone (no
memory, no tools: the persona is what is being fitted, and it keeps the loop cheap); the
aligned task is rating (`alignment.task` in the config names it; one persona serves both
tasks); an empty rewrite keeps the old persona (counted as `kept`). `sim_mae` is the
simulations' MAE under LaMP's rules, the loop's training error.

Personas persist as jsonl rows {user, iteration, persona}, written after every iteration;
`load_personas` reads them back as {iteration: {user: persona}} (the evaluation reads its
personas from that file).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Mapping, Sequence

from jaxpapers.papers.personaagent import llm as llm_lib
from jaxpapers.papers.personaagent import metrics
from jaxpapers.papers.personaagent import prompts


@dataclasses.dataclass(frozen=True)
class Target:
  """One past interaction to simulate."""
  id: str
  item_text: str        # the movie, as shown to the feedback LLM
  question: str         # the LaMP input the agent answers
  answer: str           # the user's true answer


@dataclasses.dataclass(frozen=True)
class AlignConfig:
  iterations: int = 3           # E
  sim_tokens: int = 3           # budget of a simulated answer
  feedback_tokens: int = 64     # budget of the textual feedback
  persona_tokens: int = 96      # budget of a rewritten persona


def save_personas(path: str | pathlib.Path, by_iteration: Mapping[int, Mapping[int, str]]
                  ) -> None:
  """Writes {iteration: {user: persona}} as jsonl rows (atomic)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  rows = [{'user': u, 'iteration': e, 'persona': p}
          for e in sorted(by_iteration) for u, p in sorted(by_iteration[e].items())]
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(''.join(json.dumps(r) + '\n' for r in rows))
  tmp.replace(path)


def load_personas(path: str | pathlib.Path) -> dict[int, dict[int, str]]:
  out: dict[int, dict[int, str]] = {}
  for line in pathlib.Path(path).read_text().splitlines():
    if line.strip():
      r = json.loads(line)
      out.setdefault(int(r['iteration']), {})[int(r['user'])] = r['persona']
  return out


def iterate(llm: llm_lib.LLMFn, personas: Mapping[int, str],
            targets: Mapping[int, Sequence[Target]], cfg: AlignConfig
            ) -> tuple[dict[int, str], list[dict]]:
  """One alignment iteration for every user: (new personas, one log row per user)."""
  users = sorted(personas)
  chats = [(personas[u], t.question) for u in users for t in targets[u]]
  sims = iter(llm(chats, cfg.sim_tokens))
  sim_rows = {u: [(t, next(sims)) for t in targets[u]] for u in users}
  feedback = llm([('', prompts.feedback_prompt(
      personas[u], [(t.item_text, s, t.answer) for t, s in sim_rows[u]])) for u in users],
                 cfg.feedback_tokens)
  rewrites = llm([('', prompts.rewrite_prompt(personas[u], f)) for u, f in zip(users, feedback)],
                 cfg.persona_tokens)
  new, log = {}, []
  for u, fb, text in zip(users, feedback, rewrites):
    new[u] = text.strip() or personas[u]
    log.append({'user': u, 'ids': [t.id for t, _ in sim_rows[u]],
                'simulated': [s for _, s in sim_rows[u]],
                'true': [t.answer for t, _ in sim_rows[u]], 'feedback': fb,
                'persona': new[u], 'kept': not text.strip()})
  return new, log


def sim_mae(log: Sequence[dict]) -> float | None:
  preds = [s for row in log for s in row['simulated']]
  golds = [t for row in log for t in row['true']]
  if not golds:
    return None
  return metrics.evaluate_rating(preds, golds, bootstrap=0)['mae']


def align(llm: llm_lib.LLMFn, initial: Mapping[int, str], targets: Mapping[int, Sequence[Target]],
          cfg: AlignConfig, path: str | pathlib.Path | None = None
          ) -> tuple[dict[int, dict[int, str]], list[dict]]:
  """Personas at iterations 0..E ({iteration: {user: persona}}) and per-iteration logs;
  with `path`, saved after every iteration (a rerun resumes through the LLM's cache)."""
  by_it: dict[int, dict[int, str]] = {0: dict(initial)}
  logs = []
  for e in range(1, cfg.iterations + 1):
    by_it[e], log = iterate(llm, by_it[e - 1], targets, cfg)
    logs.append({'iteration': e, 'sim_mae': sim_mae(log), 'rows': log})
    if path is not None:
      save_personas(path, by_it)
  return by_it, logs
