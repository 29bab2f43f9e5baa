"""VQ: straight-through gradient, codebook/commitment losses, usage, dead-code re-init."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.papers.disbert import vq


def _setup(seed=0, b=2, t=5, k=4, e=3):
  r = np.random.default_rng(seed)
  return (jnp.asarray(r.normal(size=(b, t, e)), jnp.float32),
          jnp.asarray(r.normal(size=(k, e)), jnp.float32))


def test_quantize_nearest_code_value_and_straight_through_gradient_is_identity():
  z, book = _setup()
  z_q, codes, idx, dist = vq.quantize(z, book)
  d = ((np.asarray(z)[..., None, :] - np.asarray(book)) ** 2).sum(-1)
  np.testing.assert_allclose(dist, d, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(idx, d.argmin(-1))
  np.testing.assert_allclose(z_q, np.asarray(book)[d.argmin(-1)], atol=1e-6)
  w = jnp.arange(z.size, dtype=jnp.float32).reshape(z.shape)
  g_z, g_book = jax.grad(lambda z, b: jnp.sum(vq.quantize(z, b)[0] * w), (0, 1))(z, book)
  np.testing.assert_allclose(g_z, w)               # d z_q / d z = I
  np.testing.assert_allclose(g_book, 0.0)          # no gradient to codes through z_q


def test_vq_losses_match_numpy_and_route_gradients():
  z, book = _setup(1)
  mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
  _, codes, _, _ = vq.quantize(z, book)
  cb, commit = vq.vq_losses(z, codes, mask)
  per = ((np.asarray(z) - np.asarray(codes)) ** 2).sum(-1)
  ref = (per * np.asarray(mask)).sum() / np.asarray(mask).sum()
  np.testing.assert_allclose([cb, commit], [ref, ref], rtol=1e-5)

  def loss(z, book, which):
    codes = vq.quantize(z, book)[1]
    return vq.vq_losses(z, codes, mask)[which]
  g_z_cb, g_book_cb = jax.grad(loss, (0, 1))(z, book, 0)
  g_z_cm, g_book_cm = jax.grad(loss, (0, 1))(z, book, 1)
  np.testing.assert_allclose(g_z_cb, 0.0)          # codebook loss moves only codes
  assert np.abs(g_book_cb).sum() > 0
  np.testing.assert_allclose(g_book_cm, 0.0)       # commitment moves only encodings
  np.testing.assert_allclose(g_z_cm[0, 3:], 0.0)   # padding tokens do not count


def test_perplexity_uniform_is_k_and_collapsed_is_one():
  np.testing.assert_allclose(vq.perplexity(jnp.ones(8)), 8.0, rtol=1e-5)
  np.testing.assert_allclose(vq.perplexity(jnp.array([0., 5., 0., 0.])), 1.0, rtol=1e-6)


def test_code_counts_ignore_padding():
  idx = jnp.array([[0, 1, 1], [3, 3, 0]])
  mask = jnp.array([[1, 1, 0], [1, 1, 1]])
  np.testing.assert_array_equal(vq.code_counts(idx, mask, 4), [2, 1, 0, 2])


def test_reinit_dead_replaces_only_dead_codes_with_valid_encodings():
  z, book = _setup(2, k=6)
  mask = jnp.array([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
  usage = jnp.array([0.5, 0.3, 0.0, 0.2, 0.001, 0.0])
  new_book, new_usage, dead = vq.reinit_dead(book, usage, z, mask, jax.random.PRNGKey(0), 0.03)
  is_dead = np.asarray(usage) < 0.03 / 6
  assert int(dead) == is_dead.sum() == 3
  np.testing.assert_array_equal(np.asarray(new_book)[~is_dead], np.asarray(book)[~is_dead])
  valid = np.asarray(z)[np.asarray(mask) > 0]
  for row in np.asarray(new_book)[is_dead]:
    assert np.isclose(valid, row).all(-1).any()    # a real, unpadded encoding
  np.testing.assert_allclose(np.asarray(new_usage)[is_dead], 1 / 6)


def test_update_usage_is_ema_of_shares():
  u = vq.update_usage(jnp.full(4, 0.25), jnp.array([4., 0., 0., 0.]), 0.9)
  np.testing.assert_allclose(u, [0.325, 0.225, 0.225, 0.225], rtol=1e-6)


def test_topic_alignment_is_cross_entropy_to_theta():
  dist = jnp.array([[[0., 4.], [4., 0.]]])
  mask = jnp.array([[1, 0]])
  theta = jnp.array([[0.7, 0.3]])
  soft = np.exp([0., -4.]) / np.exp([0., -4.]).sum()
  ref = -(0.7 * np.log(soft[0]) + 0.3 * np.log(soft[1]))
  np.testing.assert_allclose(vq.topic_alignment(dist, mask, theta, 1.0), ref, rtol=1e-5)
