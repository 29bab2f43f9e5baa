"""GRPO loss parity with an independent float64 numpy transcription of TRL's formulas.

The reference below is written from TRL 1.x `GRPOTrainer._compute_loss` (trl 1.9.0), not from
our module: values, metrics and the analytic gradient d loss / d logps, the latter checked
itself against central finite differences.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.core.rl import grpo as grpo_lib

B, T = 4, 7


def _batch(seed=0, empty_row=False):
  rng = np.random.default_rng(seed)
  logps = -rng.uniform(0.05, 3.0, size=(B, T))
  old = logps + rng.normal(0, 0.35, size=(B, T))           # ratios spread across clip edges
  ref = logps + rng.normal(0, 0.5, size=(B, T))
  adv = np.array([1.3, -0.7, 0.4, -1.9])
  mask = np.ones((B, T))
  mask[0, 5:] = 0                                          # right padding
  mask[1, 2:4] = 0                                         # env/tool tokens in a multi-turn row
  mask[2, 1:] = 0                                          # a 1-token completion
  if empty_row:
    mask[3] = 0
  return logps, old, ref, adv, mask


def _np_loss(lp, old, ref, adv, mask, c):
  """TRL _compute_loss, token level, in numpy. c: dict of the knobs. Returns (loss, grad)."""
  a = adv[:, None]
  coef_1 = np.exp(lp - old)
  coef_2 = np.clip(coef_1, 1 - c['eps'], 1 + c['eps_high'])
  capped = coef_1 if c['delta'] is None else np.minimum(coef_1, c['delta'])
  first = capped * a <= coef_2 * a
  per_tok = -np.minimum(capped * a, coef_2 * a)
  d_capped = coef_1 * (1.0 if c['delta'] is None else (coef_1 < c['delta']))
  d_coef_2 = coef_1 * ((coef_1 > 1 - c['eps']) & (coef_1 < 1 + c['eps_high']))
  d_tok = -a * np.where(first, d_capped, d_coef_2)
  if c['beta']:
    if c['kl'] == 'k3':
      kl, d_kl = np.exp(ref - lp) - (ref - lp) - 1, 1 - np.exp(ref - lp)
    else:
      kl, d_kl = lp - ref, np.ones_like(lp)
    if c['bias_kl']:
      kl, d_kl = kl * coef_1, d_kl * coef_1 + kl * coef_1
    per_tok, d_tok = per_tok + c['beta'] * kl, d_tok + c['beta'] * d_kl
  n_b = np.maximum(mask.sum(1, keepdims=True), 1.0)
  weights = {
      'grpo': mask / n_b / lp.shape[0],
      'bnpo': mask / max(mask.sum(), 1.0),
      'dr_grpo': mask / (lp.shape[0] * c['max_len']),
      'dapo': mask / max(c['num_items'] if c['num_items'] is not None else mask.sum(), 1.0),
  }[c['loss_type']]
  return float(np.sum(per_tok * weights)), d_tok * weights


def _np_metrics(lp, old, ref, adv, mask, c):
  coef_1 = np.exp(lp - old)
  if c['delta'] is not None:
    coef_1 = np.minimum(coef_1, c['delta'])
  a = np.broadcast_to(adv[:, None], lp.shape)
  low = ((coef_1 < 1 - c['eps']) & (a < 0)).astype(float)
  high = ((coef_1 > 1 + c['eps_high']) & (a > 0)).astype(float)
  n = max(mask.sum(), 1.0)
  with np.errstate(invalid='ignore'):
    low_seq, high_seq = (low * mask).sum(1) / mask.sum(1), (high * mask).sum(1) / mask.sum(1)
  out = {'clip_ratio/low_mean': (low * mask).sum() / n,
         'clip_ratio/high_mean': (high * mask).sum() / n,
         'clip_ratio/region_mean': (np.maximum(low, high) * mask).sum() / n,
         'clip_ratio/low_min': np.nanmin(low_seq), 'clip_ratio/high_max': np.nanmax(high_seq)}
  if c['beta']:
    kl = np.exp(ref - lp) - (ref - lp) - 1 if c['kl'] == 'k3' else lp - ref
    if c['bias_kl']:                                       # TRL logs the corrected KL
      kl = kl * np.exp(lp - old)
    out['kl'] = (kl * mask).sum() / n
  return out


def _knobs(**kw):
  c = dict(loss_type='dapo', beta=0.0, kl='k3', eps=0.2, eps_high=0.2, delta=None,
           bias_kl=False, max_len=T, num_items=None)
  c.update(kw)
  return c


def _cfg(c):
  return grpo_lib.GRPOLossConfig(
      loss_type=c['loss_type'], beta=c['beta'], kl_estimator=c['kl'], epsilon=c['eps'],
      epsilon_high=c['eps_high'], delta=c['delta'], use_bias_correction_kl=c['bias_kl'],
      max_completion_length=c['max_len'])


def _ours(batch, c):
  lp, old, ref, adv, mask = (jnp.asarray(x, jnp.float32) for x in batch)
  cfg = _cfg(c)

  def f(lp):
    return grpo_lib.grpo_loss(lp, old, ref if c['beta'] else None, adv, mask, cfg,
                              num_items_in_batch=c['num_items'])

  (loss, metrics), grad = jax.value_and_grad(f, has_aux=True)(lp)
  return float(loss), np.asarray(grad), {k: float(v) for k, v in metrics.items()}


CASES = [_knobs(loss_type=lt, beta=beta, kl=kl, eps_high=eh)
         for lt, (beta, kl), eh in itertools.product(
             ('grpo', 'bnpo', 'dr_grpo', 'dapo'), ((0.0, 'k3'), (0.04, 'k3'), (0.1, 'k1')),
             (0.2, 0.28))]
CASES += [_knobs(loss_type='dr_grpo', max_len=16, beta=0.04),
          _knobs(loss_type='dapo', num_items=40, beta=0.04, eps_high=0.28),
          _knobs(loss_type='grpo', delta=1.5, eps_high=0.28),
          _knobs(loss_type='bnpo', beta=0.1, bias_kl=True)]


@pytest.mark.parametrize('c', CASES, ids=lambda c: '-'.join(
    f'{k}={v}' for k, v in c.items() if v != _knobs()[k]) or 'default')
def test_grpo_loss_matches_numpy_trl_values_grads_metrics(c):
  batch = _batch(seed=len(str(c)))
  ref_loss, ref_grad = _np_loss(*batch, c)
  loss, grad, metrics = _ours(batch, c)
  np.testing.assert_allclose(loss, ref_loss, atol=1e-5, rtol=1e-5)
  np.testing.assert_allclose(grad, ref_grad, atol=1e-5, rtol=1e-5)
  for name, value in _np_metrics(*batch, c).items():
    np.testing.assert_allclose(metrics[name], value, atol=1e-6, err_msg=name)
  assert np.all(grad[batch[4] == 0] == 0)                 # masked tokens get no gradient


@pytest.mark.parametrize('c', [CASES[5], CASES[-2], CASES[-1]], ids=('k3', 'delta', 'bias_kl'))
def test_numpy_reference_gradient_matches_finite_differences(c):
  lp, old, ref, adv, mask = _batch(seed=3)
  _, analytic = _np_loss(lp, old, ref, adv, mask, c)
  fd, h = np.zeros_like(lp), 1e-6
  for idx in np.ndindex(lp.shape):
    e = np.zeros_like(lp)
    e[idx] = h
    fd[idx] = (_np_loss(lp + e, old, ref, adv, mask, c)[0]
               - _np_loss(lp - e, old, ref, adv, mask, c)[0]) / (2 * h)
  np.testing.assert_allclose(analytic, fd, atol=1e-7)


def test_grpo_loss_empty_row_and_on_policy_defaults():
  lp, _, _, adv, mask = (jnp.asarray(x, jnp.float32) for x in _batch(empty_row=True))
  loss, metrics = grpo_lib.grpo_loss(lp, None, None, adv, mask)
  # On-policy (old = logps.detach()): ratio 1, dapo loss = -sum(A * m) / sum(m).
  expected = -float(jnp.sum(adv[:, None] * mask) / jnp.sum(mask))
  np.testing.assert_allclose(float(loss), expected, atol=1e-6)
  assert float(metrics['clip_ratio/region_mean']) == 0.0 and 'kl' not in metrics
  grad = jax.grad(lambda x: grpo_lib.grpo_loss(x, None, None, adv, mask)[0])(lp)
  np.testing.assert_allclose(grad, -adv[:, None] * mask / jnp.sum(mask), atol=1e-7)


def test_grpo_loss_sequence_level_matches_numpy_gspo():
  lp, old, _, adv, mask = _batch(seed=5)
  cfg = grpo_lib.GRPOLossConfig(loss_type='grpo', importance_sampling_level='sequence')
  n = np.maximum(mask.sum(1), 1.0)
  w = np.exp(((lp - old) * mask).sum(1) / n)
  per_seq = -np.minimum(w * adv, np.clip(w, 0.8, 1.2) * adv)
  expected = np.mean(per_seq * mask.sum(1) / n)            # (l[B,1] * m).sum(-1) / n
  loss, _ = grpo_lib.grpo_loss(*(jnp.asarray(x, jnp.float32) for x in (lp, old)), None,
                               jnp.asarray(adv, jnp.float32), jnp.asarray(mask), cfg)
  np.testing.assert_allclose(float(loss), expected, atol=1e-6)


def test_grpo_loss_config_defaults_are_trl_and_bad_values_name_the_field():
  cfg = grpo_lib.GRPOLossConfig()
  assert (cfg.loss_type, cfg.beta, cfg.epsilon, cfg.epsilon_high, cfg.delta) == (
      'dapo', 0.0, 0.2, 0.2, None)
  with pytest.raises(ValueError, match='GRPO loss_type'):
    grpo_lib.GRPOLossConfig(loss_type='ppo')
  with pytest.raises(ValueError, match='KL estimator'):
    grpo_lib.GRPOLossConfig(kl_estimator='k2')
  lp = jnp.zeros((1, 2))
  with pytest.raises(ValueError, match='ref_logps'):
    grpo_lib.grpo_loss(lp, None, None, jnp.ones(1), jnp.ones((1, 2)),
                       grpo_lib.GRPOLossConfig(beta=0.1))
