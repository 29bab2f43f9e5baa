"""Environments, LinUCB statistics, and bad input naming the field."""
import importlib.util
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxpapers.papers.fedbandits import costs
from jaxpapers.papers.fedbandits import envs
from jaxpapers.papers.fedbandits import federation
from jaxpapers.papers.fedbandits import linucb
from jaxpapers.papers.fedbandits import movielens

HAS_RECBOLE = importlib.util.find_spec('recbole') is not None


def synthetic_cfg(**kw):
  return ml_collections.ConfigDict(dict(name='synthetic', d=5, num_items=40, num_arms=4,
                                        noise=0.1, **kw))


def test_synthetic_items_on_unit_sphere_and_mean_is_linear(instance):
  env, c = instance.env, instance.config
  np.testing.assert_allclose(np.linalg.norm(np.asarray(env.items), axis=1), 1.0)
  draw = envs.sample_rounds(env, instance.key, 0, c.rounds)  # compiled by the reference test
  assert draw.arms.shape == (c.rounds, c.num_clients, c.env.num_arms)
  assert draw.arms.max() < c.env.num_items and draw.noise.shape == (c.rounds, c.num_clients)
  x = np.asarray(env.items)[draw.arms]
  np.testing.assert_allclose(draw.mean, x @ np.asarray(env.data.theta), atol=1e-12)
  assert 0.05 < draw.noise.std() < 0.2


def test_sherman_morrison_and_logdet_track_exact_values():
  rng = np.random.default_rng(0)
  c = jax.tree.map(lambda a: a[0], linucb.init_clients(1, 4, 0.1, jnp.float64))
  xs = rng.standard_normal((30, 4))
  c = jax.jit(lambda c, xs: jax.lax.scan(
      lambda c, x: (linucb.observe(c, x, 1.0), None), c, xs)[0])(c, jnp.asarray(xs))
  gram = 0.1 * np.eye(4) + xs.T @ xs
  np.testing.assert_allclose(np.asarray(c.gram_inv), np.linalg.inv(gram), atol=1e-10)
  assert float(c.logdet) == pytest.approx(np.linalg.slogdet(gram)[1], abs=1e-10)
  np.testing.assert_allclose(np.asarray(c.pending_gram), xs.T @ xs, atol=1e-12)


def test_logdet_batched_matches_numpy():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((7, 5, 9))
  m = x @ x.transpose(0, 2, 1) + 0.1 * np.eye(5)
  np.testing.assert_allclose(np.asarray(jax.jit(linucb.logdet_spd_batched)(jnp.asarray(m))),
                             np.linalg.slogdet(m)[1], atol=1e-10)
  assert float(linucb.logdet_spd(jnp.asarray(m[0]))) == pytest.approx(np.linalg.slogdet(m[0])[1])


def test_alpha_matches_formula():
  got = float(linucb.alpha(50.0, 25, 0.1, 0.1, 0.1))
  want = 0.1 * math.sqrt(25 * math.log(1 + 50 / 2.5) + 2 * math.log(10)) + math.sqrt(0.1)
  assert got == pytest.approx(want)


@pytest.mark.parametrize('values, match', [
    ([0.5, -0.1], 'costs.true_cost'), ([0.5, np.nan], 'costs.true_cost'),
    ([0.5, np.inf], 'costs.true_cost'), ([], 'costs.true_cost')])
def test_bad_costs_raise_naming_field(values, match):
  with pytest.raises(ValueError, match=match):
    costs.make(values)


def test_bad_reported_cost_raises_naming_field():
  with pytest.raises(ValueError, match='costs.reported_cost'):
    costs.make([0.5, 0.5], [0.5, -1.0])


def test_zero_clients_raises_naming_field():
  with pytest.raises(ValueError, match='num_clients'):
    envs.make(synthetic_cfg(), 0, 0, jnp.float64)


def test_d_mismatch_and_nan_contexts_raise_before_compile():
  env = envs.make(synthetic_cfg(), 2, 0, jnp.float64)
  pop = costs.make([0.1, 0.2], dtype=jnp.float64)
  with pytest.raises(ValueError, match=r'env\.items.*d=6'):
    federation.simulate(federation.Settings(d=6), 'dislinucb', env, pop, jax.random.key(0), 2)
  bad = env.replace(items=env.items.at[3, 1].set(jnp.nan))
  with pytest.raises(ValueError, match=r'env\.items.*non-finite'):
    federation.simulate(federation.Settings(d=5), 'dislinucb', bad, pop, jax.random.key(0), 2)
  with pytest.raises(ValueError, match='costs.true_cost'):
    federation.simulate(federation.Settings(d=5), 'dislinucb', env,
                        costs.make([0.1, 0.2, 0.3]), jax.random.key(0), 2)


def test_movielens_missing_file_names_it_and_install_command(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'ml-100k\.inter.*pip install --no-deps recbole'):
    movielens.find_dir(str(tmp_path))


@pytest.mark.skipif(not HAS_RECBOLE, reason='needs `pip install --no-deps recbole`')
def test_movielens_env_one_positive_arm_per_client():
  cfg = ml_collections.ConfigDict(dict(name='movielens', d=8, num_arms=5, positive_rating=4,
                                       noise=0.0, data_dir=''))
  env = envs.make(cfg, 6, 0, jnp.float32)
  ratings = movielens.load_ratings()
  assert ratings.shape == (943, 1682) and (ratings > 0).sum() == 100_000
  np.testing.assert_allclose(np.linalg.norm(np.asarray(env.items), axis=1), 1.0, rtol=1e-5)
  draw = envs.sample_rounds(env, jax.random.key(1), 0, 3)
  assert np.all(draw.mean.sum(-1) == 1)
  order = np.lexsort((np.arange(943), -(ratings >= 4).sum(1)))[:6]
  for t in range(3):
    for i in range(6):
      rated = ratings[order[i], draw.arms[t, i]] >= 4
      np.testing.assert_array_equal(rated, draw.mean[t, i] == 1)
