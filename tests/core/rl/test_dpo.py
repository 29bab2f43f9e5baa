"""DPO losses against an independent float64 numpy transcription of TRL's formulas.

Values, TRL-named metrics, and gradients w.r.t. the policy log-probs (jax.grad vs numpy
central finite differences).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.core.rl import dpo as dpo_lib


def _logsig(x):
  return -np.logaddexp(0.0, -x)


def _np_dpo(c, r, rc, rr, lc, lr, loss_type, beta, ls, sft, gamma):
  """TRL DPOTrainer._compute_loss (reverse-KL scores) / CPO simpo, in numpy."""
  sc, sr = c - rc, r - rr
  d = sc - sr
  per = {
      'sigmoid': lambda: -(1 - ls) * _logsig(beta * d) - ls * _logsig(-beta * d),
      'hinge': lambda: np.maximum(0.0, 1 - beta * d),
      'ipo': lambda: (sc / lc - sr / lr - 1 / (2 * beta)) ** 2,
      'robust': lambda: (-(1 - ls) * _logsig(beta * d) + ls * _logsig(-beta * d)) / (1 - 2 * ls),
      'sigmoid_norm': lambda: -_logsig(beta * (sc / lc - sr / lr)),
      'simpo': lambda: (-(1 - ls) * _logsig(beta * (c / lc - r / lr) - gamma)
                        - ls * _logsig(-(beta * (c / lc - r / lr) - gamma))),
  }[loss_type]()
  return per.mean() + sft * (-c.sum() / lc.sum())


def _pairs(seed=0, b=5):
  rng = np.random.default_rng(seed)
  lc = rng.integers(1, 30, size=b).astype(float)
  lr = rng.integers(1, 30, size=b).astype(float)
  c, r = -lc * rng.uniform(0.5, 2, b), -lr * rng.uniform(0.5, 2, b)
  rc, rr = c + rng.normal(0, 2, b), r + rng.normal(0, 2, b)
  return c, r, rc, rr, lc, lr


CASES = [('sigmoid', 0.1, 0.0, 0.0), ('sigmoid', 0.5, 0.2, 0.0), ('sigmoid', 0.1, 0.0, 1.0),
         ('hinge', 0.1, 0.0, 0.0), ('ipo', 0.3, 0.0, 0.0), ('robust', 0.1, 0.1, 0.0),
         ('sigmoid_norm', 2.0, 0.0, 0.5), ('simpo', 2.0, 0.1, 0.0)]


@pytest.mark.parametrize('loss_type,beta,ls,sft', CASES)
def test_dpo_loss_matches_numpy_trl_values_and_finite_difference_grads(loss_type, beta, ls,
                                                                      sft):
  c, r, rc, rr, lc, lr = _pairs(seed=len(loss_type))
  cfg = dpo_lib.DPOLossConfig(loss_type=loss_type, beta=beta, label_smoothing=ls,
                              sft_weight=sft, simpo_gamma=0.7)
  ref_fn = lambda c, r: _np_dpo(c, r, rc, rr, lc, lr, loss_type, beta, ls, sft, 0.7)  # noqa

  def ours(c, r):
    return dpo_lib.dpo_loss(c, r, jnp.asarray(rc, jnp.float32), jnp.asarray(rr, jnp.float32),
                            cfg, chosen_lengths=jnp.asarray(lc, jnp.float32),
                            rejected_lengths=jnp.asarray(lr, jnp.float32))[0]

  f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
  loss = float(ours(f32(c), f32(r)))
  g_c, g_r = jax.grad(ours, argnums=(0, 1))(f32(c), f32(r))
  np.testing.assert_allclose(loss, ref_fn(c, r), atol=1e-5, rtol=1e-5)
  h = 1e-6
  for x, g, which in ((c, g_c, 0), (r, g_r, 1)):
    fd = np.zeros_like(x)
    for i in range(x.size):
      e = np.zeros_like(x)
      e[i] = h
      args_p = (c + e, r) if which == 0 else (c, r + e)
      args_m = (c - e, r) if which == 0 else (c, r - e)
      fd[i] = (ref_fn(*args_p) - ref_fn(*args_m)) / (2 * h)
    np.testing.assert_allclose(g, fd, atol=1e-5, rtol=1e-5)


def test_dpo_metrics_follow_trl_names_and_formulas():
  c, r, rc, rr, lc, lr = _pairs(seed=7)
  _, m = dpo_lib.dpo_loss(*(jnp.asarray(x, jnp.float32) for x in (c, r, rc, rr)),
                          dpo_lib.DPOLossConfig(beta=0.1),
                          chosen_lengths=jnp.asarray(lc), rejected_lengths=jnp.asarray(lr))
  cr, rj = 0.1 * (c - rc), 0.1 * (r - rr)
  expected = {'rewards/chosen': cr.mean(), 'rewards/rejected': rj.mean(),
              'rewards/margins': (cr - rj).mean(), 'rewards/accuracies': (cr > rj).mean(),
              'logps/chosen': c.mean(), 'logps/rejected': r.mean(), 'nll': -c.sum() / lc.sum()}
  for name, value in expected.items():
    np.testing.assert_allclose(float(m[name]), value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_sequence_logps_sums_masked_tokens():
  per_tok = jnp.asarray([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0]])
  mask = jnp.asarray([[1, 1, 0], [0, 1, 1]])
  logps, lengths = dpo_lib.sequence_logps(per_tok, mask)
  np.testing.assert_allclose(logps, [-3.0, -9.5])
  np.testing.assert_allclose(lengths, [2.0, 2.0])


def test_dpo_defaults_are_trl_and_errors_name_the_field():
  cfg = dpo_lib.DPOLossConfig()
  assert (cfg.loss_type, cfg.beta, cfg.label_smoothing, cfg.sft_weight) == (
      'sigmoid', 0.1, 0.0, 0.0)
  with pytest.raises(ValueError, match='DPO loss_type'):
    dpo_lib.DPOLossConfig(loss_type='kto')
  with pytest.raises(ValueError, match='label_smoothing'):
    dpo_lib.DPOLossConfig(label_smoothing=0.5)
  x = jnp.zeros(2)
  with pytest.raises(ValueError, match='chosen_lengths'):
    dpo_lib.dpo_loss(x, x, x, x, dpo_lib.DPOLossConfig(loss_type='ipo'))
