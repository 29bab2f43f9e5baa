"""QA and retrieval metrics: SQuAD normalisation, EM/F1, substring accuracy, recall; totality."""
import pytest

from jaxpapers.core import qa_metrics as qm

GARBAGE = [None, 3, 2.5, [], {}, [None], ['', 'the'], object(), b'bytes', [[1, 2]], float('nan')]


def test_normalize_answer_squad_rules():
  assert qm.normalize_answer('  The  Quick, brown FOX!! ') == 'quick brown fox'
  assert qm.normalize_answer('an apple a day') == 'apple day'
  assert qm.normalize_answer(None) == ''


def test_exact_match_and_f1_max_over_aliases():
  assert qm.exact_match('the Eiffel Tower.', ['Eiffel Tower', 'tour eiffel']) == 1.0
  assert qm.exact_match('Eiffel', 'Eiffel Tower') == 0.0
  assert qm.f1('Eiffel', 'Eiffel Tower') == pytest.approx(2 / 3)
  assert qm.f1('the tower in Paris', ['Eiffel Tower', 'Paris']) == pytest.approx(0.5)  # max(0.4, 0.5)


def test_substring_accuracy_plain_normalised_substring():
  assert qm.substring_accuracy('I think it is Paris, France.', ['paris']) == 1.0
  assert qm.substring_accuracy('1968 and more', '1968') == 1.0
  assert qm.substring_accuracy('it was 10', '1') == 1.0      # plain substring, as InstructRAG
  assert qm.substring_accuracy('nothing', 'Paris') == 0.0
  assert qm.substring_accuracy('anything', 'the') == 0.0      # gold normalises to ''


def test_retrieval_recall_reads_only_information_blocks():
  rollout = ('<search>q</search>\n\n<information>Doc 1(Title: T) Tulsa is a city.'
             '</information>\n\n<answer>Paris</answer>')
  assert qm.retrieval_recall(rollout, ['Tulsa']) == 1.0
  assert qm.retrieval_recall(rollout, ['Paris']) == 0.0        # only in the answer
  assert qm.retrieval_recall('<information>x</information>', 'Tulsa') == 0.0
  assert qm.retrieval_recall([{'role': 'assistant', 'content': rollout}], 'tulsa') == 1.0


def test_rewards_use_last_answer_tag():
  text = '<answer>Rome</answer> no wait <answer>Paris</answer>'
  assert qm.QA_REWARDS['exact_match'](text, 'Paris') == 1.0
  assert qm.QA_REWARDS['f1'](text, 'Paris France') == pytest.approx(2 / 3)
  assert qm.QA_REWARDS['substring_accuracy']('The answer is Paris', 'paris') == 1.0


def test_ranking_metrics():
  ranked = ['a', 'b', 'c', 'd']
  assert qm.recall_at_k(ranked, ('c', 'x'), 3) == 0.5
  assert qm.recall_at_k(ranked, ('a', 'c'), 1) == 0.5
  assert qm.all_recall_at_k(ranked, ('a', 'c'), 3) == 1.0
  assert qm.all_recall_at_k(ranked, ('a', 'c'), 2) == 0.0
  assert qm.reciprocal_rank(ranked, {'c'}) == pytest.approx(1 / 3)
  assert qm.reciprocal_rank(ranked, {'z'}) == 0.0
  assert qm.answer_in_texts(['foo', 'Tulsa, Oklahoma'], 'tulsa') == 1.0


@pytest.mark.parametrize('bad', GARBAGE)
def test_every_metric_is_total_on_garbage(bad):
  for fn in (qm.exact_match, qm.f1, qm.substring_accuracy, qm.retrieval_recall,
             qm.answer_in_texts, *qm.QA_REWARDS.values()):
    assert fn(bad, bad) == 0.0
    assert fn(bad, 'Paris') == 0.0
    assert fn('Paris', bad) == 0.0
  for fn in (qm.recall_at_k, qm.all_recall_at_k):
    assert fn(bad, bad, bad) == 0.0
    assert fn(['a'], ['a'], bad) == 0.0 or isinstance(bad, int)
  assert qm.reciprocal_rank(bad, ['a']) == 0.0
