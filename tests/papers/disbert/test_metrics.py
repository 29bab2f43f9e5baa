"""Metrics vs scipy/numpy; task losses and predictions of the head vs numpy."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.papers.disbert import metrics
from jaxpapers.papers.disbert import steps

scipy_stats = pytest.importorskip('scipy.stats')


def test_pearson_spearman_match_scipy_with_ties():
  r = np.random.default_rng(0)
  x = r.integers(0, 6, 200).astype(float)           # many ties, like STS gold scores
  y = x + r.normal(size=200)
  np.testing.assert_allclose(metrics.pearson(x, y), scipy_stats.pearsonr(x, y)[0], rtol=1e-10)
  np.testing.assert_allclose(metrics.spearman(x, y), scipy_stats.spearmanr(x, y)[0], rtol=1e-10)
  np.testing.assert_allclose(metrics.rankdata(x), scipy_stats.rankdata(x))


def test_accuracy_and_f1_match_hand_counts():
  pred = np.array([1, 1, 0, 0, 1, 0])
  label = np.array([1, 0, 0, 1, 1, 0])
  assert metrics.accuracy(pred, label) == pytest.approx(4 / 6)
  tp, fp, fn = 2, 1, 1
  assert metrics.f1(pred, label) == pytest.approx(2 * tp / (2 * tp + fp + fn))
  assert metrics.f1(np.zeros(3), np.zeros(3)) == 0.0


def test_regression_bce_and_mse_losses_match_numpy():
  z, y = np.array([[0.3], [-1.2], [2.0]]), np.array([0.2, 0.9, 1.0])
  p = 1 / (1 + np.exp(-z[:, 0]))
  bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
  cfg = steps.LossConfig(kind='regression', regression_loss='bce')
  np.testing.assert_allclose(steps.task_loss(jnp.asarray(z), jnp.asarray(y), cfg), bce, rtol=1e-5)
  cfg = steps.LossConfig(kind='regression', regression_loss='mse')
  np.testing.assert_allclose(steps.task_loss(jnp.asarray(z), jnp.asarray(y), cfg),
                             ((p - y) ** 2).mean(), rtol=1e-5)
  np.testing.assert_allclose(steps.predictions(jnp.asarray(z), 'regression'), p, rtol=1e-6)


def test_classification_cross_entropy_matches_numpy():
  z, y = np.array([[2.0, -1.0], [0.1, 0.4]]), np.array([0, 1])
  logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
  cfg = steps.LossConfig(kind='classification')
  np.testing.assert_allclose(steps.task_loss(jnp.asarray(z), jnp.asarray(y, np.float32), cfg),
                             -logp[[0, 1], y].mean(), rtol=1e-5)
