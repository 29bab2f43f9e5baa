"""A synthetic arithmetic task for a family of tiny generator-judges of graded skill.

Problems: sums of `terms` numbers below 10**digits ("12+34+56"); difficulty is set by
terms and digits. Train and test problems are disjoint by a hash of the expression, so
judge training never sees a test problem.

Three formats over one character vocabulary (BOS + prompt -> completion + EOS):
  answer         "12+34+56="            -> "102"                 (no scratchpad)
  direct judge   "12+34+56=|A:102|B:92|?" -> "A"                 (verdict token at once)
  CoT judge      "12+34+56=|A:102|B:92|:" -> "12+34=46;46+56=102|A102=|B92!>A"
The CoT judge works the sum out pairwise, then copies each answer and checks it against the
sum ('=' agrees, '!' does not) before its verdict, as a chain of thought does;
the generator answers in one go, so its mistakes are its own and a judge that checks
answers against its own belief will tend to prefer them. Verdicts: A or B when exactly one
answer is right, T when both are right or both wrong (prompts.VERDICTS).
"""
from __future__ import annotations

import zlib

import numpy as np

from jaxpapers.core import tasks as tasks_lib
from jaxpapers.papers.selfpref import judge as judge_lib
from jaxpapers.papers.selfpref import prompts

TOKENIZER = tasks_lib.CharTokenizer(chars='0123456789+=|ABT:;>?! ')
MAX_ANSWER_CHARS = 8      # answers shown to a judge are cut to this (garbage stays short)
# (p(only A right), p(only B right), p(both right), p(both wrong)) of judge training pairs
PAIR_MIX = (0.35, 0.35, 0.15, 0.15)


def is_test(expression: str, test_fraction: float) -> bool:
  return zlib.crc32(expression.encode()) % 1000 < test_fraction * 1000


def problems(n: int, seed: int, split: str, terms: int = 3, digits: int = 2,
             test_fraction: float = 0.2) -> list[dict]:
  """n problems {'question': '12+34+56', 'answer': '102'} of one split; test problems are
  distinct (each counts once in the metrics), train problems may repeat."""
  if split not in ('train', 'test'):
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")
  test = split == 'test'
  space = 10 ** (digits * terms)
  if test and n > 0.8 * test_fraction * space:
    raise ValueError(f'{n} distinct test problems asked of about {int(test_fraction * space)} '
                     f'(terms={terms}, digits={digits}): use fewer or a larger task')
  rng = np.random.default_rng([seed, terms, digits, test])
  out, seen = [], set()
  while len(out) < n:
    ops = rng.integers(0, 10**digits, terms)
    q = '+'.join(str(int(x)) for x in ops)
    if is_test(q, test_fraction) == test and not (test and q in seen):
      seen.add(q)
      out.append({'question': q, 'answer': str(int(ops.sum()))})
  return out


def scratchpad(question: str) -> str:
  """Left-to-right pairwise partial sums: '12+34+56' -> '12+34=46;46+56=102'."""
  ops = [int(x) for x in question.split('+')]
  steps, total = [], ops[0]
  for x in ops[1:]:
    steps.append(f'{total}+{x}={total + x}')
    total += x
  return ';'.join(steps)


def cot_completion(question: str, answer_a: str, answer_b: str) -> str:
  """The CoT judge's gold text: the pairwise sums, a check of each answer, the verdict."""
  right = str(sum(int(x) for x in question.split('+')))
  mark = lambda answer: '=' if answer == right else '!'  # noqa: E731
  a, b = answer_a[:MAX_ANSWER_CHARS], answer_b[:MAX_ANSWER_CHARS]
  return (f'{scratchpad(question)}|A{a}{mark(answer_a)}|B{b}{mark(answer_b)}>'
          f'{gold_verdict(answer_a == right, answer_b == right)}')


def judge_prompt(question: str, answer_a: str, answer_b: str, cot: bool) -> str:
  a, b = answer_a[:MAX_ANSWER_CHARS], answer_b[:MAX_ANSWER_CHARS]
  return f'{question}=|A:{a}|B:{b}|' + (':' if cot else '?')


def gold_verdict(a_right: bool, b_right: bool) -> str:
  return 'A' if a_right and not b_right else 'B' if b_right and not a_right else 'T'


def parse_verdict(text: str) -> str | None:
  """The verdict after the last '>' (CoT) or the whole completion (direct)."""
  tail = text.rsplit('>', 1)[-1].strip()
  return tail if tail in ('A', 'B', 'T') else None


def cot_sum(text: str) -> str | None:
  """The total a CoT judge worked out (the last partial sum before its checks)."""
  work = text.split('|', 1)[0]
  return work.rsplit('=', 1)[-1] if '=' in work else None


def reward(completion: str, answer: str) -> float:
  """Exact sum for answer prompts; the right verdict for judge prompts."""
  if answer in ('A', 'B', 'T'):
    return float(parse_verdict(completion) == answer)
  return tasks_lib.exact_answer_reward(completion, answer)


def judge_pair(problem: dict, rng: np.random.Generator) -> tuple[str, str]:
  """Two candidate answers (right ones or near misses) in PAIR_MIX proportions."""
  right = problem['answer']
  wrong = lambda: tasks_lib.corrupt_answer(right, rng)  # noqa: E731
  kind = rng.choice(4, p=PAIR_MIX)
  if kind == 0:
    return right, wrong()
  if kind == 1:
    return wrong(), right
  if kind == 2:
    return right, right
  a = wrong()
  b = wrong()
  return a, b if b != a else str(int(a) + 1) if str(int(a) + 1) != right else str(int(a) + 2)


def examples(rows: list[dict], seed: int, mix: tuple[float, float, float]) -> list[tuple]:
  """(prompt text, completion, reward answer) of the three formats in `mix` proportions
  (answer, direct judge, CoT judge)."""
  rng = np.random.default_rng(seed + 7)
  out = []
  for row in rows:
    kind = rng.choice(3, p=mix)
    if kind == 0:
      out.append((row['question'] + '=', row['answer'], row['answer']))
      continue
    a, b = judge_pair(row, rng)
    verdict = gold_verdict(a == row['answer'], b == row['answer'])
    cot = kind == 2
    completion = cot_completion(row['question'], a, b) if cot else verdict
    out.append((judge_prompt(row['question'], a, b, cot), completion, verdict))
  return out


def prompt_set(c, n: int, seed: int, split: str) -> tasks_lib.PromptSet:
  """GRPO task 'selfpref_arith': answer and judge prompts (SFT warm-up on the gold
  completions, then GRPO on the exact-answer / right-verdict reward)."""
  rows = problems(n, seed, split, c.terms, c.digits, c.test_fraction)
  tok = TOKENIZER
  exs = examples(rows, seed, tuple(c.mix))
  return tasks_lib.PromptSet(
      [[tok.bos_token_id] + tok.encode(p) for p, _, _ in exs], [a for _, _, a in exs], tok,
      reward, [tasks_lib.encode_prompt_completion(tok, p, comp, c.sft_seq_len)
               for p, comp, _ in exs])


def judge_format() -> judge_lib.JudgeFormat:
  tok = TOKENIZER
  encode = lambda text: [tok.bos_token_id] + tok.encode(text)  # noqa: E731
  return judge_lib.JudgeFormat(
      answer_ids=lambda q: encode(q + '='),
      judge_ids=lambda q, a, b, cot: encode(judge_prompt(q, a, b, cot)),
      verdict_ids=tuple(tok.encode(v)[0] for v in prompts.VERDICTS),
      parse=parse_verdict, decode=tok.decode, eos_ids=(tok.eos_token_id,),
      pad_id=tok.pad_token_id, bucket=8)
