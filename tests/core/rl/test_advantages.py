"""Advantage estimators against numpy transcriptions of TRL's GRPO / RLOO lines."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.core.rl import advantages as adv_lib

REWARDS = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 2.0, -1.0, 0.0, 3.0])
G = 4


def _np_grpo(r, g, scale, ddof=1, eps=1e-4):
  """TRL 1.x: group mean; std per group ('group'/'none') or over the batch ('batch')."""
  grouped = r.reshape(-1, g)
  mean = np.repeat(grouped.mean(1), g)
  std = np.repeat(grouped.std(1, ddof=ddof), g) if scale != 'batch' else np.full_like(
      r, r.std(ddof=ddof))
  a = r - mean
  return a / (std + eps) if scale != 'none' else a


@pytest.mark.parametrize('scale', ['group', 'batch', 'none'])
@pytest.mark.parametrize('ddof', [0, 1])
def test_grpo_advantages_match_numpy_trl(scale, ddof):
  cfg = adv_lib.AdvantageConfig(scale_rewards=scale, std_ddof=ddof)
  out = adv_lib.compute_advantages(jnp.asarray(REWARDS), G, cfg)
  np.testing.assert_allclose(out, _np_grpo(REWARDS, G, scale, ddof), rtol=1e-5, atol=1e-6)


def test_grpo_advantages_zero_std_group_is_zero_and_eps_configurable():
  cfg = adv_lib.AdvantageConfig(eps=0.5)
  out = np.asarray(adv_lib.compute_advantages(jnp.asarray(REWARDS), G, cfg))
  np.testing.assert_allclose(out[4:8], 0.0)
  np.testing.assert_allclose(out, _np_grpo(REWARDS, G, 'group', eps=0.5), rtol=1e-5)


def test_dr_grpo_advantages_are_mean_centred_only():
  out = adv_lib.compute_advantages(jnp.asarray(REWARDS), G,
                                   adv_lib.AdvantageConfig(estimator='dr_grpo'))
  np.testing.assert_allclose(out, _np_grpo(REWARDS, G, 'none'), atol=1e-6)


def test_rloo_advantages_leave_one_out_known_values():
  out = adv_lib.compute_advantages(jnp.asarray([1.0, 2.0, 3.0, 4.0]), 4,
                                   adv_lib.AdvantageConfig(estimator='rloo'))
  np.testing.assert_allclose(out, [-2.0, -2 / 3, 2 / 3, 2.0], atol=1e-6)


def test_rloo_normalized_matches_numpy():
  grouped = REWARDS.reshape(-1, G)
  base = (grouped.sum(1, keepdims=True) - grouped) / (G - 1)
  a = (grouped - base).reshape(-1)
  expected = (a - a.mean()) / (a.std(ddof=1) + 1e-4)
  cfg = adv_lib.AdvantageConfig(estimator='rloo', normalize=True)
  np.testing.assert_allclose(adv_lib.compute_advantages(jnp.asarray(REWARDS), G, cfg),
                             expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('estimator', ['grpo', 'dr_grpo', 'rloo'])
def test_single_generation_gives_zero_advantages(estimator):
  out = adv_lib.compute_advantages(jnp.asarray([1.0, 0.0, 3.0]), 1,
                                   adv_lib.AdvantageConfig(estimator=estimator))
  np.testing.assert_allclose(out, 0.0)
  assert np.all(np.isfinite(out))


def test_group_stats_report_zero_std_fraction():
  stats = adv_lib.group_stats(jnp.asarray(REWARDS), G)
  np.testing.assert_allclose(stats['frac_reward_zero_std'], 1 / 3, rtol=1e-6)
  np.testing.assert_allclose(stats['reward'], REWARDS.mean(), rtol=1e-6)
  np.testing.assert_allclose(stats['reward_std'],
                             REWARDS.reshape(-1, G).std(1, ddof=1).mean(), rtol=1e-6)


def test_bad_inputs_name_the_problem():
  with pytest.raises(ValueError, match='valid: dr_grpo, grpo, rloo'):
    adv_lib.compute_advantages(jnp.ones(4), 2, adv_lib.AdvantageConfig(estimator='ppo'))
  with pytest.raises(ValueError, match='divisible by num_generations=3'):
    adv_lib.compute_advantages(jnp.ones(4), 3)
  with pytest.raises(ValueError, match='scale_rewards'):
    adv_lib.AdvantageConfig(scale_rewards=True)
