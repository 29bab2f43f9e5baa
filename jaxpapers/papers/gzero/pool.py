"""The Generator's DPO pool: scored (q, h) records -> δ band -> quality checks -> pairs.

As the reference's phase2.py: records whose answers are empty are dropped before scoring
statistics; the δ band keeps lo <= δ <= hi with lo, hi the pct_low / pct_high percentiles of
the scored records (paper-main [0, 50]: the lower half; the upper tail is where the hint
gives the answer away); then on chosen (= the answer given the hint): length within
[min_chars, max_chars], chosen/rejected length ratio <= ratio_max, not repetitive (zlib
ratio below zlib_threshold, texts of zlib_min_chars or more), not echoing the question (a
shared prefix of prefix_overlap characters) and not opening with a role marker.
A pair is {prompt = the question alone, chosen, rejected = the unassisted answer}.
"""
from __future__ import annotations

import dataclasses
import zlib

import numpy as np


@dataclasses.dataclass(frozen=True)
class FilterConfig:
  pct_low: float = 0.0
  pct_high: float = 50.0
  chosen_min_chars: int = 100
  chosen_max_chars: int = 10_000
  ratio_max: float = 2.5
  zlib_threshold: float = 0.15
  zlib_min_chars: int = 500
  prefix_overlap: int = 30
  role_markers: tuple[str, ...] = ('Assistant:', 'AI:', 'Bot:', 'User:', 'Human:')

  def __post_init__(self):
    if not 0.0 <= self.pct_low <= self.pct_high <= 100.0:
      raise ValueError(f'need 0 <= pct_low <= pct_high <= 100, got [{self.pct_low}, '
                       f'{self.pct_high}]')


def is_repetitive(text: str, cfg: FilterConfig) -> bool:
  if len(text) < cfg.zlib_min_chars:
    return False
  raw = text.encode('utf-8')
  return len(zlib.compress(raw, level=1)) / max(1, len(raw)) < cfg.zlib_threshold


def common_prefix_len(a: str, b: str) -> int:
  a, b = a.lstrip(), b.lstrip()
  n = 0
  while n < min(len(a), len(b)) and a[n] == b[n]:
    n += 1
  return n


def quality_reason(record: dict, cfg: FilterConfig) -> str | None:
  """Why a scored record's pair is dropped (None = kept)."""
  chosen, rejected = record['a_assisted'], record['a_hard']
  if len(chosen) > cfg.chosen_max_chars:
    return 'too_long'
  if len(chosen) < cfg.chosen_min_chars:
    return 'too_short'
  if len(chosen) / max(1, len(rejected)) > cfg.ratio_max:
    return 'ratio'
  if is_repetitive(chosen, cfg):
    return 'repetition'
  if common_prefix_len(chosen, record['question']) >= cfg.prefix_overlap:
    return 'prompt_echo'
  if any(chosen.lstrip().startswith(m) for m in cfg.role_markers):
    return 'role_marker'
  return None


def filter_pool(records: list[dict], cfg: FilterConfig = FilterConfig()
                ) -> tuple[list[dict], dict[str, float]]:
  """Records kept for DPO and counts of what each stage dropped.

  Args:
    records: {'question', 'hint', 'a_hard', 'a_assisted', 'delta', ...} per scored pair.
  """
  scored = [r for r in records if r['a_hard'].strip() and r['a_assisted'].strip()]
  counts: dict[str, float] = {'records': len(records), 'empty_answer': len(records) - len(scored)}
  if not scored:
    return [], {**counts, 'kept': 0}
  deltas = np.array([r['delta'] for r in scored], np.float64)
  lo, hi = np.percentile(deltas, cfg.pct_low), np.percentile(deltas, cfg.pct_high)
  band = [r for r in scored if lo <= r['delta'] <= hi]
  counts.update(delta_lo=float(lo), delta_hi=float(hi), delta_band=len(scored) - len(band))
  kept = []
  for r in band:
    reason = quality_reason(r, cfg)
    if reason is None:
      kept.append(r)
    else:
      counts[reason] = counts.get(reason, 0) + 1
  counts['kept'] = len(kept)
  return kept, counts


def dpo_pairs(records: list[dict]) -> list[dict]:
  return [{'prompt': r['question'], 'chosen': r['a_assisted'], 'rejected': r['a_hard'],
           'delta': r['delta']} for r in records]
