"""DisBert model: BERT cross-encoder + topic model + VQ + semantic-driven attention + head.

Forward (`DisBert.encode`) for a pair batch "[CLS] a [SEP] b [SEP]":
  1. embeddings and layers 0..L-2 of the backbone (core/models/bert.py, composed, not copied);
  2. z_e = W_p h^{L-1} [B, T, 64] per token, quantised to the topic codebook (vq.quantize);
  3. semantic-driven attention: the last layer's attention scores get an extra term
     (W_q z_q)(W_k z_q)^T * sqrt(64), shared by all heads and added after the padding mask
     (reference: transformers/models/bert/modeling_bert.py `BertSelfAttention.forward`,
     `q_query`/`q_key` Linear(64, 64), `q_attention_scores * math.sqrt(64)` at the last layer);
  4. pooled output (masked mean, or [CLS]) -> dropout -> linear head (1 logit for STS
     regression, C logits for classification).
The baseline (`use_vq=False`) is the same backbone and head without steps 2-3 (and no NTM).

Choices: the reference quantises the output of a separately trained VQ-VAE sentence encoder;
here the quantised vectors are a projection of the backbone's penultimate layer, so one
network is trained. W_q/W_k start at N(0, 0.02) so the extra attention term starts near 0
and the pretrained last layer is not disturbed at the first step.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from jaxpapers.core.models import bert as bert_lib
from jaxpapers.papers.disbert import ntm as ntm_lib
from jaxpapers.papers.disbert import vq as vq_lib

POOLS = ('mean', 'cls')


@dataclasses.dataclass(frozen=True)
class DisBertConfig:
  num_topics: int = 30          # K: topics = codebook size (reference --topic_num 30)
  topic_dim: int = 64           # E: topic embedding / code width (reference 64)
  bow_vocab: int = 2000         # V: topic-model vocabulary size
  ntm_hidden: int = 256         # topic-model encoder width
  word_norm: bool = True        # standardise topic-word logits across topics (ntm.py)
  use_vq: bool = True           # False: plain cross-encoder baseline
  sem_attention: bool = True    # inject z_q into the last layer's attention scores
  sem_scale: float = 8.0        # multiplier of the extra scores (reference sqrt(64))
  num_outputs: int = 1          # 1 (regression) or number of classes
  pool: str = 'mean'            # 'mean' (MiniLM's sentence pooling) | 'cls'
  head_dropout: float = 0.1


def _dropout(x, rate, rng):
  if rng is None or rate == 0.0:
    return x
  keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


class DisBert(nnx.Module):
  """Parameters grouped by top-level name: bert, ntm, proj, codebook, sem_query, sem_key, head."""

  def __init__(self, cfg: DisBertConfig, backbone: bert_lib.Bert, rngs: nnx.Rngs):
    self.cfg = cfg
    self.bert = backbone
    d, e = backbone.config.hidden_size, cfg.topic_dim
    small = nnx.initializers.normal(0.02)
    self.head = nnx.Linear(d, cfg.num_outputs, kernel_init=small, rngs=rngs)
    if cfg.use_vq:
      self.ntm = ntm_lib.NTM(cfg.bow_vocab, cfg.num_topics, cfg.ntm_hidden, e, rngs,
                             word_norm=cfg.word_norm)
      self.proj = nnx.Linear(d, e, rngs=rngs)
      # Replaced by the topic embeddings when the schedule says so (stage init_codebook).
      self.codebook = nnx.Param(jax.random.normal(rngs.params(), (cfg.num_topics, e)) * 0.1)
      self.sem_query = nnx.Linear(e, e, kernel_init=small, rngs=rngs)
      self.sem_key = nnx.Linear(e, e, kernel_init=small, rngs=rngs)

  def encode(self, input_ids, token_type_ids, attention_mask, dropout_rng=None,
             backbone_grad: bool = True) -> dict:
    """Pair batch [B, T] -> {'logits' [B, C]; with VQ also z_e, codes [B, T, E], idx [B, T],
    dist [B, T, K]}. `backbone_grad=False` stops gradients from the VQ losses into the
    backbone (VQ pre-training stage)."""
    b, t = input_ids.shape
    layers = self.bert.layers
    n = len(layers)
    rngs = (None,) * (n + 2) if dropout_rng is None else tuple(
        jax.random.split(dropout_rng, n + 2))
    positions = jnp.broadcast_to(jnp.arange(t), (b, t))
    with jax.named_scope('embeddings'):
      x = self.bert.embeddings(input_ids, token_type_ids, positions, rngs[0])
    bias = bert_lib.attention_bias(attention_mask)                      # [B, 1, 1, T]
    for i in range(n - 1):
      with jax.named_scope(f'layer_{i}'):
        x = layers[i](x, bias, rngs[i + 1])
    out = {}
    if self.cfg.use_vq:
      with jax.named_scope('vq'):
        h = x if backbone_grad else jax.lax.stop_gradient(x)
        z_e = self.proj(h.astype(jnp.float32))
        z_q, codes, idx, dist = vq_lib.quantize(z_e, self.codebook[...])
        out.update(z_e=z_e, codes=codes, idx=idx, dist=dist)
      if self.cfg.sem_attention:
        with jax.named_scope('semantic_attention'):
          scores = jnp.einsum('bte,bse->bts', self.sem_query(z_q), self.sem_key(z_q))
          bias = bias + self.cfg.sem_scale * scores[:, None]               # [B, 1, T, T]
    with jax.named_scope(f'layer_{n - 1}'):
      x = layers[n - 1](x, bias, rngs[n])
    with jax.named_scope('head'):
      if self.cfg.pool == 'mean':
        pooled = bert_lib.mean_pool(x, attention_mask)
      else:
        pooled = x[:, 0].astype(jnp.float32)
      out['logits'] = self.head(_dropout(pooled, self.cfg.head_dropout, rngs[n + 1]))
    return out


def build(cfg: DisBertConfig, backbone: bert_lib.Bert, seed: int) -> DisBert:
  if cfg.pool not in POOLS:
    raise ValueError(f'pool {cfg.pool!r} not in {POOLS}')
  return DisBert(cfg, backbone, nnx.Rngs(params=seed))
