"""Sampler: greedy == argmax with full recomputation, filters on hand-made logits, padding,
per-row stops (EOS, stop strings), compile reuse, 8-device mesh."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import sampler
from jaxpapers.core import stop_strings
from jaxpapers.core.models import qwen

PROMPTS = [[5, 17, 99, 3, 42, 7, 250], [11, 12, 13]]
N = 8                                  # new tokens; tests share shapes so compiles are reused
SAMPLED = dict(temperature=1.0, top_k=20, top_p=0.9)
# A toy "tokenizer" for stop strings: token t spells '<t>'.
ANGLE_BYTES = tuple(f'<{t}>'.encode() for t in range(256))
sample = jax.jit(sampler.sample, static_argnames='top_k')
top_p_filter = jax.jit(sampler.top_p_filter)


@pytest.fixture(scope='module')
def qwen3_model():
  return qwen.init(qwen.preset('qwen3-tiny', vocab_size=256), seed=1)


def _logits_fn(model):
  """Jitted full forward without a cache on a [1, 32] right-padded row (causal attention
  makes position i independent of what follows it), float32 logits [32, V]."""
  graphdef, params = sampler.split(model)

  @jax.jit
  def logits(params, seq):
    return nnx.merge(graphdef, params)(seq[None])[0][0].astype(jnp.float32)
  return lambda seq: logits(params, jnp.array(seq + [0] * (32 - len(seq)), jnp.int32))


def _full_recompute_greedy(logits_fn, prompt, n):
  """Argmax of the last position, re-running the whole sequence without a cache each step."""
  seq, logps = list(prompt), []
  for _ in range(n):
    logits = logits_fn(seq)[len(seq) - 1]
    seq.append(int(jnp.argmax(logits)))
    logps.append(float(jax.nn.log_softmax(logits)[seq[-1]]))
  return seq[len(prompt):], logps


def test_generate_greedy_equals_stepwise_argmax_without_cache(qwen3_model):
  model = qwen3_model
  out = sampler.generate(model, PROMPTS, max_new_tokens=N, rng=jax.random.key(0),
                         temperature=0.0)
  logits_fn = _logits_fn(model)
  for row, prompt in enumerate(PROMPTS):
    tokens, logps = _full_recompute_greedy(logits_fn, prompt, N)
    assert np.asarray(out.tokens[row]).tolist() == tokens
    np.testing.assert_allclose(np.asarray(out.logprobs[row]), logps, atol=1e-5)
  assert np.asarray(out.lengths).tolist() == [N, N]
  assert np.asarray(out.finish_reason).tolist() == [sampler.FINISH_LENGTH] * 2


def test_generate_fixed_rng_reproducible_other_rng_differs(qwen3_model):
  a = sampler.generate(qwen3_model, PROMPTS, max_new_tokens=N, rng=jax.random.key(3), **SAMPLED)
  b = sampler.generate(qwen3_model, PROMPTS, max_new_tokens=N, rng=jax.random.key(3), **SAMPLED)
  c = sampler.generate(qwen3_model, PROMPTS, max_new_tokens=N, rng=jax.random.key(4), **SAMPLED)
  np.testing.assert_array_equal(a.tokens, b.tokens)
  np.testing.assert_array_equal(a.logprobs, b.logprobs)
  assert not np.array_equal(a.tokens, c.tokens)


def test_generate_sampled_logprobs_are_tempered_log_softmax(qwen3_model):
  out = sampler.generate(qwen3_model, PROMPTS, max_new_tokens=N, rng=jax.random.key(0),
                         **{**SAMPLED, 'temperature': 0.7})
  logits_fn = _logits_fn(qwen3_model)
  for row, prompt in enumerate(PROMPTS):
    seq = prompt + np.asarray(out.tokens[row]).tolist()
    logits = logits_fn(seq) / 0.7
    n = len(prompt)
    expected = [float(jax.nn.log_softmax(logits[n - 1 + i])[seq[n + i]]) for i in range(N)]
    np.testing.assert_allclose(np.asarray(out.logprobs[row]), expected, atol=1e-5)


def test_padded_row_continues_as_if_alone_greedy_and_sampled(qwen3_model):
  short = PROMPTS[1]
  long = list(range(1, 21))     # forces a 32 bucket, so `short` gets 29 pads instead of 13
  for kw in (dict(temperature=0.0), SAMPLED):
    alone = sampler.generate(qwen3_model, [short], max_new_tokens=N, rng=jax.random.key(1),
                             pad_batch_to=2, **kw)
    padded = sampler.generate(qwen3_model, [short, long], max_new_tokens=N,
                              rng=jax.random.key(1), **kw)
    assert alone.tokens.shape == (1, N)
    np.testing.assert_array_equal(alone.tokens[0], padded.tokens[0])
    np.testing.assert_allclose(alone.logprobs[0], padded.logprobs[0], atol=1e-5)


def test_generate_accepts_left_padded_array(qwen3_model):
  arr = np.zeros((2, 9), np.int32)
  arr[0, 2:] = PROMPTS[0]
  arr[1, 6:] = PROMPTS[1]
  a = sampler.generate(qwen3_model, arr, max_new_tokens=N, rng=jax.random.key(0),
                       temperature=0.0, pad_id=0)
  b = sampler.generate(qwen3_model, PROMPTS, max_new_tokens=N, rng=jax.random.key(0),
                       temperature=0.0)
  np.testing.assert_array_equal(a.tokens, b.tokens)


# ----------------------------------------------------------------------------- filters


def test_top_k_filter_keeps_k_largest_and_ties():
  logits = jnp.array([[1.0, 4.0, 3.0, 2.0, 0.0], [2.0, 2.0, 2.0, 1.0, 5.0]])
  out = np.asarray(sampler.top_k_filter(logits, 2))
  assert np.isfinite(out[0]).tolist() == [False, True, True, False, False]
  assert np.isfinite(out[1]).tolist() == [True, True, True, False, True]   # tie at the k-th


def test_top_p_filter_keeps_smallest_nucleus_hf_semantics():
  probs = jnp.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.9, 0.03, 0.02]])
  logits = jnp.log(probs)
  kept = lambda p: np.isfinite(np.asarray(top_p_filter(logits, p))).tolist()  # noqa
  assert kept(0.79) == [[True, True, False, False], [False, True, False, False]]
  assert kept(0.81) == [[True, True, True, False], [False, True, False, False]]
  assert kept(0.91) == [[True, True, True, False], [True, True, False, False]]
  assert kept(0.01) == [[True, False, False, False], [False, True, False, False]]
  assert kept(1.0) == [[True] * 4] * 2


def test_top_p_filter_bisection_equals_sorted_reference():
  logits = np.asarray(jax.random.normal(jax.random.key(0), (6, 1000)) * 3)
  for p in (0.05, 0.5, 0.9, 0.999):
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    order = np.argsort(-probs, axis=-1)
    sorted_p = np.take_along_axis(probs, order, -1)
    keep_sorted = np.cumsum(sorted_p, -1) - sorted_p < p
    expected = np.zeros_like(keep_sorted)
    np.put_along_axis(expected, order, keep_sorted, -1)
    got = np.isfinite(np.asarray(top_p_filter(jnp.asarray(logits), p)))
    np.testing.assert_array_equal(got, expected)


def test_sample_distribution_matches_filtered_softmax():
  probs = np.array([0.4, 0.25, 0.2, 0.1, 0.05])
  logits = jnp.log(jnp.asarray(np.tile(probs, (4000, 1)), jnp.float32))
  u = jax.random.uniform(jax.random.key(0), (4000,))
  for top_k, top_p, expected in [(0, None, probs), (3, None, probs[:3] / 0.85),
                                 (0, 0.6, probs[:2] / 0.65), (4, 0.6, probs[:2] / 0.65)]:
    draws = np.asarray(sample(logits, u, 1.0, top_k=top_k, top_p=top_p))
    freq = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(freq[:len(expected)], expected, atol=0.03)
    assert freq[len(expected):].sum() == 0


def test_sample_temperature_sharpens():
  logits = jnp.tile(jnp.log(jnp.array([0.6, 0.4])), (2000, 1))
  u = jax.random.uniform(jax.random.key(1), (2000,))
  cold = np.asarray(sample(logits, u, 0.25))
  assert np.mean(cold == 0) > 0.8   # 0.6^4 / (0.6^4 + 0.4^4) = 0.835


# ----------------------------------------------------------------------------- stops


def test_generate_stops_per_row_on_eos_and_stop_string(qwen3_model):
  free = sampler.generate(qwen3_model, PROMPTS, max_new_tokens=N, rng=jax.random.key(0),
                          temperature=0.0)
  row0, row1 = np.asarray(free.tokens).tolist()
  eos = row0[3]                                     # row 0 ends on its 4th token
  stop = f'{row1[1]}><{row1[2]}'                    # spans tokens 2 and 3 of row 1
  matcher = stop_strings.StopMatcher.build(ANGLE_BYTES, [stop])
  out = sampler.generate(qwen3_model, PROMPTS, max_new_tokens=N, rng=jax.random.key(0),
                         temperature=0.0, eos_ids=[eos], stop=matcher, pad_id=0)
  n0, n1 = row0.index(eos) + 1, (3 if eos not in row1[:3] else row1.index(eos) + 1)
  assert np.asarray(out.lengths).tolist() == [n0, n1]
  assert np.asarray(out.tokens[0]).tolist() == row0[:n0] + [0] * (N - n0)
  assert np.asarray(out.tokens[1]).tolist() == row1[:n1] + [0] * (N - n1)
  assert float(np.abs(np.asarray(out.logprobs[0, n0:])).sum()) == 0.0
  assert np.asarray(out.finish_reason).tolist()[0] == sampler.FINISH_EOS


def test_streaming_chunks_equal_one_call_and_reuse_the_compiled_loop(qwen3_model):
  kw = dict(max_new_tokens=N, rng=jax.random.key(3), **SAMPLED)
  whole = sampler.generate(qwen3_model, PROMPTS, **kw)
  before = sampler.compile_count()
  seen = []
  streamed = sampler.generate(qwen3_model, PROMPTS, on_chunk=lambda o: seen.append(
      np.asarray(o.lengths).tolist()), chunk_tokens=3, **kw)
  assert sampler.compile_count() == before
  np.testing.assert_array_equal(streamed.tokens, whole.tokens)
  np.testing.assert_allclose(streamed.logprobs, whole.logprobs, atol=1e-6)
  assert seen == [[1, 1], [4, 4], [7, 7], [8, 8]]


# ----------------------------------------------------------------------------- compile, mesh


def test_second_call_same_bucket_does_not_recompile(qwen3_model):
  pair = sampler.split(qwen3_model)
  kw = dict(max_new_tokens=N, rng=jax.random.key(0), temperature=0.0, prompt_bucket=24)
  sampler.generate(pair, [[1] * 5, [2] * 3], **kw)
  before = sampler.compile_count()
  sampler.generate(pair, [[3] * 11, [4] * 24], **kw)        # bucket 24 again
  assert sampler.compile_count() == before
  sampler.generate(pair, [[3] * 25, [4] * 2], **kw)         # bucket 48: prefill + decode
  assert sampler.compile_count() == before + 2


def test_bucket_length():
  assert [sampler.bucket_length(n) for n in (1, 16, 17, 64, 65)] == [16, 16, 32, 64, 128]
  assert [sampler.bucket_length(n, 24) for n in (1, 24, 25)] == [24, 24, 48]


def test_generate_under_8_device_mesh_matches_single_device(qwen3_model):
  assert jax.device_count() == 8
  mesh = mesh_lib.make_mesh({'data': -1})
  pair = sampler.split(qwen3_model, mesh)                  # 2 rows, padded to 8 on the mesh
  sharded = sampler.generate(pair, PROMPTS, max_new_tokens=N, rng=jax.random.key(2), mesh=mesh,
                             **SAMPLED)
  single = sampler.generate(qwen3_model, PROMPTS, max_new_tokens=N, rng=jax.random.key(2),
                            **SAMPLED)
  np.testing.assert_array_equal(sharded.tokens, single.tokens)
  np.testing.assert_allclose(sharded.logprobs, single.logprobs, atol=1e-5)


def _with_prefix(n=sampler.PREFIX_BUCKET + 9):
  """PROMPTS behind one common system-prompt-like prefix of n tokens (one more row that
  shares only part of its suffix with another)."""
  head = [int(t) for t in np.random.default_rng(0).integers(1, 256, n)]
  return [head + p for p in PROMPTS + [[5, 17, 4]]]


def test_common_prefix_is_cut_to_the_bucket_and_leaves_every_row_a_token():
  b = sampler.PREFIX_BUCKET
  prompts = _with_prefix()
  assert sampler.common_prefix(prompts, 1) == prompts[0][:b]
  assert sampler.common_prefix(prompts, b + 1) == []            # under min_len
  assert sampler.common_prefix([prompts[0][:b]] * 2, 1) == []    # would leave no own token
  assert sampler.common_prefix([[1] * (b + 1)] * 2, 1) == [1] * b
  assert sampler.common_prefix([[1] * 200, [2] * 200], 1) == []


def test_shared_prefix_output_equals_plain_prefill(qwen3_model):
  prompts = _with_prefix()
  for kw in (dict(temperature=0.0), SAMPLED):
    plain = sampler.generate(qwen3_model, prompts, max_new_tokens=N, rng=jax.random.key(3),
                             pad_batch_to=4, **kw)
    shared = sampler.generate(qwen3_model, prompts, max_new_tokens=N, rng=jax.random.key(3),
                              pad_batch_to=4, shared_prefix=1, **kw)
    np.testing.assert_array_equal(shared.tokens, plain.tokens)
    np.testing.assert_allclose(shared.logprobs, plain.logprobs, atol=1e-5)
    np.testing.assert_array_equal(shared.lengths, plain.lengths)


def test_shared_prefix_under_8_device_mesh(qwen3_model):
  mesh = mesh_lib.make_mesh({'data': -1})
  pair = sampler.split(qwen3_model, mesh)
  prompts = _with_prefix()
  sharded = sampler.generate(pair, prompts, max_new_tokens=N, rng=jax.random.key(4), mesh=mesh,
                             shared_prefix=1, **SAMPLED)
  single = sampler.generate(qwen3_model, prompts, max_new_tokens=N, rng=jax.random.key(4),
                            **SAMPLED)
  np.testing.assert_array_equal(sharded.tokens, single.tokens)
  np.testing.assert_allclose(sharded.logprobs, single.logprobs, atol=1e-5)


def test_generate_rejects_empty_prompt(qwen3_model):
  with pytest.raises(ValueError, match='at least one token'):
    sampler.generate(qwen3_model, [[1, 2], []], max_new_tokens=2, rng=jax.random.key(0))


def test_generate_batched_equals_one_call_per_prompt_in_input_order():
  """Length-sorted batches (padded to batch_size rows) give each prompt the greedy text a
  call of its own gives, returned in input order."""
  from jaxpapers.core.models import layers
  model = layers.Decoder(qwen.preset('qwen3-tiny', vocab_size=64), nnx.Rngs(params=0))
  prompts = [[1, 5, 7], [1, 9], [1, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2], [1, 11]]
  decode = lambda ids: ','.join(map(str, ids))  # noqa: E731
  got = sampler.generate_batched(model, prompts, max_new_tokens=5, batch_size=2,
                                 decode=decode, eos_ids=(2,), pad_id=0)
  for p, text in zip(prompts, got):
    one = sampler.generate(model, [p], max_new_tokens=5, rng=jax.random.PRNGKey(0),
                           temperature=0.0, eos_ids=(2,), pad_id=0)
    assert text == decode(np.asarray(one.tokens)[0, :int(one.lengths[0])].tolist())
  assert [list(b) for b in sampler.length_sorted_batches([3, 2, 7, 4, 2], 2)] == [
      [1, 4], [0, 3], [2]]
