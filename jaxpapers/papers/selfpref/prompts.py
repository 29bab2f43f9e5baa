"""Every prompt string of the self-preference study, in one place (pinned by a test).

The judge prompt follows the pairwise MT-Bench layout with the published artifacts' verdict
strings (wlchen0206/llm-sp: "My final verdict is $$A$$" / "$$B$$" / "$$T$$"). The paper's
exact judge wording is not in its artifacts, so ours is stated here; it asks for the
objectively correct response, as the tasks are verifiable.

- Direct judge: the assistant turn is pre-filled with `DIRECT_PREFIX` and the verdict is the
  argmax over the next-token probabilities of [A, T, B] (VERDICTS order, as the artifacts'
  `game_*_spb_score`).
- CoT judge: the judge writes its reasoning, then "My final verdict is $$X$$"
  (`parse_verdict` also takes "is X." / "[[X]]" / "**X**", which small models write; no
  verdict -> None, counted and treated as a tie).
"""
from __future__ import annotations

import re

VERDICTS = ('A', 'T', 'B')      # order of the verdict-probability vectors

JUDGE_SYSTEM = (
    'Please act as an impartial judge and evaluate the responses provided by two AI '
    'assistants to the user question displayed below. The question has an objectively '
    'correct answer: your job is to decide which response is correct. Avoid any position '
    'biases and ensure that the order in which the responses were presented does not '
    'influence your decision. Do not allow the length of the responses to influence your '
    'evaluation. Do not favor certain names of the assistants. Be as objective as possible.')

DIRECT_INSTRUCTION = (
    'Output your final verdict by strictly following this format: "My final verdict is '
    '$$A$$" if assistant A is better, "My final verdict is $$B$$" if assistant B is better, '
    'and "My final verdict is $$T$$" for a tie. Output nothing else.')

COT_INSTRUCTION = (
    'Begin your evaluation by solving the question yourself step by step, then check each '
    'response against your solution. After providing your explanation, output your final '
    'verdict by strictly following this format: "My final verdict is $$A$$" if assistant A '
    'is better, "My final verdict is $$B$$" if assistant B is better, and "My final verdict '
    'is $$T$$" for a tie.')

JUDGE_USER = (
    '[User Question]\n{question}\n\n'
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]")

DIRECT_PREFIX = 'My final verdict is $$'     # pre-filled assistant text; next token = verdict

ANSWER_SUFFIX = '\nPlease reason step by step, and put your final answer within \\boxed{}.'
CODE_ANSWER = ('Complete the following Python function. Write the whole function in one '
               '```python code block.\n\n```python\n{prompt}```')

# The asked-for "$$X$$", and the bare / [[X]] / **X** forms small models write instead.
_VERDICT = re.compile(r'final verdict is:?\s*(?:\$\$|\[\[|\*\*)?\s*([ABT])\s*'
                      r'(?:\$\$|\]\]|\*\*)?(?![A-Za-z])', re.IGNORECASE)


def judge_messages(question: str, answer_a: str, answer_b: str, cot: bool) -> list[dict]:
  """The chat messages of one game (system + user)."""
  instruction = COT_INSTRUCTION if cot else DIRECT_INSTRUCTION
  return [{'role': 'system', 'content': f'{JUDGE_SYSTEM} {instruction}'},
          {'role': 'user', 'content': JUDGE_USER.format(question=question, answer_a=answer_a,
                                                        answer_b=answer_b)}]


def answer_prompt(question: str, task: str = 'math') -> str:
  """What a generator is asked: math step by step with the answer boxed, or code (the
  question is a HumanEval function stub) in one fenced block."""
  if task == 'code':
    return CODE_ANSWER.format(prompt=question)
  if task != 'math':
    raise ValueError(f"answer task {task!r} unknown; valid: ['math', 'code']")
  return question + ANSWER_SUFFIX


def parse_verdict(text: str) -> str | None:
  """'A' | 'B' | 'T' from the last "final verdict is $$X$$" in `text`; None if absent."""
  found = _VERDICT.findall(text or '')
  return found[-1].upper() if found else None
