"""LaMP's metric rules on hand cases; the rating parser is total; bootstrap intervals."""
import numpy as np
import pytest

from jaxpapers.core import stats
from jaxpapers.papers.personaagent import metrics


@pytest.mark.parametrize('text, mode, expected', [
    ('4', 'lamp', 4.0), (' 3.5\n', 'lamp', 3.5), ('7', 'lamp', 7.0), ('Rating: 4', 'lamp', None),
    ('Rating: 4', 'lenient', 4.0), ('', 'lamp', None), ('nan', 'lamp', None),
    ('inf', 'lamp', None), ('1e999', 'lamp', None), (None, 'lamp', None), (b'\xff', 'lamp', None),
    ('four', 'lenient', None), ('-2', 'lenient', -2.0), (3, 'lamp', 3.0),
])
def test_parse_rating_is_total(text, mode, expected):
  assert metrics.parse_rating(text, mode) == expected


def test_parse_rating_survives_objects_whose_str_raises():
  class Bad:
    def __str__(self):
      raise RuntimeError('boom')
  assert metrics.parse_rating(Bad()) is None


def test_unparsable_rating_counts_as_farthest_of_1_or_5():
  p, y, failed = metrics.rating_values(['x', 'x', 'x', '2', '9'], ['1', '2', '3', '5', '4'])
  np.testing.assert_array_equal(p, [5, 5, 5, 2, 9])       # gold 3 is a tie: LaMP picks 5
  np.testing.assert_array_equal(failed, [1, 1, 1, 0, 0])
  p, _, failed = metrics.rating_values(['9', '0'], ['4', '2'], out_of_range='farthest')
  np.testing.assert_array_equal(p, [1, 5])
  assert failed.all()


def test_rating_mae_rmse_by_hand():
  r = metrics.evaluate_rating(['4', 'garbage', '2.5'], ['5', '4', '2'], bootstrap=0)
  err = np.array([1, 3, 0.5])      # garbage with gold 4 -> 1
  assert r['mae'] == pytest.approx(err.mean())
  assert r['rmse'] == pytest.approx(np.sqrt((err ** 2).mean()))
  assert r['parse_failures'] == 1 and r['n'] == 3 and r['mae_ci'] is None


def test_tagging_outside_label_list_is_wrong_and_macro_f1_by_hand():
  labels = ('a', 'b', 'c')
  r = metrics.evaluate_tagging(['a', ' b ', 'zzz', 'a'], ['a', 'b', 'b', 'b'], labels,
                               bootstrap=0)
  assert r['accuracy'] == pytest.approx(0.5) and r['invalid'] == 1
  f1_a = 2 * 1 / (2 * 1 + 1 + 0)   # tp 1, fp 1
  f1_b = 2 * 1 / (2 * 1 + 0 + 2)   # tp 1, fn 2
  assert r['f1'] == pytest.approx((f1_a + f1_b + 0.0) / 3)   # 'c': no gold, no pred -> 0
  with pytest.raises(ValueError, match='not in the label list'):
    metrics.evaluate_tagging(['a'], ['d'], labels)


def test_bootstrap_user_weights_keep_users_whole_and_interval_covers_point():
  groups = np.array([0, 0, 1, 2, 2, 2])
  w = stats.bootstrap_weights(groups, 200, seed=0)
  assert w.shape == (200, 6)
  np.testing.assert_array_equal(w[:, 0], w[:, 1])
  np.testing.assert_array_equal(w[:, 3], w[:, 5])
  np.testing.assert_allclose(w[:, [0, 2, 3]].sum(axis=1), 3)
  rng = np.random.default_rng(0)
  golds = [str(x) for x in rng.integers(1, 6, 300)]
  preds = [str(x) for x in rng.integers(1, 6, 300)]
  r = metrics.evaluate_rating(preds, golds, groups=np.arange(300) // 5, bootstrap=300)
  assert r['mae_ci'][0] < r['mae'] < r['mae_ci'][1]


def test_align_requires_matching_ids():
  assert metrics.align({'1': 'a', '2': 'b'}, {'2': 'y', '1': 'x'}) == (['x', 'y'], ['a', 'b'],
                                                                       ['1', '2'])
  with pytest.raises(ValueError, match='do not match'):
    metrics.align({'1': 'a'}, {'2': 'b'})
