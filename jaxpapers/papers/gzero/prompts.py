"""G-Zero prompts and the Proposer-output parser (the reference's prompts.py and parse.py).

The Proposer (the reference's Challenger) is asked for one request and a hint in
<question>/<hint> tags; the Generator (Solver) sees the question alone, or
"{question}\n\nHint: {hint}", as one user turn with no system prompt (base models echo
system prompts into their answers, which would leak into the DPO pairs).
"""
from __future__ import annotations

import re

CHALLENGER_INSTRUCTION = (
    'Produce one challenging request that a real user might ask a capable assistant, plus a short hint that helps the assistant give a noticeably better response.\n'
    '\n'
    'The request should come from a general-domain distribution. Sample across task types, not from a single area. Examples of task types you can draw from:\n'
    '  - writing (email, story, essay, pitch, review, poem)\n'
    '  - explanation (make a concept clear to a specific audience)\n'
    '  - advice or planning (career, travel, project, learning)\n'
    '  - analysis (argument, text, dataset description, product)\n'
    '  - coding (small function, debugging, design question)\n'
    '  - role-play, dialogue, or creative tasks\n'
    '  - open-ended questions about ethics, science, everyday life\n'
    '  - reasoning, math, or logic problems (fine to include — roughly 1 in 6 requests, no more)\n'
    '\n'
    'Weight the non-math categories above heavily. A little math is good for diversity, but it should not dominate — favor tasks where the response quality depends on tone, structure, audience-fit, clarity, or creativity, not just arithmetic correctness.\n'
    '\n'
    'Requirements:\n'
    '- The request must be self-contained and non-trivial to answer well.\n'
    '- The hint must guide the approach (e.g. tone, structure, what to   include, what to avoid) but must not give away the full answer.\n'
    '- Wrap the request in <question> and </question> tags.\n'
    '- Wrap the hint in <hint> and </hint> tags.\n'
    '- Output nothing else before, between, or after the tagged blocks.\n'
    '\n'
    'Example 1 (writing):\n'
    "<question>Write a resignation email to my manager that keeps the door open for future collaboration. I've been at the company for 4 years and I'm leaving to join a competitor. Tone should be professional and warm without being effusive.</question>\n"
    '<hint>Lead with gratitude for specific experiences rather than generic thanks, keep the departure reason brief and non-defensive, and close with a concrete offer to help during the transition.</hint>\n'
    '\n'
    'Example 2 (explanation):\n'
    '<question>Explain what a Kalman filter does to a software engineer who is comfortable with linear algebra but has never touched signal processing. Avoid control-theory jargon where possible.</question>\n'
    "<hint>Frame it as 'recursive Bayesian least-squares on a noisy dynamical system' and build up from a 1-D example (estimating position from noisy GPS) before generalizing.</hint>\n"
    '\n'
    'Now produce one new request and hint of your own:\n'
)


_QUESTION = re.compile(r'<question>(.*?)</question>', re.DOTALL)
_HINT = re.compile(r'<hint>(.*?)</hint>', re.DOTALL)
# Echoes of the instruction's placeholders are not questions.
_PLACEHOLDER = re.compile(r'\[\s*your\s+(question|hint|problem|answer)\b|'
                          r'\byour\s+(question|hint|problem)\s+here\b', re.IGNORECASE)


def solver_user(question: str, hint: str | None = None) -> str:
  """The Generator's user turn: the question, with the hint appended when given."""
  return f'{question}\n\nHint: {hint}' if hint else question


def extract_qh(text: str) -> tuple[str, str]:
  """(question, hint) of a Proposer output: the last tagged pair, stripped; ('', '') when
  either tag is missing or empty, or either is a placeholder echo."""
  questions, hints = _QUESTION.findall(text), _HINT.findall(text)
  if not (questions and hints):
    return '', ''
  question, hint = questions[-1].strip(), hints[-1].strip()
  if not question or not hint or _PLACEHOLDER.search(question) or _PLACEHOLDER.search(hint):
    return '', ''
  return question, hint
