"""Vector quantisation over a topic-initialised codebook (van den Oord et al. 2017).

Each token's 64-d representation z_e is replaced by its nearest code c_k (squared L2); the
straight-through estimator passes d loss / d z_q unchanged to z_e. Losses (per valid token,
averaged): codebook ||sg(z_e) - c||^2 moves codes towards encodings, commitment
||z_e - sg(c)||^2 (weighted by beta) keeps encodings near their code. The codebook has one
code per topic and starts from the topic embeddings (disbert.md).

Codebook health: per-step code histograms feed an EMA of usage; `perplexity` = exp(entropy)
of the batch's code distribution (K when all codes are used evenly, 1 when one code takes
all). Dead codes (EMA usage below `threshold / K`) are re-initialised to randomly chosen
encodings of the current batch, the usual fix for codebook collapse.

Topic alignment (our choice, exposed as a loss weight): the mean soft assignment of a pair's
tokens, softmax(-||z_e - c_k||^2 / tau), is pulled towards the pair's topic proportions
theta by cross-entropy, so code k keeps meaning topic k after initialisation.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def sq_distances(z, codebook):
  """z [..., E], codebook [K, E] -> squared L2 distances [..., K] (float32)."""
  z = z.astype(jnp.float32)
  c = codebook.astype(jnp.float32)
  return (jnp.sum(z * z, -1, keepdims=True) - 2.0 * z @ c.T + jnp.sum(c * c, -1))


def quantize(z, codebook):
  """Nearest-code quantisation with a straight-through gradient.

  Args:
    z: [..., E] encodings.
    codebook: [K, E].
  Returns:
    (z_q [..., E] equal to the chosen codes in value, gradient of identity w.r.t. z;
     codes [..., E] the chosen codes (gradient flows to the codebook);
     idx [...] int32; dist [..., K]).
  """
  dist = sq_distances(z, codebook)
  idx = jnp.argmin(dist, axis=-1).astype(jnp.int32)
  codes = jnp.take(codebook, idx, axis=0).astype(z.dtype)
  z_q = z + jax.lax.stop_gradient(codes - z)
  return z_q, codes, idx, dist


def _masked_mean(x, mask):
  """Mean of x [...] over positions where mask [...] is 1 (0 when none)."""
  mask = mask.astype(jnp.float32)
  return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def vq_losses(z, codes, mask):
  """(codebook loss, commitment loss), each a masked mean of per-token squared distance.

  z, codes [..., E]; mask [...] 1 on tokens that count.
  """
  sg = jax.lax.stop_gradient
  codebook = _masked_mean(jnp.sum((sg(z) - codes) ** 2, -1), mask)
  commitment = _masked_mean(jnp.sum((z - sg(codes)) ** 2, -1), mask)
  return codebook, commitment


def code_counts(idx, mask, num_codes: int):
  """How many valid tokens chose each code: idx [...], mask [...] -> [K] float32."""
  onehot = jax.nn.one_hot(idx, num_codes, dtype=jnp.float32)
  return jnp.sum(onehot * mask.astype(jnp.float32)[..., None], axis=tuple(range(idx.ndim)))


def perplexity(counts):
  """exp(entropy) of the code distribution given by counts [K]."""
  p = counts / jnp.maximum(jnp.sum(counts), 1e-9)
  return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-12)), 0.0)))


def update_usage(usage, counts, decay: float):
  """EMA of each code's share of tokens: usage [K] <- decay usage + (1 - decay) share."""
  share = counts / jnp.maximum(jnp.sum(counts), 1.0)
  return decay * usage + (1.0 - decay) * share


def reinit_dead(codebook, usage, z, mask, rng, threshold: float):
  """Dead codes (usage < threshold / K) <- random valid encodings of the batch.

  Args:
    codebook: [K, E]; usage: [K] EMA shares; z: [..., E] encodings; mask: [...] valid tokens.
  Returns:
    (codebook, usage with revived codes reset to 1/K, number of dead codes).
  """
  k = codebook.shape[0]
  dead = usage < threshold / k
  flat_z = z.reshape(-1, z.shape[-1]).astype(codebook.dtype)
  logits = jnp.where(mask.reshape(-1) > 0, 0.0, -jnp.inf)
  picks = jax.random.categorical(rng, logits, shape=(k,))
  fresh = jax.lax.stop_gradient(flat_z[picks])
  codebook = jnp.where(dead[:, None], fresh, codebook)
  usage = jnp.where(dead, 1.0 / k, usage)
  return codebook, usage, jnp.sum(dead)


def topic_alignment(dist, mask, theta, tau: float):
  """Cross-entropy H(theta, mean soft assignment of the pair's tokens).

  Args:
    dist: [B, T, K] squared distances; mask: [B, T]; theta: [B, K] topic proportions
    (treated as a fixed target); tau: softmax temperature over -dist.
  Returns:
    [] mean over the batch.
  """
  m = mask.astype(jnp.float32)[..., None]
  soft = jax.nn.softmax(-dist / tau, axis=-1)
  pair = jnp.sum(soft * m, 1) / jnp.maximum(jnp.sum(m, 1), 1.0)          # [B, K]
  target = jax.lax.stop_gradient(theta)
  return -jnp.mean(jnp.sum(target * jnp.log(jnp.maximum(pair, 1e-9)), -1))
