"""Generic decoder blocks shared by every LLM family (Qwen2/2.5/3, Llama, SmolLM2).

A family differs only in a `DecoderConfig` (biases, q/k norms, RoPE scaling, tied
embeddings) and in its HF key table; the modules here are composed, never subclassed.

Parameters carry logical axis names in their `axes` metadata (`embed`, `mlp`, `heads`,
`kv_heads`, `vocab`); `jaxpapers.core.mesh` maps them to mesh axes. Linear kernels are
stored [in, out] (the transpose of HF's [out, in]).

KV cache: a pytree of per-layer `[B, Hkv, S, Dh]` arrays written at `cache_index` (heads
before slots, so the attention dots read the cache in place; a `[B, S, Hkv, Dh]` cache was
transposed whole by XLA every decode step).
Queries at slot `cache_index + t` attend to key slots `<= cache_index + t` that are valid
in `kv_mask`; with left-padded prompts the pad slots are simply invalid, so rows of
different lengths share one cache index.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
from flax import nnx

_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


def dtype_name(dtype) -> str:
  """'bfloat16', jnp.bfloat16, np.dtype('bfloat16') -> 'bfloat16': the one form configs store
  (config.json and our dataclasses must stay JSON-serialisable)."""
  try:
    name = dtype if isinstance(dtype, str) else jnp.dtype(dtype).name
  except TypeError:
    name = None
  if name not in _DTYPES:
    raise ValueError(f'dtype: unknown {dtype!r}; valid: {sorted(_DTYPES)}')
  return name


def as_dtype(name_or_dtype) -> Any:
  """'bfloat16', jnp.bfloat16 or np.dtype('bfloat16') -> jnp.bfloat16."""
  return _DTYPES[dtype_name(name_or_dtype)]


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """Architecture of a decoder-only LM; field names follow HF config.json where possible."""
  family: str = 'qwen3'                # key into the HF key-table registry (jaxpapers.core.hf)
  vocab_size: int = 151936
  hidden_size: int = 64
  intermediate_size: int = 128
  num_hidden_layers: int = 2
  num_attention_heads: int = 4
  num_key_value_heads: int = 2
  head_dim: int = 16
  rope_theta: float = 1_000_000.0
  rope_scaling: tuple | None = None    # llama3 scaling as a sorted tuple of (key, value) pairs
  rms_norm_eps: float = 1e-6
  tie_word_embeddings: bool = True
  attention_bias: bool = False         # q/k/v biases (Qwen2/2.5)
  qk_norm: bool = False                # RMSNorm on q and k per head (Qwen3)
  o_proj_bias: bool = False            # o_proj bias (HF Qwen3/Llama when attention_bias)
  max_position_embeddings: int = 32768
  dtype: str = 'float32'               # compute dtype
  param_dtype: str = 'float32'         # storage dtype
  remat: bool = False                  # rematerialise each block in the backward pass

  def __post_init__(self):
    for field in ('dtype', 'param_dtype'):   # jnp/numpy dtypes are accepted, names stored
      object.__setattr__(self, field, dtype_name(getattr(self, field)))

  def replace(self, **kw) -> 'DecoderConfig':
    return dataclasses.replace(self, **kw)

  @property
  def num_params(self) -> int:
    d, f, h, kv, dh = (self.hidden_size, self.intermediate_size, self.num_attention_heads,
                       self.num_key_value_heads, self.head_dim)
    attn = (d * dh * (2 * h + 2 * kv) + (dh * (h + 2 * kv) if self.attention_bias else 0)
            + (d if self.o_proj_bias else 0))
    block = attn + 3 * d * f + 2 * d + (2 * dh if self.qk_norm else 0)
    emb = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
    return self.num_hidden_layers * block + emb + d


# ----------------------------------------------------------------------------- params


def _param(rngs: nnx.Rngs, shape, axes, cfg: DecoderConfig, scale: float | None = None):
  """Normal(0, scale) init (scale defaults to 1/sqrt(fan_in)), tagged with logical axes."""
  scale = 1.0 / math.sqrt(shape[0]) if scale is None else scale
  value = scale * jax.random.normal(rngs.params(), shape, jnp.float32)
  return nnx.Param(value.astype(as_dtype(cfg.param_dtype)), axes=axes)


def _const(shape, value, axes, cfg: DecoderConfig):
  return nnx.Param(jnp.full(shape, value, as_dtype(cfg.param_dtype)), axes=axes)


def matmul(x, w):
  """x @ w accumulated in float32, returned in x's dtype. Same numbers as a plain bf16 dot
  on GPU/TPU (which accumulate in f32 anyway); XLA's CPU backend lowers bf16 x bf16 -> bf16
  to a slow generic kernel but bf16 x bf16 -> f32 to its fast f32 one (bf16 decode 1.5x
  faster, `bench.sampler --dtype=bfloat16`)."""
  return jnp.dot(x, w, preferred_element_type=jnp.float32).astype(x.dtype)


class Linear(nnx.Module):
  """y = x @ kernel (+ bias); kernel [in, out] with logical axes `axes`."""

  def __init__(self, din, dout, axes, cfg: DecoderConfig, rngs: nnx.Rngs, bias=False):
    self.kernel = _param(rngs, (din, dout), axes, cfg)
    self.bias = _const((dout,), 0.0, axes[1:], cfg) if bias else None
    self.dtype = as_dtype(cfg.dtype)

  def __call__(self, x):
    y = matmul(x.astype(self.dtype), self.kernel[...].astype(self.dtype))
    return y if self.bias is None else y + self.bias[...].astype(self.dtype)


class RMSNorm(nnx.Module):
  """RMSNorm computed in float32 (as HF does), weight multiplies after the cast back."""

  def __init__(self, dim, eps, cfg: DecoderConfig, axes=('embed',)):
    self.scale = _const((dim,), 1.0, axes, cfg)
    self.eps = eps

  def __call__(self, x):
    dtype = x.dtype
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return self.scale[...].astype(dtype) * x32.astype(dtype)


class Embed(nnx.Module):

  def __init__(self, cfg: DecoderConfig, rngs: nnx.Rngs):
    self.embedding = _param(rngs, (cfg.vocab_size, cfg.hidden_size), ('vocab', 'embed'), cfg,
                            scale=0.02)
    self.dtype = as_dtype(cfg.dtype)

  def __call__(self, tokens):
    return jnp.take(self.embedding[...], tokens, axis=0).astype(self.dtype)

  def attend(self, x):
    """Tied output projection: logits = x @ E^T."""
    return matmul(x.astype(self.dtype), self.embedding[...].astype(self.dtype).T)


# ----------------------------------------------------------------------------- RoPE


def rope_inv_freq(cfg: DecoderConfig) -> jax.Array:
  """Inverse frequencies [Dh/2], with Llama-3 frequency scaling when configured."""
  dh = cfg.head_dim
  inv = 1.0 / (cfg.rope_theta ** (jnp.arange(0, dh, 2, dtype=jnp.float32) / dh))
  scaling = dict(cfg.rope_scaling or ())
  kind = scaling.get('rope_type', scaling.get('type'))
  if kind in (None, 'default'):
    return inv
  if kind != 'llama3':
    raise ValueError(f'rope_scaling: unsupported rope_type {kind!r}; valid: default, llama3')
  # transformers: modeling_rope_utils._compute_llama3_parameters.
  factor, lo, hi = scaling['factor'], scaling['low_freq_factor'], scaling['high_freq_factor']
  old_ctx = scaling['original_max_position_embeddings']
  wavelen = 2 * math.pi / inv
  inv_low = jnp.where(wavelen > old_ctx / lo, inv / factor, inv)
  smooth = (old_ctx / wavelen - lo) / (hi - lo)
  smoothed = (1 - smooth) * inv_low / factor + smooth * inv_low
  medium = (wavelen >= old_ctx / hi) & (wavelen <= old_ctx / lo)
  return jnp.where(medium, smoothed, inv_low)


def apply_rope(x, positions, inv_freq):
  """Rotate-half RoPE (HF convention). x [B, T, H, Dh], positions [B, T]."""
  angles = positions.astype(jnp.float32)[..., None] * inv_freq      # [B, T, Dh/2]
  cos = jnp.concatenate([jnp.cos(angles)] * 2, -1)[:, :, None, :]
  sin = jnp.concatenate([jnp.sin(angles)] * 2, -1)[:, :, None, :]
  x32 = x.astype(jnp.float32)
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x32[..., half:], x32[..., :half]], -1)
  return (x32 * cos + rotated * sin).astype(x.dtype)


# ----------------------------------------------------------------------------- blocks


@flax.struct.dataclass
class LayerCache:
  k: jax.Array  # [B, Hkv, S, Dh]
  v: jax.Array  # [B, Hkv, S, Dh]


def init_cache(cfg: DecoderConfig, batch: int, max_len: int, dtype=None) -> list[LayerCache]:
  dtype = as_dtype(dtype or cfg.dtype)
  shape = (batch, cfg.num_key_value_heads, max_len, cfg.head_dim)
  return [LayerCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))
          for _ in range(cfg.num_hidden_layers)]


def attention_bias(q_slots, kv_mask):
  """Additive mask: causal by slot index, and only valid key slots.

  Args:
    q_slots: [B, T] cache slot of each query.
    kv_mask: [B, S] 1 where a key slot holds a real token.
  Returns:
    [B, 1, T, S] float32 bias (0 or -inf-ish).
  """
  k_slots = jnp.arange(kv_mask.shape[1])
  ok = (k_slots[None, None, :] <= q_slots[:, :, None]) & (kv_mask[:, None, :] > 0)
  return jnp.where(ok, 0.0, jnp.finfo(jnp.float32).min)[:, None]


class Attention(nnx.Module):

  def __init__(self, cfg: DecoderConfig, rngs: nnx.Rngs):
    d, h, kv, dh = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    self.cfg = cfg
    self.q_proj = Linear(d, h * dh, ('embed', 'heads'), cfg, rngs, bias=cfg.attention_bias)
    self.k_proj = Linear(d, kv * dh, ('embed', 'kv_heads'), cfg, rngs, bias=cfg.attention_bias)
    self.v_proj = Linear(d, kv * dh, ('embed', 'kv_heads'), cfg, rngs, bias=cfg.attention_bias)
    self.o_proj = Linear(h * dh, d, ('heads', 'embed'), cfg, rngs, bias=cfg.o_proj_bias)
    if cfg.qk_norm:
      self.q_norm = RMSNorm(dh, cfg.rms_norm_eps, cfg, axes=(None,))
      self.k_norm = RMSNorm(dh, cfg.rms_norm_eps, cfg, axes=(None,))
    else:
      self.q_norm = self.k_norm = None

  def __call__(self, x, positions, inv_freq, bias, cache: LayerCache | None, cache_index):
    cfg = self.cfg
    b, t, _ = x.shape
    q = self.q_proj(x).reshape(b, t, cfg.num_attention_heads, cfg.head_dim)
    k = self.k_proj(x).reshape(b, t, cfg.num_key_value_heads, cfg.head_dim)
    v = self.v_proj(x).reshape(b, t, cfg.num_key_value_heads, cfg.head_dim)
    if self.q_norm is not None:
      q, k = self.q_norm(q), self.k_norm(k)
    q, k = apply_rope(q, positions, inv_freq), apply_rope(k, positions, inv_freq)
    k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)     # [B, Hkv, T, Dh]
    if cache is not None:
      k = jax.lax.dynamic_update_slice(cache.k, k.astype(cache.k.dtype), (0, 0, cache_index, 0))
      v = jax.lax.dynamic_update_slice(cache.v, v.astype(cache.v.dtype), (0, 0, cache_index, 0))
      cache = LayerCache(k, v)
    out = _gqa_attention(q, k.astype(q.dtype), v.astype(q.dtype), bias)
    return self.o_proj(out.reshape(b, t, -1)), cache


def _gqa_attention(q, k, v, bias):
  """Grouped-query attention without repeating K/V. q [B,T,H,D], k/v [B,Hkv,S,D]."""
  b, t, h, dh = q.shape
  kv = k.shape[1]
  g = h // kv
  # Queries as [B, Hkv, G*T, D]: both dots are then plain batched matmuls over (B, Hkv),
  # which XLA:CPU runs ~2x faster than the 5-d einsum with T between the batch dims.
  q = q.reshape(b, t, kv, g, dh).transpose(0, 2, 3, 1, 4).reshape(b, kv, g * t, dh)
  scores = jnp.einsum('bkqd,bksd->bkqs', q, k).reshape(b, kv, g, t, -1)
  scores = scores.astype(jnp.float32) / math.sqrt(dh) + bias[:, :, None]  # bias [B,1,1,T,S]
  probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype).reshape(b, kv, g * t, -1)
  out = jnp.einsum('bkqs,bksd->bkqd', probs, v).reshape(b, kv, g, t, dh)
  return out.transpose(0, 3, 1, 2, 4).reshape(b, t, h, dh)


class MLP(nnx.Module):
  """SwiGLU: down(silu(gate(x)) * up(x))."""

  def __init__(self, cfg: DecoderConfig, rngs: nnx.Rngs):
    d, f = cfg.hidden_size, cfg.intermediate_size
    self.gate_proj = Linear(d, f, ('embed', 'mlp'), cfg, rngs)
    self.up_proj = Linear(d, f, ('embed', 'mlp'), cfg, rngs)
    self.down_proj = Linear(f, d, ('mlp', 'embed'), cfg, rngs)

  def __call__(self, x):
    return self.down_proj(jax.nn.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderBlock(nnx.Module):

  def __init__(self, cfg: DecoderConfig, rngs: nnx.Rngs):
    self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg)
    self.self_attn = Attention(cfg, rngs)
    self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg)
    self.mlp = MLP(cfg, rngs)

  def __call__(self, x, positions, inv_freq, bias, cache, cache_index):
    h, cache = self.self_attn(self.input_layernorm(x), positions, inv_freq, bias, cache,
                              cache_index)
    x = x + h
    return x + self.mlp(self.post_attention_layernorm(x)), cache


class Decoder(nnx.Module):
  """Token ids -> logits, optionally reading/writing a KV cache."""

  def __init__(self, cfg: DecoderConfig, rngs: nnx.Rngs):
    self.config = cfg
    self.embed_tokens = Embed(cfg, rngs)
    self.layers = nnx.List([DecoderBlock(cfg, rngs) for _ in range(cfg.num_hidden_layers)])
    self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg)
    self.lm_head = (None if cfg.tie_word_embeddings else
                    Linear(cfg.hidden_size, cfg.vocab_size, ('embed', 'vocab'), cfg, rngs))

  def hidden_states(self, tokens, positions=None, kv_mask=None, cache=None, cache_index=0):
    """Final normed hidden states [B, T, D] and the updated cache.

    Args:
      tokens: [B, T] int token ids.
      positions: [B, T] RoPE positions; default 0..T-1.
      kv_mask: [B, S] 1 for valid key slots (S = T without cache, cache length with one);
        default all valid.
      cache: per-layer LayerCache list or None.
      cache_index: slot where `tokens[:, 0]` is written.
    """
    b, t = tokens.shape
    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(t), (b, t))
    s = t if cache is None else cache[0].k.shape[2]
    if kv_mask is None:
      kv_mask = jnp.ones((b, s), jnp.int32)
    q_slots = cache_index + jnp.broadcast_to(jnp.arange(t), (b, t))
    bias = attention_bias(q_slots, kv_mask)
    inv_freq = rope_inv_freq(self.config)
    x = self.embed_tokens(tokens)
    new_cache = []
    for i, layer in enumerate(self.layers):
      with jax.named_scope(f'layer_{i}'):
        layer_cache = None if cache is None else cache[i]
        if self.config.remat and cache is None:
          x, layer_cache = nnx.remat(lambda blk, *a: blk(*a))(
              layer, x, positions, inv_freq, bias, layer_cache, cache_index)
        else:
          x, layer_cache = layer(x, positions, inv_freq, bias, layer_cache, cache_index)
        new_cache.append(layer_cache)
    return self.norm(x), (None if cache is None else new_cache)

  def logits_from_hidden(self, h):
    with jax.named_scope('lm_head'):
      if self.lm_head is None:
        return self.embed_tokens.attend(h)
      return self.lm_head(h)

  def __call__(self, tokens, positions=None, kv_mask=None, cache=None, cache_index=0):
    """Logits [B, T, V] (compute dtype) and the updated cache (None without one)."""
    h, cache = self.hidden_states(tokens, positions, kv_mask, cache, cache_index)
    return self.logits_from_hidden(h), cache
