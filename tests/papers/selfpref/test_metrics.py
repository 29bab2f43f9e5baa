"""Verdict combination (J*), the metric definitions, and the published artifact format."""
import json

import pytest

from jaxpapers.papers.selfpref import metrics
from jaxpapers.papers.selfpref import prompts

S, O, T = metrics.SELF, metrics.OTHER, metrics.TIE


@pytest.mark.parametrize('first,second,want', [
    (S, S, S), (O, O, O), (T, T, T),          # agree -> that
    (S, T, S), (T, S, S), (O, T, O), (T, O, O),  # one tie -> the non-tie
    (S, O, T), (O, S, T)])                    # contradiction -> tie
def test_combine_all_nine_pairs(first, second, want):
  assert metrics.combine(first, second) == want


@pytest.mark.parametrize('verdict,game,want', [
    ('A', 1, S), ('B', 1, O), ('T', 1, T), ('A', 2, O), ('B', 2, S), ('T', 2, T),
    (None, 1, T), (None, 2, T)])
def test_game_two_positions_are_swapped(verdict, game, want):
  assert metrics.game_choice(verdict, game) == want


def _row(self_ok, other_ok, v1, v2):
  one_hot = lambda v: [float(v == x) for x in prompts.VERDICTS]  # noqa: E731
  return {'assistent_1_is_correct': self_ok, 'assistent_2_is_correct': other_ok,
          'game_1_spb_score': one_hot(v1), 'game_2_spb_score': one_hot(v2)}


def test_metrics_on_hand_made_items():
  rows = [
      _row(True, False, 'A', 'B'),    # D_diff, picks self (right): legit
      _row(True, False, 'B', 'A'),    # D_diff, picks other (wrong)
      _row(False, True, 'A', 'B'),    # D_diff, self wrong, picks self: harmful
      _row(False, True, 'B', 'A'),    # D_diff, self wrong, picks other (right)
      _row(False, True, 'A', 'T'),    # D_diff, self wrong, one tie -> self: harmful
      _row(True, True, 'A', 'B'),     # both right, picks self
      _row(False, False, 'A', 'A'),   # both wrong, contradiction -> tie
  ]
  m = metrics.summarize(rows, bootstrap=200)
  assert m['n'] == 7 and m['n_diff'] == 5 and m['n_self_wrong'] == 3
  assert m['spr'] == pytest.approx(4 / 7)
  assert m['accuracy'] == pytest.approx(2 / 5)
  assert m['lspr'] == pytest.approx(1 / 3)          # self picked on D_diff: rows 0, 2, 4
  assert m['hspp'] == pytest.approx(2 / 3)
  assert m['hopp'] == pytest.approx(1 / 2)          # self right, other wrong: rows 0, 1
  assert m['tie_rate'] == pytest.approx(1 / 7)
  assert m['unparsed'] == 0
  lo, hi = m['hspp_ci']
  assert 0 <= lo <= m['hspp'] <= hi <= 1


def test_empty_d_diff_is_undefined_not_an_error():
  rows = [_row(True, True, 'A', 'B'), _row(False, False, 'T', 'T')]
  m = metrics.summarize(rows, bootstrap=50)
  assert m['n_diff'] == 0
  assert m['accuracy'] is None and m['lspr'] is None and m['hspp'] is None
  assert m['accuracy_ci'] is None and m['hspp_ci'] is None
  assert m['spr'] == 0.5
  assert metrics.summarize([])['spr'] is None


def test_no_self_wrong_items_leaves_only_hspp_undefined():
  m = metrics.summarize([_row(True, False, 'A', 'B')], bootstrap=20)
  assert m['hspp'] is None and m['lspr'] == 1.0 and m['accuracy'] == 1.0


def test_reads_published_rows_probabilities_and_parsed_outputs(tmp_path):
  """Published direct rows carry probabilities, CoT rows one-hot scores and the text."""
  direct = {'unique_id': 'x', 'assistent_1_is_correct': True, 'assistent_2_is_correct': False,
            'game_1_spb_score': [0.9, 0.05, 0.05], 'game_2_spb_score': [1e-9, 1e-3, 0.999],
            'game_1_output': 'A', 'game_2_output': 'B'}
  cot = {'unique_id': 'y', 'assistent_1_is_correct': False, 'assistent_2_is_correct': True,
         'game_1_output': 'A is wrong.\n\nMy final verdict is $$B$$.',
         'game_2_output': 'My final verdict is $$A$$'}
  path = tmp_path / 'judge_other_eval.jsonl'
  path.write_text(json.dumps(direct) + '\n' + json.dumps(cot) + '\n')
  rows = metrics.read_rows([path])
  assert [metrics.judged(r) for r in rows] == [S, O]
  m = metrics.summarize(rows, bootstrap=10)
  assert m['accuracy'] == 1.0 and m['hspp'] == 0.0 and m['lspr'] == 1.0
  unparsed = {**cot, 'game_1_output': 'I cannot tell.', 'game_1_spb_score': [0, 0, 0]}
  assert metrics.row_verdict(unparsed, 1) is None
  assert metrics.judged(unparsed) == O                 # the other game decides (one tie)
  assert metrics.summarize([unparsed], bootstrap=5)['unparsed'] == 1
  (tmp_path / 'bad.jsonl').write_text(json.dumps({'unique_id': 'z'}) + '\n')
  with pytest.raises(ValueError, match=r'bad.jsonl:1.*assistent_1_is_correct'):
    metrics.read_rows([tmp_path / 'bad.jsonl'])


@pytest.mark.parametrize('text,want', [
    ('My final verdict is $$A$$.', 'A'),
    ('... my final verdict is $$ T $$', 'T'),
    ('First: final verdict is $$A$$. On reflection, my final verdict is $$B$$', 'B'),
    ('Final verdict is: $$b$$', 'B'),
    ('My final verdict is [[A]]', 'A'),
    ('My final verdict is T.', 'T'),
    ('My final verdict is **B**', 'B'),
    ('My final verdict is Tie', None),
    ('My final verdict is Assistant A', None),
    ('My final verdict is $$C$$', None),
    ('', None),
    (None, None)])
def test_cot_parser(text, want):
  assert prompts.parse_verdict(text) == want


def test_score_groups_files_by_judge_name():
  from jaxpapers.papers.selfpref import score
  groups = score.group_files(['d/qwen-7b_gpt-4o_eval.jsonl', 'd/qwen-7b_gemma_eval.jsonl',
                              'd/qwen-72b_gemma_eval.jsonl'], r'^(.*?)_')
  assert {k: len(v) for k, v in groups.items()} == {'qwen-7b': 2, 'qwen-72b': 1}
  with pytest.raises(ValueError, match='does not match'):
    score.group_files(['d/x.jsonl'], r'^(.*?)_')
