"""Topic model pieces against plain numpy references."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxpapers.papers.disbert import ntm


def _softmax(x, axis=-1):
  e = np.exp(x - x.max(axis, keepdims=True))
  return e / e.sum(axis, keepdims=True)


def test_reconstruction_nll_matches_numpy_mixture():
  r = np.random.default_rng(0)
  bow = r.integers(0, 3, (3, 7)).astype(np.float32)
  theta = _softmax(r.normal(size=(3, 4)))
  beta = _softmax(r.normal(size=(4, 7)))
  ref = -(bow * np.log(theta @ beta)).sum(-1)
  got = ntm.reconstruction_nll(jnp.asarray(bow), jnp.log(theta), jnp.log(beta))
  np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_kl_matches_closed_form_and_is_zero_at_prior():
  r = np.random.default_rng(1)
  mu, logvar = r.normal(size=(2, 5)), r.normal(size=(2, 5))
  var = np.exp(logvar)
  ref = 0.5 * (var + mu ** 2 - 1.0 - logvar).sum(-1)
  np.testing.assert_allclose(ntm.kl_standard_normal(jnp.asarray(mu), jnp.asarray(logvar)), ref,
                             rtol=1e-5)
  np.testing.assert_allclose(ntm.kl_standard_normal(jnp.zeros((1, 3)), jnp.zeros((1, 3))), 0.0)


def test_dense_bow_adds_counts_and_ignores_padding_counts():
  ids = jnp.array([[2, 0, 0], [1, 2, 0]])
  counts = jnp.array([[3., 0., 0.], [1., 2., 0.]])
  np.testing.assert_array_equal(ntm.dense_bow(ids, counts, 4), [[0, 0, 3, 0], [0, 1, 2, 0]])


def test_ntm_forward_theta_is_distribution_and_beta_rows_normalised():
  model = ntm.NTM(vocab_size=9, num_topics=3, hidden=8, topic_dim=4, rngs=nnx.Rngs(0))
  bow = jnp.ones((2, 9))
  nll, kl, theta = model(bow, jax.random.PRNGKey(0))
  assert nll.shape == kl.shape == (2,) and theta.shape == (2, 3)
  np.testing.assert_allclose(theta.sum(-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(jnp.exp(model.log_beta()).sum(-1), 1.0, rtol=1e-5)
  words = ntm.top_words(model.log_beta(), [f'w{i}' for i in range(9)], 2)
  assert len(words) == 3 and all(len(w) == 2 for w in words)


def test_word_norm_standardises_each_word_across_topics():
  """log_beta = log_softmax over words of the logits z-scored per word across topics."""
  model = ntm.NTM(vocab_size=9, num_topics=3, hidden=8, topic_dim=4, rngs=nnx.Rngs(0))
  logits = np.asarray(model.topic_emb[...] @ model.word_emb[...].T, np.float64)
  z = (logits - logits.mean(0)) / np.sqrt(logits.var(0) + 1e-5)
  np.testing.assert_allclose(model.log_beta(), np.log(_softmax(z)), rtol=1e-4, atol=1e-5)
  plain = ntm.NTM(vocab_size=9, num_topics=3, hidden=8, topic_dim=4, rngs=nnx.Rngs(0),
                  word_norm=False)
  np.testing.assert_allclose(plain.log_beta(), np.log(_softmax(logits)), rtol=1e-4, atol=1e-5)


def test_diversity_counts_distinct_top_words():
  assert ntm.diversity([['a', 'b'], ['c', 'd']]) == 1.0
  assert ntm.diversity([['a', 'b'], ['a', 'b']]) == 0.5
