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


def _data(seed=0, b=2, s=13, d=16, v=97):
  rng = np.random.default_rng(seed)
  hidden = jnp.asarray(rng.normal(size=(b, s, d)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, v, size=(b, s)), jnp.int32)
  return hidden, targets


@pytest.fixture(scope='module')
def tiny_decoder():
  """(graphdef, params) of a 1-layer tied Qwen3, built inside one jit (eager init is slow)."""
  cfg = qwen.preset('qwen3-tiny', vocab_size=97, num_hidden_layers=1, hidden_size=16,
                    intermediate_size=32, num_attention_heads=2, num_key_value_heads=1,
                    head_dim=8)
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: qwen.init(cfg, seed=0)))
  params = jax.jit(lambda: nnx.split(qwen.init(cfg, seed=0))[1])()
  return graphdef, params


@pytest.mark.parametrize('chunk_size', [1, 5, 64])  # 5: S=13 pads; 64: one chunk
def test_token_logprobs_any_chunk_matches_naive_values_and_entropy(chunk_size):
  hidden, targets = _data()
  w = jnp.asarray(np.random.default_rng(3).normal(size=(16, 97)), jnp.float32)
  project = lambda h: h @ w  # noqa: E731

  @jax.jit
  def both(hidden):
    ours = logprobs.token_logprobs(hidden, targets, project, chunk_size=chunk_size,
                                   temperature=0.7, with_entropy=True)
    plain = logprobs.token_logprobs(hidden, targets, project, chunk_size=chunk_size,
                                    temperature=0.7)
    return ours, plain, _naive(hidden, targets, project, temperature=0.7)

  (logps, ent), plain, (ref_logps, ref_ent) = both(hidden)
  chex.assert_shape([logps, ent, plain], targets.shape)
  chex.assert_trees_all_close((logps, ent, plain), (ref_logps, ref_ent, ref_logps),
                              atol=1e-5, rtol=1e-5)


def test_token_logprobs_grads_wrt_hidden_and_weights_match_naive(tiny_decoder):
  graphdef, params = tiny_decoder
  hidden, targets = _data(seed=1)
  weights = jnp.asarray(np.random.default_rng(1).normal(size=targets.shape), jnp.float32)

  def loss(params, hidden, chunked):
    m = nnx.merge(graphdef, params)
    if chunked:
      lp, ent = logprobs.token_logprobs(hidden, targets, m.logits_from_hidden, chunk_size=5,
                                        temperature=0.9, with_entropy=True)
    else:
      lp, ent = _naive(hidden, targets, m.logits_from_hidden, temperature=0.9)
    return jnp.sum(weights * lp) + 0.3 * jnp.sum(ent)

  @jax.jit
  def grads(params, hidden):
    g = jax.grad(loss, argnums=(0, 1))
    return g(params, hidden, True), g(params, hidden, False)

  (g_params, g_hidden), (r_params, r_hidden) = grads(params, hidden)
  chex.assert_trees_all_close(g_hidden, r_hidden, atol=1e-5, rtol=1e-5)
  chex.assert_trees_all_close(g_params, r_params, atol=1e-5, rtol=1e-5)
  assert float(jnp.abs(g_params['embed_tokens']['embedding'][...]).sum()) > 0


def test_decoder_next_token_logprobs_matches_full_forward(tiny_decoder):
  graphdef, params = tiny_decoder
  tokens = jnp.asarray(np.random.default_rng(2).integers(0, 97, size=(2, 9)), jnp.int32)

  @jax.jit
  def run(params, tokens):
    m = nnx.merge(graphdef, params)
    logps = logprobs.decoder_next_token_logprobs(m, tokens, chunk_size=3)
    full = m(tokens)[0][:, :-1].astype(jnp.float32)
    ref = jnp.take_along_axis(jax.nn.log_softmax(full), tokens[:, 1:, None], axis=-1)[..., 0]
    return logps, ref

  logps, ref = run(params, tokens)
  chex.assert_shape(logps, (2, 8))
  chex.assert_trees_all_close(logps, ref, atol=1e-5, rtol=1e-5)
  m = nnx.merge(graphdef, params)
  tail, tail_ent = logprobs.decoder_next_token_logprobs(m, tokens, chunk_size=3, last=5,
                                                       with_entropy=True)
  _, ent = logprobs.decoder_next_token_logprobs(m, tokens, chunk_size=3, with_entropy=True)
  chex.assert_trees_all_close((tail, tail_ent), (ref[:, -5:], ent[:, -5:]), atol=1e-5)
  with pytest.raises(ValueError, match='last must be in'):
    logprobs.decoder_next_token_logprobs(m, tokens, last=9)


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
  hidden, targets = _data()
  with pytest.raises(ValueError, match='chunk_size'):
    logprobs.token_logprobs(hidden, targets, lambda h: h, chunk_size=0)


def test_next_token_choice_logprobs_equal_unpadded_forward(tiny_decoder):
  """Left-padded batch: each row's choice log-probs equal a naive forward of that row alone."""
  graphdef, params = tiny_decoder
  model = nnx.merge(graphdef, params)
  rows = [[5, 9, 13, 2, 7], [3, 4], [11, 12, 13, 14, 15, 16, 17]]
  width = max(map(len, rows))
  tokens = np.array([[0] * (width - len(r)) + r for r in rows], np.int32)
  mask = np.array([[0] * (width - len(r)) + [1] * len(r) for r in rows], np.int32)
  choices = [20, 3, 96]
  got = logprobs.next_token_choice_logprobs(model, jnp.asarray(tokens), jnp.asarray(mask),
                                            choices)
  for i, r in enumerate(rows):
    logits, _ = model(jnp.asarray([r], jnp.int32))
    want = jax.nn.log_softmax(logits[0, -1].astype(jnp.float32))[jnp.asarray(choices)]
    np.testing.assert_allclose(np.asarray(got[i]), np.asarray(want), atol=1e-5)
