"""Gaussian-softmax neural topic model (GSM, Miao et al. 2017) over a pair's bag of words.

Encoder: BoW counts -> MLP -> (mu, logvar) of a K-dim Gaussian; theta = softmax(z) with
z = mu + sigma * eps (reparameterised). Decoder: the topic-word distribution is
beta = softmax(T W^T) [K, V] from topic embeddings T [K, E] and word embeddings W [V, E]
(E = 64, the topic-embedding width of the reference). The loss is the negative ELBO per
document: -sum_v x_v log (theta @ beta)_v + KL(N(mu, sigma^2) || N(0, I)).

Choice: the reference GSM (topic_model/GSM.py) decodes with a plain linear K -> V layer and
keeps topic embeddings apart; we factor the decoder through T so that the embeddings that
seed the VQ codebook are exactly the ones that define the topics.

Choice (`word_norm`, default on): each word's logits T W_v^T are standardised across the K
topics before the softmax, so no word can score alike in every topic. On STS-B pairs (~9
BoW words each) the plain decoder collapses into near-identical topics ("said percent new
president ..." in most of them); standardised, the 30 topics' top-10 words are 97% distinct
and the reconstruction NLL is lower (56.4 vs 61.3 nats per pair, 100 epochs, same seed).
The same remedy as ProdLDA's batch norm on the decoder output, without batch statistics.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def dense_bow(ids, counts, vocab_size: int):
  """Sparse (ids [B, W], counts [B, W]) -> dense counts [B, V] float32."""
  rows = jnp.broadcast_to(jnp.arange(ids.shape[0])[:, None], ids.shape)
  return jnp.zeros((ids.shape[0], vocab_size), jnp.float32).at[rows, ids].add(counts)


def kl_standard_normal(mu, logvar):
  """KL(N(mu, exp(logvar)) || N(0, I)) per row: mu, logvar [B, K] -> [B]."""
  return -0.5 * jnp.sum(1.0 + logvar - mu ** 2 - jnp.exp(logvar), axis=-1)


def reconstruction_nll(bow, log_theta, log_beta):
  """-sum_v x_v log sum_k theta_k beta_kv.

  The mixture is one [B, K] @ [K, V] matmul in probability space (both factors are
  softmax outputs, so it is >= the smallest beta and needs only a floor against log 0); a
  log-space logsumexp would materialise [B, K, V] and was ~20x slower on CPU.

  Args:
    bow: [B, V] word counts.
    log_theta: [B, K] log document-topic proportions.
    log_beta: [K, V] log topic-word distributions.
  Returns:
    [B] negative log-likelihood of each document's words.
  """
  p = jnp.exp(log_theta) @ jnp.exp(log_beta)                                  # [B, V]
  return -jnp.sum(bow * jnp.log(jnp.maximum(p, 1e-30)), axis=-1)


class NTM(nnx.Module):
  """BoW encoder + topic/word embeddings; parameters only, the math is in the functions."""

  def __init__(self, vocab_size: int, num_topics: int, hidden: int, topic_dim: int,
               rngs: nnx.Rngs, word_norm: bool = True):
    init = nnx.initializers.normal(0.02)
    self.word_norm = word_norm
    self.enc1 = nnx.Linear(vocab_size, hidden, kernel_init=init, rngs=rngs)
    self.enc2 = nnx.Linear(hidden, hidden, kernel_init=init, rngs=rngs)
    self.mu = nnx.Linear(hidden, num_topics, kernel_init=init, rngs=rngs)
    self.logvar = nnx.Linear(hidden, num_topics, kernel_init=init, rngs=rngs)
    self.topic_emb = nnx.Param(jax.random.normal(rngs.params(), (num_topics, topic_dim)) * 0.1)
    self.word_emb = nnx.Param(jax.random.normal(rngs.params(), (vocab_size, topic_dim)) * 0.1)

  def encode(self, bow):
    """[B, V] counts -> (mu, logvar) [B, K]; log1p keeps long documents from saturating."""
    h = jax.nn.softplus(self.enc1(jnp.log1p(bow)))
    h = jax.nn.softplus(self.enc2(h))
    return self.mu(h), self.logvar(h)

  def log_beta(self):
    """[K, V] log topic-word distributions."""
    logits = self.topic_emb[...] @ self.word_emb[...].T
    if self.word_norm:  # see the module docstring
      logits = jax.nn.standardize(logits, axis=0, epsilon=1e-5, algorithm='stable')
    return jax.nn.log_softmax(logits, axis=-1)

  def __call__(self, bow, rng=None):
    """Returns per-document (nll [B], kl [B], theta [B, K]); rng None = use the mean."""
    mu, logvar = self.encode(bow)
    z = mu if rng is None else mu + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape)
    log_theta = jax.nn.log_softmax(z, axis=-1)
    nll = reconstruction_nll(bow, log_theta, self.log_beta())
    return nll, kl_standard_normal(mu, logvar), jnp.exp(log_theta)


def top_words(log_beta, vocab, n: int = 10) -> list[list[str]]:
  """The n most probable words of each topic."""
  order = jnp.argsort(-log_beta, axis=-1)[:, :n]
  return [[vocab[int(i)] for i in row] for row in jax.device_get(order)]


def diversity(topics: list[list[str]]) -> float:
  """Topic diversity: the fraction of distinct words among all topics' top words (1 = no
  word is shared; near-duplicate topics score ~1/K)."""
  words = [w for t in topics for w in t]
  return len(set(words)) / max(1, len(words))
