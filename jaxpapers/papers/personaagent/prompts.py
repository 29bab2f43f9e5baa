"""Every prompt string of PersonaAgent's LLM half, in one place.

The paper (no public code) names the roles but not the strings; these are ours, short on
purpose (a 0.5B model on a CPU: every prompt token costs prefill time):
  * semantic memory: the user's newest history items (and, with `with_stats`, their overall
    and per-genre mean ratings) -> a short profile of their taste (`SUMMARY`);
  * persona: a template around the semantic summary (`PERSONA_INIT`), then rewritten by the
    update LLM during alignment (`FEEDBACK`, `REWRITE`);
  * agent: the persona as system prompt; the user message holds the semantic summary, the
    episodic top-K records, the tool instructions and the LaMP input (`agent_message`).
"""
from __future__ import annotations

from typing import Sequence

from jaxpapers.papers.personaagent import memory as memory_lib

GENERIC_SYSTEM = 'You are a helpful assistant.'
PERSONA_INIT = 'You are a movie viewer. {summary} Answer every question as this viewer would.'
EMPTY_SUMMARY = 'Little is known about your taste yet.'
SUMMARY = ('Here are movies a viewer rated (1 = hated, 5 = loved):\n{items}\n{stats}'
           'In at most three sentences, describe this viewer\'s movie taste and how '
           'generously they rate. Write in the second person ("You ...").')
FEEDBACK = ('A persona describes a movie viewer and was used to predict their ratings '
            '(1-5).\nPersona: {persona}\nPredicted vs true ratings:\n{rows}\n'
            'In at most two sentences, say what the persona gets wrong about this viewer.')
REWRITE = ('Persona: {persona}\nFeedback: {feedback}\nRewrite the persona so it fixes the '
           'feedback and keeps what is right. At most three sentences, second person '
           '("You ..."). Output only the new persona.')
TOOLS = ('You may look things up first. Write "Action: search_movies[words]" to search movie '
         'descriptions, or "Action: search_history[words]" to search this user\'s past '
         'answers. When ready, write "Answer: " and the answer.')
HISTORY_HEADER = 'This user\'s past answers to similar questions:'
SUMMARY_HEADER = 'About this user: '


def record_line(r: memory_lib.Record) -> str:
  return f'- {r.query} -> {r.response}'


def summary_prompt(items: Sequence[tuple[str, int]], stats: str = '') -> str:
  """items: (movie text, rating), oldest first; stats: a prepared line or ''."""
  lines = '\n'.join(f'- {text} -> {rating}' for text, rating in items)
  return SUMMARY.format(items=lines, stats=f'{stats}\n' if stats else '')


def stats_line(ratings: Sequence[int], genre_means: dict[str, tuple[float, int]],
               top: int = 5) -> str:
  """'Mean rating 3.6 over 120 movies; most rated genres: drama 3.9 (50), ...'."""
  if not ratings:
    return ''
  best = sorted(genre_means.items(), key=lambda kv: (-kv[1][1], kv[0]))[:top]
  genres = ', '.join(f'{g} {m:.1f} ({n})' for g, (m, n) in best)
  return (f'Mean rating {sum(ratings) / len(ratings):.1f} over {len(ratings)} movies; '
          f'most rated genres (mean, count): {genres}.')


def initial_persona(summary: str) -> str:
  return PERSONA_INIT.format(summary=summary.strip() or EMPTY_SUMMARY)


def feedback_prompt(persona: str, rows: Sequence[tuple[str, str, str]]) -> str:
  """rows: (movie text, simulated answer, true answer)."""
  lines = '\n'.join(f'- {m}: predicted {s.strip()[:12] or "nothing"}, true {t}'
                    for m, s, t in rows)
  return FEEDBACK.format(persona=persona, rows=lines)


def rewrite_prompt(persona: str, feedback: str) -> str:
  return REWRITE.format(persona=persona, feedback=feedback.strip() or 'none')


def agent_message(lamp_input: str, summary: str | None, records: Sequence | None,
                  tools: bool) -> str:
  """The agent's user message; None / False leave a component out (the ablations)."""
  parts = []
  if summary is not None:
    parts.append(SUMMARY_HEADER + (summary.strip() or EMPTY_SUMMARY))
  if records:
    parts.append('\n'.join([HISTORY_HEADER] + [record_line(r) for r in records]))
  if tools:
    parts.append(TOOLS)
  parts.append(lamp_input)
  return '\n\n'.join(parts)
