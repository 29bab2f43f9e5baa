"""QA answer metrics, retrieval metrics and rewards shared by DeSA, InstructRAG and PersonaAgent.

Every public function is total: garbage in (None, numbers, nested junk, empty strings) gives
0.0, never an exception. Gold answers are a string or a list/tuple of aliases; non-string
aliases and aliases that normalise to '' are dropped (so 'the' as a gold never matches).

Answers:
  normalize_answer   SQuAD v1.1 (lower, strip punctuation, drop a/an/the, squeeze spaces).
  exact_match, f1    SQuAD EM / token F1, max over aliases.
  substring_accuracy InstructRAG's accuracy: a normalised gold is a substring of the
                     normalised generation (plain substring, as Search-R1's `subem_check` and
                     Self-RAG/InstructRAG do; '1' is found in '10').
  retrieval_recall   DeSA stage-1 reward: a normalised gold is a substring of the normalised
                     concatenated <information>...</information> blocks of a rollout.
Rankings (ids best first, gold a set of ids):
  recall_at_k        |gold in top k| / |gold| (HotpotQA supporting-paragraph recall).
  all_recall_at_k    1 when every gold id is in the top k.
  reciprocal_rank    1 / rank of the first gold id (0 when none is ranked).
Rewards `fn(completion, answer) -> float` (completion: text or TRL chat messages; the
prediction is the last <answer>...</answer>, else the whole text) are in `QA_REWARDS`.
"""
from __future__ import annotations

import collections
import functools
import re
import string
from typing import Any, Callable, Iterable

_PUNCT = str.maketrans('', '', string.punctuation)
_ARTICLES = re.compile(r'\b(a|an|the)\b')
_ANSWER = re.compile(r'<answer>(.*?)</answer>', re.DOTALL)
_INFORMATION = re.compile(r'<information>(.*?)</information>', re.DOTALL)


def total(fn: Callable[..., float]) -> Callable[..., float]:
  """Any exception becomes 0.0 (a metric or reward must never raise)."""
  @functools.wraps(fn)
  def wrapped(*args, **kw) -> float:
    try:
      return float(fn(*args, **kw))
    except Exception:  # noqa: BLE001 - total by contract
      return 0.0
  return wrapped


def normalize_answer(s: Any) -> str:
  """SQuAD v1.1 normalisation; '' for a non-string."""
  if not isinstance(s, str):
    return ''
  s = _ARTICLES.sub(' ', s.lower().translate(_PUNCT))
  return ' '.join(s.split())


def gold_aliases(answer: Any) -> list[str]:
  """Normalised, non-empty gold aliases of a str or list/tuple of str."""
  raw = [answer] if isinstance(answer, str) else (
      list(answer) if isinstance(answer, (list, tuple)) else [])
  return [n for n in (normalize_answer(a) for a in raw if isinstance(a, str)) if n]


def as_text(completion: Any) -> str | None:
  """Text of a completion: a str, or the last message content of TRL chat format."""
  if isinstance(completion, str):
    return completion
  if isinstance(completion, (list, tuple)) and completion:
    last = completion[-1]
    if isinstance(last, dict) and isinstance(last.get('content'), str):
      return last['content']
  return None


def extract_answer(completion: Any) -> str | None:
  """The last <answer>...</answer> of a completion, else its whole text (None: no text)."""
  text = as_text(completion)
  if text is None:
    return None
  found = _ANSWER.findall(text)
  return found[-1] if found else text


@total
def exact_match(prediction: Any, answer: Any) -> float:
  pred = normalize_answer(prediction)
  return float(bool(pred) and pred in gold_aliases(answer))


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
  common = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
  if common == 0:
    return 0.0
  precision, recall = common / len(pred_tokens), common / len(gold_tokens)
  return 2 * precision * recall / (precision + recall)


@total
def f1(prediction: Any, answer: Any) -> float:
  tokens = normalize_answer(prediction).split()
  if not tokens:
    return 0.0
  return max((_f1(tokens, g.split()) for g in gold_aliases(answer)), default=0.0)


@total
def substring_accuracy(prediction: Any, answer: Any) -> float:
  pred = normalize_answer(prediction)
  return float(any(g in pred for g in gold_aliases(answer)))


def information_text(completion: Any) -> str:
  """The <information> blocks of a rollout joined by newlines ('' when none)."""
  text = as_text(completion)
  return '\n'.join(_INFORMATION.findall(text)) if text else ''


@total
def retrieval_recall(completion: Any, answer: Any) -> float:
  return substring_accuracy(information_text(completion), answer)


@total
def answer_in_texts(texts: Any, answer: Any) -> float:
  """1 when a gold alias is a normalised substring of any of `texts` (answer recall)."""
  if isinstance(texts, str) or not isinstance(texts, Iterable):
    return 0.0
  return float(any(substring_accuracy(t, answer) for t in texts))


# ----------------------------------------------------------------------------- rankings


def _ids(values: Any) -> list:
  if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
    return []
  return [v for v in values if isinstance(v, (str, int))]


@total
def recall_at_k(ranked: Any, gold: Any, k: Any) -> float:
  gold_set = set(_ids(gold))
  if not gold_set or isinstance(k, bool) or not isinstance(k, int) or k < 1:
    return 0.0
  return len(gold_set & set(_ids(ranked)[:k])) / len(gold_set)


@total
def all_recall_at_k(ranked: Any, gold: Any, k: Any) -> float:
  return float(recall_at_k(ranked, gold, k) == 1.0)


@total
def reciprocal_rank(ranked: Any, gold: Any) -> float:
  gold_set = set(_ids(gold))
  for rank, pid in enumerate(_ids(ranked), start=1):
    if pid in gold_set:
      return 1.0 / rank
  return 0.0


# ----------------------------------------------------------------------------- rewards


@total
def exact_match_reward(completion: Any, answer: Any) -> float:
  return exact_match(extract_answer(completion), answer)


@total
def f1_reward(completion: Any, answer: Any) -> float:
  return f1(extract_answer(completion), answer)


@total
def substring_accuracy_reward(completion: Any, answer: Any) -> float:
  return substring_accuracy(extract_answer(completion), answer)


QA_REWARDS: dict[str, Callable[[Any, Any], float]] = {
    'exact_match': exact_match_reward,                 # DeSA stage 2, Search-R1
    'f1': f1_reward,
    'substring_accuracy': substring_accuracy_reward,   # InstructRAG accuracy
    'retrieval_recall': retrieval_recall,              # DeSA stage 1
}
