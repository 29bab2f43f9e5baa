"""SFT step: gradient accumulation over batch slices gives the whole batch's loss and
gradient, holds fewer activations, and names a batch it cannot split."""
import chex
import jax
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import data as data_lib
from jaxpapers.core.models import qwen
from jaxpapers.core.rl import sft as sft_lib


def _batch(b=8, t=32, seed=0):
  """Right-padded rows with very different target counts (so slice weights matter)."""
  rng = np.random.default_rng(seed)
  rows = [data_lib.pad_example(rng.integers(3, 100, 4 + i).tolist(),
                               rng.integers(3, 100, 1 + 3 * (i % 4)).tolist(), t, 0)
          for i in range(b)]
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


@pytest.fixture(scope='module')
def model(tiny_qwen3):
  graphdef, state = nnx.split(qwen.init(tiny_qwen3, seed=0))
  return graphdef, nnx.to_pure_dict(state)


@pytest.mark.parametrize('k', [2, 4])
def test_accumulated_loss_and_grad_equal_the_whole_batch(model, k):
  graphdef, params = model
  batch = _batch()
  whole = jax.value_and_grad(lambda p: sft_lib.sft_loss(p, graphdef, batch)[0])
  accum = jax.value_and_grad(
      lambda p: sft_lib.accumulated_sft_loss(p, graphdef, batch, k)[0])
  (l1, g1), (lk, gk) = whole(params), accum(params)
  np.testing.assert_allclose(lk, l1, rtol=1e-5)
  chex.assert_trees_all_close(gk, g1, rtol=1e-4, atol=1e-6)
  # A plain mean of per-slice means would differ here (the slices' target counts differ).
  per_slice = [sft_lib.sft_loss(params, graphdef, {f: v[i::k] for f, v in batch.items()})[0]
               for i in range(k)]
  assert abs(float(np.mean(per_slice)) - float(l1)) > 1e-3


def test_accumulation_holds_activations_of_one_slice(model):
  graphdef, params = model
  batch = _batch(b=8, t=256)
  temp = {}
  for k in (1, 8):
    fn = jax.jit(jax.grad(lambda p, b, k=k: sft_lib.accumulated_sft_loss(p, graphdef, b, k)[0]
                          if k > 1 else sft_lib.sft_loss(p, graphdef, b)[0]))
    temp[k] = fn.lower(params, batch).compile().memory_analysis().temp_size_in_bytes
  assert temp[8] < 0.5 * temp[1], temp


def test_batch_that_does_not_split_is_an_error(model):
  graphdef, params = model
  with pytest.raises(ValueError, match='does not divide the batch of 8 rows'):
    sft_lib.accumulated_sft_loss(params, graphdef, _batch(), 3)
  with pytest.raises(ValueError, match='grad_accum_steps must be >= 1'):
    sft_lib.make_train_step(graphdef, None, grad_accum_steps=0)
