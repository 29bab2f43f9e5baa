"""The synthetic generator-judge task and the family experiment end to end."""
import json
import pathlib
import subprocess
import sys

import ml_collections
import pytest

from jaxpapers.papers.selfpref import arith

REPO = pathlib.Path(__file__).resolve().parents[3]


def test_train_and_test_problems_are_disjoint():
  train = {p['question'] for p in arith.problems(2000, 0, 'train')}
  test = {p['question'] for p in arith.problems(500, 0, 'test')}
  assert not train & test
  assert all(arith.is_test(q, 0.2) for q in test)
  assert len({p['question'] for p in arith.problems(150, 0, 'test', terms=3, digits=1)}) == 150
  with pytest.raises(ValueError, match='distinct test problems'):
    arith.problems(180, 0, 'test', terms=3, digits=1)
  assert all(eval(p['question']) == int(p['answer'])     # noqa: S307 - digits and '+' only
             for p in arith.problems(50, 1, 'test', terms=4, digits=3))


def test_scratchpad_and_verdicts():
  assert arith.scratchpad('12+34+56') == '12+34=46;46+56=102'
  assert arith.gold_verdict(True, False) == 'A'
  assert arith.gold_verdict(False, True) == 'B'
  assert arith.gold_verdict(True, True) == arith.gold_verdict(False, False) == 'T'
  assert arith.parse_verdict('12+34=46;46+56=102|A!|B=>B') == 'B'
  assert arith.cot_completion('12+34+56', '102', '92') == '12+34=46;46+56=102|A102=|B92!>A'
  assert arith.cot_completion('1+2+3', '5', '7') == '1+2=3;3+3=6|A5!|B7!>T'
  assert arith.parse_verdict('T') == 'T'
  assert arith.cot_sum('1+2=3;3+3=6|A5!|B6=>B') == '6'
  assert arith.cot_sum('garbage') is None
  assert arith.parse_verdict('12+34=46;46') is None
  assert arith.reward('12+34=46;46+56=102>A', 'A') == 1.0
  assert arith.reward('B', 'A') == 0.0
  assert arith.reward('102', '102') == 1.0 and arith.reward('103', '102') == 0.0


def test_judge_examples_carry_the_right_verdict_and_loss_on_completion_only():
  c = ml_collections.ConfigDict(dict(terms=3, digits=2, test_fraction=0.2,
                                     mix=(0.2, 0.4, 0.4), sft_seq_len=64))
  ps = arith.prompt_set(c, 300, 0, 'train')
  tok = arith.TOKENIZER
  kinds = set()
  for ids, answer, ex in zip(ps.prompt_ids, ps.answers, ps.sft):
    text = tok.decode(ids)
    q = text.split('=')[0]
    right = str(eval(q))                                     # noqa: S307
    if '|' not in text:
      kinds.add('answer')
      assert answer == right
      continue
    a, b = text.split('|A:')[1].split('|B:')
    b = b.rstrip('|?:')
    assert answer == arith.gold_verdict(a == right, b == right)
    kinds.add('cot' if text.endswith(':') else 'direct')
    trained = [t for t, m in zip(ex['tokens'][1:], ex['loss_mask'][1:]) if m]
    completion = tok.decode(trained)
    marks = f"|A{a}{'=' if a == right else '!'}|B{b}{'=' if b == right else '!'}"
    assert completion == (f'{arith.scratchpad(q)}{marks}>{answer}' if text.endswith(':')
                          else answer)
  assert kinds == {'answer', 'direct', 'cot'}


def test_cot_error_stats_compare_the_worked_total_with_both_answers():
  from jaxpapers.papers.selfpref import family
  row = {'assistent_1_is_correct': False, 'assistent_2_is_correct': True,
         'assistent_1_answer': '7', 'assistent_2_answer': '6',
         'game_1_output': '1+2=3;3+3=7|A7=|B6!>A', 'game_2_output': '1+2=3;3+3=6|A6=|B7!>A'}
  easy = {**row, 'assistent_1_is_correct': True, 'game_1_output': 'x'}
  stats = family.cot_error_stats([row, easy])
  assert stats == {'cot_repeats_own_error': 0.5, 'cot_finds_right_total': 0.5}
  assert family.cot_error_stats([easy])['cot_repeats_own_error'] is None


def test_family_test_config_runs_end_to_end(tmp_path):
  out = tmp_path / 'family'
  subprocess.run([sys.executable, '-m', 'jaxpapers.launch',
                  '--config=configs/selfpref_family.py:test', f'--workdir={out}'],
                 cwd=REPO, check=True, capture_output=True, timeout=900)
  seed = json.loads((out / 'seed_0' / 'results.json').read_text())
  assert set(seed['members']) == {f'{m}/m{k}' for m in ('direct', 'cot') for k in (0, 1)}
  for k in (0, 1):
    assert (out / 'seed_0' / f'member_{k}' / 'checkpoints').is_dir()
  rows = (out / 'seed_0' / 'judgments' / 'cot' / 'm1__m0.jsonl').read_text().splitlines()
  assert len(rows) == 16 and 'game_2_output' in json.loads(rows[0])
  assert (out / 'seed_0' / 'selfpref_family.png').exists()
  summary = json.loads((out / 'results.json').read_text())
  assert 'direct.m1.generator_accuracy' in summary['summary']
