"""Verifiable rewards: math answers (math-verify), output format, QA exact match / F1 / recall.

Every reward is `fn(completion, answer) -> float` registered in `REWARDS`, and is total:
garbage, empty, non-string or adversarial input gives 0.0, never an exception, and returns
within a time bound.

Math (`math`): the answer is the content of the last complete \\boxed{...} in the completion,
else the last GSM8K-style "#### x", else the last <answer>...</answer>; the gold is read the
same way from `answer` (a GSM8K solution, a MATH boxed solution, or a bare answer). Plain
numbers are compared exactly with `fractions.Fraction` (no sympy, fast for GSM8K); anything
else goes through math-verify's `parse` (as \\boxed{...}) and `verify(gold, answer)`.
math-verify's own timeouts use signal.alarm, which only works on the main thread, so we pass
parsing_timeout=None / timeout_seconds=None and bound the time ourselves, in three layers:
  - answers longer than MAX_ANSWER_CHARS (200) or holding a 40+ digit literal score 0;
  - after `parse` (which leaves expressions unevaluated) and before `verify`, a walk over the
    sympy tree bounds the size of every number it could produce; anything that might exceed
    10^5 digits (10^{10^{10}}, (99!)!, \binom{10^{30}}{10^{15}}, e^{10^{10}}) scores 0. This
    matters because giant integer arithmetic runs in C, where no signal can interrupt it;
  - on the main thread one SIGALRM deadline (`time_budget_s`, default 1 s) covers parse and
    verify. Other threads (a reward thread pool) cannot take signals, so there the tree walk
    is also strict: symbolic powers above 100 ((1+x)^{2000}) score 0 instead of being
    expanded. That is our choice: such an answer is very rarely legitimate.

Format (`format`): exactly one <think>...</think> then exactly one <answer>...</answer>, with
only whitespace around and between (DeepSeek-R1 style), checked without regex backtracking.
`think_format` is TRL's `think_format_reward` (trl/rewards/format_rewards.py): the output
starts with <think>, has no second <think>, and closes </think>. `make_regex_format_reward`
builds a reward from any pattern (the caller owns its worst case).

QA (`exact_match`, `f1`, `substring_accuracy`, `retrieval_recall` from `qa_metrics`, and
`substring_recall`): SQuAD v1.1 normalisation, max over gold aliases; the prediction is the
last <answer>...</answer> when present, else the whole completion. substring_recall is 1 when
a normalised gold alias occurs, on word boundaries, in the normalised prediction
(Search-R1/R1-Searcher's "cover" match; word boundaries so that '1' is not found in '10').
"""
from __future__ import annotations

import fractions
import functools
import gc
import math
import re
import signal
import sys
import threading
from typing import Any, Callable

from jaxpapers.core import qa_metrics
from jaxpapers.core.registry import Registry

REWARDS = Registry('reward')
register = REWARDS.register

MAX_ANSWER_CHARS = 200
_GSM8K = re.compile(r'####\s*([^\n]*)')
_HUGE_LITERAL = re.compile(r'\d{40,}')
_CHEAP_FUNCTIONS = frozenset((
    'sin', 'cos', 'tan', 'cot', 'sec', 'csc', 'asin', 'acos', 'atan', 'acot', 'asec', 'acsc',
    'sinh', 'cosh', 'tanh', 'coth', 'log', 'Abs', 'sign', 'floor', 'ceiling', 'frac', 'Mod',
    'Max', 'Min', 're', 'im', 'arg', 'conjugate', 'Piecewise'))
_NUMBER = re.compile(r'[-+]?(?:\d+(?:\.\d*)?|\.\d+)')


class _Deadline(BaseException):
  """Raised by the SIGALRM handler; a BaseException so library `except Exception` misses it."""


def total(fn: Callable[..., float]) -> Callable[..., float]:
  """Make a reward total: any exception (including a deadline) becomes 0.0."""
  def wrapped(completion, answer=None, **kw) -> float:
    try:
      return float(fn(completion, answer, **kw))
    except (Exception, _Deadline):  # noqa: BLE001 - a reward must never raise
      return 0.0
  wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
  return wrapped


# ----------------------------------------------------------------------------- extraction


def last_boxed(text: str) -> str | None:
  """Content of the last \\boxed{...} (or \\fbox{...}) whose braces balance, else None.

  One pass pairs every brace (a stack), so nested or unbalanced input stays linear.
  """
  closing, stack = {}, []
  for i, ch in enumerate(text):
    if ch == '{':
      stack.append(i)
    elif ch == '}' and stack:
      closing[stack.pop()] = i
  for m in reversed(list(re.finditer(r'\\(?:boxed|fbox)\s*\{', text))):
    end = closing.get(m.end() - 1)
    if end is not None:
      return text[m.end():end]
  return None


def last_tag(text: str, tag: str = 'answer') -> str | None:
  """Stripped content of the last <tag>...</tag> (linear time: two rfind), else None."""
  close = text.rfind(f'</{tag}>')
  start = text.rfind(f'<{tag}>', 0, max(close, 0))
  if close < 0 or start < 0:
    return None
  return text[start + len(tag) + 2:close].strip()


def extract_math_answer(text: str) -> str | None:
  """Last \\boxed{}, else last '#### x' (GSM8K), else last <answer>; stripped, or None."""
  boxed = last_boxed(text)
  if boxed is not None:
    return boxed.strip()
  hashes = _GSM8K.findall(text)
  if hashes:
    return hashes[-1].strip().rstrip('.').strip()
  return last_tag(text)


def gold_math_answer(answer: str) -> str | None:
  """The gold from a GSM8K solution ('... #### 72'), a boxed solution, or a bare answer."""
  if '####' in answer or '\\boxed' in answer or '\\fbox' in answer:
    return extract_math_answer(answer)
  return answer.strip() or None


# ----------------------------------------------------------------------------- math


def _with_deadline(fn: Callable[[], Any], seconds: float) -> Any:
  """Run fn under a SIGALRM deadline (main thread only); raise _Deadline when it expires.

  The timer keeps firing every 50 ms after the deadline, and _Deadline is a BaseException,
  so a broad `except Exception` inside sympy or math-verify cannot swallow it for good.
  A tick raises only where the exception unwinds into fn (`_unwinds_into`); one that lands in
  a gc callback or a finaliser is skipped and another tick comes 5 ms later. `armed` is cleared
  by the first statement of `finally` (no call, so no signal can run in between); a late tick
  then does nothing instead of raising outside the deadline.
  """
  armed = True

  def on_alarm(signum, frame):
    if not armed:
      return
    if _unwinds_into(frame, fn.__code__):
      raise _Deadline(f'reward took more than {seconds} s')
    signal.setitimer(signal.ITIMER_REAL, 0.005, 0.05)   # skipped: try again soon

  old = signal.signal(signal.SIGALRM, on_alarm)
  signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
  try:
    return fn()
  finally:
    armed = False
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


_CALLBACK_MODULES = frozenset(('weakref', '_weakrefset', 'atexit'))


def _unwinds_into(frame, body) -> bool:
  """True when an exception raised in `frame` propagates to the running call of `body`.

  Python runs gc callbacks (jax registers one), `__del__` finalisers, weakref callbacks and
  sys.unraisablehook in whatever frame was active; an exception raised inside them never
  reaches the caller: it is printed as "unraisable" and the callback is cut short.
  """
  callbacks = {getattr(cb, '__code__', None) for cb in gc.callbacks}
  hook = getattr(sys.unraisablehook, '__code__', None)
  while frame is not None:
    code = frame.f_code
    if code is body:
      return True
    if (code.co_name == '__del__' or code in callbacks or code is hook
        or frame.f_globals.get('__name__') in _CALLBACK_MODULES):
      return False
    frame = frame.f_back
  return False


def _plain_number(s: str) -> fractions.Fraction | None:
  s = re.sub(r'(?<=\d),(?=\d{3})', '', s)
  s = s.replace('\\$', '').replace('$', '').replace('\\!', '').replace(' ', '').rstrip('.')
  return fractions.Fraction(s) if _NUMBER.fullmatch(s) and len(s) <= 40 else None


def _numeric_verdict(gold: str, pred: str) -> float | None:
  """1.0 / 0.0 when both are plain numbers and that decides it; None to ask math-verify."""
  g, p = _plain_number(gold), _plain_number(pred)
  if g is None or p is None:
    return None
  if g == p:
    return 1.0
  return 0.0 if ('.' not in gold and '.' not in pred) else None


def _too_long(expr: str) -> bool:
  return len(expr) > MAX_ANSWER_CHARS or _HUGE_LITERAL.search(expr) is not None


def _log10_bound(e, strict: bool) -> float:
  """Upper bound on log10(1 + |e|) of a parsed sympy expression; inf if it may blow up.

  Giant integer arithmetic (10^{10^{10}}, (99!)!) runs in C and ignores signals, so it must be
  refused before sympy evaluates it. Off the main thread (strict) symbolic powers above 100
  are refused too: expanding (1+x)^{2000} is slow Python with no deadline to stop it.
  """
  import sympy  # noqa: PLC0415 - sympy comes with math-verify, imported lazily
  if isinstance(e, sympy.MatrixBase):
    return max((_log10_bound(x, strict) for x in e), default=1.0)
  if not isinstance(e, sympy.Basic) or e.is_Float or (e.is_Atom and not e.is_Rational):
    return 1.0
  if e.is_Rational:
    return (abs(e.p).bit_length() + e.q.bit_length()) * 0.30103 + 1.0
  args = [_log10_bound(a, strict) for a in e.args]
  if isinstance(e, sympy.Pow):
    if args[1] > 6:
      return math.inf
    power = abs(int(e.exp)) if e.exp.is_Integer else 10.0 ** args[1]
    if strict and e.base.free_symbols and power > 100:
      return math.inf
    return args[0] * power + 1.0
  if isinstance(e, sympy.Mul):
    return sum(args) + 1.0
  if isinstance(e, sympy.Function) and type(e).__name__ not in _CHEAP_FUNCTIONS:
    worst = max(args, default=1.0)        # factorial, binomial, gamma, exp, ...: small args only
    return math.inf if worst > 3 else 10.0 ** worst * worst + 1.0
  return max(args, default=1.0) + 1.0


def _tame(parsed: list, strict: bool) -> bool:
  """True when every parsed candidate stays below 10^5 digits."""
  return all(_log10_bound(x, strict) < 1e5 for x in parsed if not isinstance(x, str))


@functools.lru_cache(maxsize=1)
def _math_verify_fns():
  """Import math-verify (sympy, seconds) and warm its lazy state, outside any deadline."""
  from math_verify import parse, verify  # noqa: PLC0415 - heavy, only when needed
  verify(parse('\\boxed{1/2}', parsing_timeout=None),
         parse('\\boxed{0.5}', parsing_timeout=None), timeout_seconds=None)
  return parse, verify


def warm_up() -> None:
  """Import and warm math-verify now (a trainer calls this once before timing rewards)."""
  _math_verify_fns()


def _math_verify(gold: str, pred: str, strict: bool) -> bool:
  parse, verify = _math_verify_fns()
  gold_parsed = parse('\\boxed{' + gold + '}', parsing_timeout=None)
  pred_parsed = parse('\\boxed{' + pred + '}', parsing_timeout=None)
  if not gold_parsed or not pred_parsed:
    return False
  if not (_tame(gold_parsed, strict) and _tame(pred_parsed, strict)):
    return False
  return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


@register('math')
@total
def math_reward(completion, answer, *, time_budget_s: float = 1.0) -> float:
  """1.0 when the completion's final answer equals the gold answer mathematically."""
  text, gold_text = qa_metrics.as_text(completion), qa_metrics.as_text(answer)
  if text is None or gold_text is None:
    return 0.0
  pred, gold = extract_math_answer(text), gold_math_answer(gold_text)
  if not pred or not gold:
    return 0.0
  verdict = _numeric_verdict(gold, pred)
  if verdict is not None:
    return verdict
  if _too_long(pred) or _too_long(gold):
    return 0.0
  _math_verify_fns()
  if threading.current_thread() is not threading.main_thread():
    return float(_math_verify(gold, pred, strict=True))
  return float(_with_deadline(lambda: _math_verify(gold, pred, strict=False), time_budget_s))


# ----------------------------------------------------------------------------- format


def _one(text: str, tag: str) -> int:
  """Index of `tag` when it occurs exactly once in text, else -1."""
  i = text.find(tag)
  return i if i >= 0 and text.find(tag, i + 1) < 0 else -1


@register('format')
@total
def format_reward(completion, answer=None) -> float:
  """1.0 for '<think>...</think> <answer>...</answer>' and nothing else (R1 template)."""
  del answer
  text = qa_metrics.as_text(completion)
  if text is None:
    return 0.0
  s = text.strip()
  idx = [_one(s, t) for t in ('<think>', '</think>', '<answer>', '</answer>')]
  if min(idx) < 0 or idx[0] != 0 or idx[3] != len(s) - len('</answer>'):
    return 0.0
  ordered = idx[0] < idx[1] < idx[2] < idx[3]
  return float(ordered and not s[idx[1] + len('</think>'):idx[2]].strip())


@register('think_format')
@total
def think_format_reward(completion, answer=None) -> float:
  """TRL think_format_reward: starts with <think>, one <think> only, </think> closes it."""
  del answer
  text = qa_metrics.as_text(completion)
  if text is None or not text.startswith('<think>'):
    return 0.0
  rest = text[len('<think>'):]
  return float('<think>' not in rest and '</think>' in rest)


def make_regex_format_reward(pattern: str, flags: int = re.DOTALL) -> Callable[..., float]:
  """A total reward that is 1.0 when `pattern` fully matches the stripped completion."""
  compiled = re.compile(pattern, flags)

  @total
  def regex_format_reward(completion, answer=None) -> float:
    text = qa_metrics.as_text(completion)
    return float(text is not None and compiled.fullmatch(text.strip()) is not None)
  return regex_format_reward


# ----------------------------------------------------------------------------- QA


# EM / F1 / substring accuracy / retrieval recall are the shared ones in `qa_metrics` (the
# retrieval eval and the QA papers score with the same functions); registered here by name.
normalize_answer = qa_metrics.normalize_answer
for _name, _reward in qa_metrics.QA_REWARDS.items():
  register(_name)(_reward)


@register('substring_recall')
@total
def substring_recall_reward(completion, answer) -> float:
  """1.0 when a normalised gold alias occurs, on word boundaries, in the normalised
  prediction (Search-R1's "cover" match; unlike `substring_accuracy`, '1' is not in '10')."""
  pred = qa_metrics.extract_answer(completion)
  if pred is None:
    return 0.0
  norm = f' {normalize_answer(pred)} '
  return float(any(f' {g} ' in norm for g in qa_metrics.gold_aliases(answer)))
