"""Verdict combination and self-preference metrics, on rows in the llm-sp artifact format.

A row (one question, judged by the model that wrote `assistent_1_answer`):
  assistent_1_answer / assistent_2_answer   the judge's own answer / the other model's
  assistent_{1,2}_is_correct                ground truth
  game_1_spb_score, game_2_spb_score        [p(A), p(T), p(B)] (one-hot for parsed CoT)
  game_1_output, game_2_output              the verdict text
Game 1 shows the judge's own answer as A; game 2 swaps positions (own answer = B), and its
verdict is recorded in game-2 positions (checked on the published files: when only the
judge's answer is right, game 1 says A and game 2 says B).

Definitions (ours, stated since the paper's aggregation is ambiguous):
  J*       both games agree -> that; one tie -> the non-tie; self vs other -> tie
  SPR      P(J* = self) over all items
  D_diff   items where exactly one answer is correct
  accuracy P(J* = the correct answer) on D_diff (ties count as wrong)
  LSPR     P(self correct | J* = self) on D_diff
  HSPP     P(J* = self | self wrong, other correct) on D_diff
  HOPP     P(J* = other | other wrong, self correct) on D_diff: the same error with the
           roles swapped, the baseline HSPP is read against (HSPP above HOPP = a preference
           for its own wrong answers beyond plain judging error)
Several files (other models) are pooled item by item. An empty denominator makes a metric
None (undefined), never a division error. Intervals: percentile bootstrap over items.
"""
from __future__ import annotations

import json
import pathlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from jaxpapers.core import stats
from jaxpapers.papers.selfpref import prompts

SELF, OTHER, TIE = 'self', 'other', 'tie'
METRICS = ('spr', 'accuracy', 'lspr', 'hspp', 'hopp')


def game_choice(verdict: str | None, game: int) -> str:
  """A position verdict of game 1 or 2 as self / other / tie (None = unparseable = tie)."""
  if verdict not in ('A', 'B'):
    return TIE
  own_position = 'A' if game == 1 else 'B'
  return SELF if verdict == own_position else OTHER


def combine(first: str, second: str) -> str:
  """J* from the two games' self/other/tie choices."""
  if first == second:
    return first
  if TIE in (first, second):
    return first if second == TIE else second
  return TIE


def row_verdict(row: Mapping[str, Any], game: int) -> str | None:
  """A game's verdict: its output (a bare verdict letter, or a CoT text parsed), else the
  argmax of its [A, T, B] scores; None when neither gives one (an unparsed CoT)."""
  output = (row.get(f'game_{game}_output') or '').strip()
  verdict = output if output in prompts.VERDICTS else prompts.parse_verdict(output)
  if verdict is not None:
    return verdict
  score = row.get(f'game_{game}_spb_score')
  if score is not None and len(score) == 3 and np.isfinite(score).all() and sum(score) > 0:
    return prompts.VERDICTS[int(np.argmax(score))]
  return None


def judged(row: Mapping[str, Any]) -> str:
  return combine(game_choice(row_verdict(row, 1), 1), game_choice(row_verdict(row, 2), 2))


def _arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
  j = np.array([judged(r) for r in rows], dtype=object)
  return {'self_pick': j == SELF, 'other_pick': j == OTHER,
          'self_ok': np.array([bool(r['assistent_1_is_correct']) for r in rows]),
          'other_ok': np.array([bool(r['assistent_2_is_correct']) for r in rows])}


def _ratio(num: np.ndarray, den: np.ndarray) -> float | None:
  n = int(den.sum())
  return float((num & den).sum() / n) if n else None


def _metrics(a: Mapping[str, np.ndarray]) -> dict[str, float | None]:
  diff = a['self_ok'] != a['other_ok']
  right = (a['self_pick'] & a['self_ok']) | (a['other_pick'] & a['other_ok'])
  return {'spr': _ratio(a['self_pick'], np.ones_like(diff)),
          'accuracy': _ratio(right, diff),
          'lspr': _ratio(a['self_ok'], diff & a['self_pick']),
          'hspp': _ratio(a['self_pick'], diff & ~a['self_ok']),
          'hopp': _ratio(a['other_pick'], diff & a['self_ok'])}


def summarize(rows: Sequence[Mapping[str, Any]], bootstrap: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict[str, Any]:
  """Each metric with its 95% bootstrap interval ([lo, hi], None where undefined), the
  D_diff sizes, the tie rate and the number of games without a verdict (`unparsed`)."""
  if not rows:
    return {**{m: None for m in METRICS}, **{f'{m}_ci': None for m in METRICS}, 'n': 0,
            'n_diff': 0, 'n_self_wrong': 0, 'tie_rate': None, 'unparsed': 0}
  a = _arrays(rows)
  out: dict[str, Any] = dict(_metrics(a))
  rng = np.random.default_rng(seed)
  draws = {m: [] for m in METRICS}
  for _ in range(bootstrap):
    idx = rng.integers(0, len(rows), len(rows))
    for m, v in _metrics({k: x[idx] for k, x in a.items()}).items():
      if v is not None:
        draws[m].append(v)
  for m in METRICS:
    out[f'{m}_ci'] = (stats.percentile_interval(draws[m], level)
                      if out[m] is not None and draws[m] else None)
  diff = a['self_ok'] != a['other_ok']
  out.update(n=len(rows), n_diff=int(diff.sum()), n_self_wrong=int((diff & ~a['self_ok']).sum()),
             tie_rate=float(np.mean(~a['self_pick'] & ~a['other_pick'])),
             unparsed=sum(row_verdict(r, g) is None for r in rows for g in (1, 2)))
  return out


def read_rows(paths: Iterable[str | pathlib.Path]) -> list[dict]:
  """Rows from jsonl files in the artifact format (ours or the published llm-sp files)."""
  rows = []
  for path in paths:
    with open(path) as f:
      for n, line in enumerate(f, 1):
        if not line.strip():
          continue
        row = json.loads(line)
        missing = [k for k in ('assistent_1_is_correct', 'assistent_2_is_correct')
                   if k not in row]
        if missing:
          raise ValueError(f'{path}:{n}: row lacks {missing}')
        rows.append(row)
  return rows


def generator_accuracy(rows: Sequence[Mapping[str, Any]]) -> float | None:
  """The judge's accuracy as a generator on these items (its own answers)."""
  return float(np.mean([bool(r['assistent_1_is_correct']) for r in rows])) if rows else None
