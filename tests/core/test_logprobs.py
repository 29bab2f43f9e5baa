"""Chunked per-token logprobs equal the naive full-logits version, in value and gradient."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import logprobs
from jaxpapers.core.models import qwen


def _naive(hidden, targets, project, temperature=1.0):
  """Full float32 [B, S, V] logits, log_softmax, take_along_axis (what we avoid)."""
  logits = project(hidden).astype(jnp.float32) / temperature
  logp_all = jax.nn.log_softmax(logits, axis=-1)
  logps = jnp.take_along_axis(logp_all, targets[..., None], axis=-1)[..., 0]
  entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
  return logps, entropy


def _setup(tied, seed=0, b=2, s=13):
  cfg = qwen.preset('qwen3-tiny', vocab_size=97, num_hidden_layers=1,
                    tie_word_embeddings=tied)
  model = qwen.init(cfg, seed=seed)
  rng = np.random.default_rng(seed)
  hidden = jnp.asarray(rng.normal(size=(b, s, cfg.hidden_size)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, cfg.vocab_size, size=(b, s)), jnp.int32)
  return model, hidden, targets


@pytest.mark.parametrize('tied', [True, False])
@pytest.mark.parametrize('chunk_size', [1, 4, 13, 64])
def test_token_logprobs_any_chunk_matches_naive_values_and_entropy(tied, chunk_size):
  model, hidden, targets = _setup(tied)
  logps, ent = logprobs.token_logprobs(hidden, targets, model.logits_from_hidden,
                                       chunk_size=chunk_size, temperature=0.7,
                                       with_entropy=True)
  ref_logps, ref_ent = _naive(hidden, targets, model.logits_from_hidden, temperature=0.7)
  chex.assert_shape([logps, ent], targets.shape)
  chex.assert_trees_all_close((logps, ent), (ref_logps, ref_ent), atol=1e-5, rtol=1e-5)
  plain = logprobs.token_logprobs(hidden, targets, model.logits_from_hidden,
                                  chunk_size=chunk_size, temperature=0.7)
  chex.assert_trees_all_close(plain, ref_logps, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('tied', [True, False])
def test_token_logprobs_grads_wrt_hidden_and_weights_match_naive(tied):
  model, hidden, targets = _setup(tied)
  graphdef, params = nnx.split(model, nnx.Param)
  weights = jnp.asarray(np.random.default_rng(1).normal(size=targets.shape), jnp.float32)

  def loss(params, hidden, chunked):
    m = nnx.merge(graphdef, params)
    if chunked:
      lp, ent = logprobs.token_logprobs(hidden, targets, m.logits_from_hidden, chunk_size=5,
                                        with_entropy=True)
    else:
      lp, ent = _naive(hidden, targets, m.logits_from_hidden)
    return jnp.sum(weights * lp) + 0.3 * jnp.sum(ent)

  grads = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
  (g_params, g_hidden), (r_params, r_hidden) = grads(params, hidden, True), grads(
      params, hidden, False)
  chex.assert_trees_all_close(g_hidden, r_hidden, atol=1e-5, rtol=1e-5)
  chex.assert_trees_all_close(g_params, r_params, atol=1e-5, rtol=1e-5)
  head = 'embed_tokens' if tied else 'lm_head'
  assert float(jnp.abs(jax.tree.leaves(g_params[head])[0]).sum()) > 0


def test_decoder_next_token_logprobs_matches_full_forward():
  model, _, _ = _setup(tied=True)
  tokens = jnp.asarray(np.random.default_rng(2).integers(0, 97, size=(2, 9)), jnp.int32)
  logps = logprobs.decoder_next_token_logprobs(model, tokens, chunk_size=3)
  full_logits, _ = model(tokens)
  ref = jnp.take_along_axis(jax.nn.log_softmax(full_logits[:, :-1].astype(jnp.float32)),
                            tokens[:, 1:, None], axis=-1)[..., 0]
  chex.assert_shape(logps, (2, 8))
  chex.assert_trees_all_close(logps, ref, atol=1e-5, rtol=1e-5)


def test_token_logprobs_backward_temp_memory_below_full_logits():
  """The compiled grad must not hold [B, S, V] float32 (naive holds it at least once)."""
  b, s, d, v = 2, 512, 16, 4096
  w = jnp.ones((d, v), jnp.float32) * 0.01
  hidden = jnp.ones((b, s, d), jnp.float32)
  targets = jnp.zeros((b, s), jnp.int32)
  full_bytes = b * s * v * 4

  def chunked(w, h):
    return jnp.sum(logprobs.token_logprobs(h, targets, lambda x: x @ w, chunk_size=32))

  def naive(w, h):
    return jnp.sum(_naive(h, targets, lambda x: x @ w)[0])

  def temp_bytes(fn):
    compiled = jax.jit(jax.grad(fn, argnums=(0, 1))).lower(w, hidden).compile()
    analysis = compiled.memory_analysis()
    if analysis is None:
      pytest.skip('backend gives no memory analysis')
    return analysis.temp_size_in_bytes

  assert temp_bytes(naive) >= full_bytes
  assert temp_bytes(chunked) < full_bytes // 4


def test_token_logprobs_rejects_bad_chunk_size():
  model, hidden, targets = _setup(tied=True)
  with pytest.raises(ValueError, match='chunk_size'):
    logprobs.token_logprobs(hidden, targets, model.logits_from_hidden, chunk_size=0)
