"""core.stats: bootstrap weights and percentile intervals."""
import numpy as np
import pytest

from jaxpapers.core import stats


def test_bootstrap_weights_resample_groups_whole():
  groups = ['u1', 'u1', 'u2', 'u3', 'u3']
  w = stats.bootstrap_weights(groups, 500, seed=1)
  assert w.shape == (500, 5)
  np.testing.assert_array_equal(w[:, 0], w[:, 1])
  np.testing.assert_array_equal(w[:, 3], w[:, 4])
  np.testing.assert_allclose(w[:, [0, 2, 3]].sum(axis=1), 3)    # 3 groups drawn per sample
  assert np.array_equal(w, stats.bootstrap_weights(groups, 500, seed=1))
  # one row per group: the weighted mean is the plain bootstrap mean, centred on the mean
  x = np.random.default_rng(0).normal(size=400)
  means = stats.bootstrap_weights(range(400), 2000, seed=0) @ x / 400
  assert means.mean() == pytest.approx(x.mean(), abs=0.01)
  assert means.std() == pytest.approx(x.std() / np.sqrt(400), rel=0.1)


def test_percentile_interval():
  draws = np.arange(1001, dtype=float)
  assert stats.percentile_interval(draws) == pytest.approx([25.0, 975.0])
  assert stats.percentile_interval(draws, level=0.5) == pytest.approx([250.0, 750.0])
  assert stats.percentile_interval([2.0, 2.0]) == [2.0, 2.0]
