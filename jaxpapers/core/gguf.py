"""GGUF (llama.cpp) files -> `layers.Decoder`: metadata, dequantisation, name map, tokenizer.

Architectures: `llama` (Llama 2/3/3.1, SmolLM2), `qwen2` (Qwen2/2.5, q/k/v biases) and `qwen3`
(per-head q/k RMSNorm, `attn_q_norm`/`attn_k_norm`); the GGUF architecture is the HF
`model_type` whose family module (`models.families`) maps the config.

Reads with the PyPI `gguf` package: `GGUFReader` memory-maps the file and
`gguf.quants.dequantize` turns each tensor's blocks into float32 (numpy, no torch). Tensors are
dequantised one at a time, cast to the requested dtype and placed on their sharding, so the host
holds one float32 tensor at a time.

What llama.cpp's converter (`convert_hf_to_gguf.py`, `LlamaModel`) changes and we undo:
  * names: `blk.N.attn_q.weight` etc.; `GGUF_KEYS` maps our parameter paths to them;
  * Llama only: Q/K rows (weights and biases) are permuted from HF's rotate-half RoPE layout to
    GPT-J's interleaved one, per head (`LlamaModel.permute`); `unpermute_qk` inverts it.
    `Qwen2Model`/`Qwen3Model` write HF's rows as they are (llama.cpp runs them with NEOX RoPE);
  * Llama 3.1 `llama3` RoPE scaling is stored as per-frequency divisors (`rope_freqs.weight`)
    rather than as parameters; `llama3_scaling_from_factors` recovers parameters that reproduce
    them (only the wavelength thresholds old_ctx/low and old_ctx/high are identifiable, so the
    original context is taken from metadata or llama.cpp's default 8192) and checks the fit;
  * tied embeddings are a missing `output.weight`.
Shapes: a GGUF tensor's numpy layout is HF's `[out, in]`; our kernels are `[in, out]`.

The tokenizer (vocabulary, merges, special tokens, chat template) is rebuilt from the metadata by
transformers' GGUF tokenizer converter, offline and without torch (`load_tokenizer`).
"""
from __future__ import annotations

import functools
import os
import pathlib
import tempfile
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import gguf as gguf_lib
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.models import loading

QType = gguf_lib.GGMLQuantizationType

# The tensor types llama.cpp uses for small dense models (the k-quant mixes Q2_K..Q6_K included).
SUPPORTED_TYPES = frozenset(QType[n] for n in (
    'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1',
    'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'))
SUPPORTED_ARCHITECTURES = ('llama', 'qwen2', 'qwen3')
PERMUTED_QK = ('llama',)   # architectures whose Q/K rows llama.cpp permutes
ROPE_FREQS = 'rope_freqs.weight'
LLAMA_CPP_ORIGINAL_CONTEXT = 8192   # convert_hf_to_gguf.py's default for llama3 rope factors

# our projection -> (parent module, GGUF name)
_PROJ = {'q': ('self_attn', 'attn_q'), 'k': ('self_attn', 'attn_k'),
         'v': ('self_attn', 'attn_v'), 'o': ('self_attn', 'attn_output'),
         'gate': ('mlp', 'ffn_gate'), 'up': ('mlp', 'ffn_up'), 'down': ('mlp', 'ffn_down')}

# (our path regex, GGUF name template, transpose) -- the `hf.KeyTable` format.
GGUF_KEYS: hf.KeyTable = [
    (r'embed_tokens\.embedding', 'token_embd.weight', False),
    (r'norm\.scale', 'output_norm.weight', False),
    (r'lm_head\.kernel', 'output.weight', True),
    (r'layers\.(\d+)\.input_layernorm\.scale', 'blk.{0}.attn_norm.weight', False),
    (r'layers\.(\d+)\.post_attention_layernorm\.scale', 'blk.{0}.ffn_norm.weight', False),
    (r'layers\.(\d+)\.self_attn\.(q|k)_norm\.scale', 'blk.{0}.attn_{1}_norm.weight', False),
] + [
    (rf'layers\.(\d+)\.{parent}\.{p}_proj\.{kind}',
     f'blk.{{0}}.{name}.{"weight" if kind == "kernel" else "bias"}', kind == 'kernel')
    for p, (parent, name) in _PROJ.items() for kind in ('kernel', 'bias')
]


class GGUFError(ValueError):
  """Unsupported architecture or tensor type, or a file that does not match its metadata."""


def open_reader(path: str | os.PathLike) -> gguf_lib.GGUFReader:
  """Memory-mapped reader, cached per file version (parsing a 49k-token vocabulary takes
  seconds, and loading the weights and then the config would parse it twice)."""
  path = pathlib.Path(path).resolve()
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no such GGUF file')
  stat = path.stat()
  return _cached_reader(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _cached_reader(path: str, mtime_ns: int, size: int) -> gguf_lib.GGUFReader:
  del mtime_ns, size   # cache key only
  return gguf_lib.GGUFReader(path)


def _reader(path_or_reader) -> gguf_lib.GGUFReader:
  if isinstance(path_or_reader, gguf_lib.GGUFReader):
    return path_or_reader
  return open_reader(path_or_reader)


def metadata(path_or_reader, max_array: int = 64) -> dict[str, Any]:
  """Metadata key -> value; arrays longer than `max_array` (vocabularies) become their length."""
  out = {}
  for key, field in _reader(path_or_reader).fields.items():
    if key.startswith('GGUF.'):
      continue
    if field.types and field.types[0] == gguf_lib.GGUFValueType.ARRAY and \
        len(field.data) > max_array:
      out[key] = len(field.data)
    else:
      out[key] = field.contents()
  return out


# ----------------------------------------------------------------------------- config


def _round(x: float) -> float:
  """Float32 metadata (or a float64 fit) as the short decimal it was written from: 1e-05."""
  return float(f'{float(x):.7g}')


def llama3_scaling_from_factors(factors: np.ndarray, rope_theta: float, head_dim: int,
                                original_context: int = LLAMA_CPP_ORIGINAL_CONTEXT):
  """`rope_scaling` dict (or None) reproducing llama.cpp's per-frequency divisors.

  Args:
    factors: [head_dim / 2] divisors of the default inverse frequencies (`rope_freqs.weight`).
  Raises:
    GGUFError if no llama3 scaling reproduces them to 1e-4.
  """
  factors = np.asarray(factors, np.float64)
  if np.allclose(factors, 1.0, rtol=0, atol=1e-6):
    return None
  factor = float(factors.max())
  inv = 1.0 / rope_theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
  y = original_context * inv / (2 * np.pi)                  # old_ctx / wavelength
  medium = (factors > 1 + 1e-6) & (factors < factor * (1 - 1e-6))
  low, high = 1.0, 4.0                                       # Llama 3.1 defaults
  if medium.sum() >= 2:
    # Medium band: 1/f = (1 - s)/factor + s with s = (y - low)/(high - low), linear in y.
    s = (1 / factors[medium] - 1 / factor) / (1 - 1 / factor)
    slope, low = np.polyfit(s, y[medium], 1)
    high = low + slope
  scaling = dict(rope_type='llama3', factor=_round(factor), low_freq_factor=_round(low),
                 high_freq_factor=_round(high), original_max_position_embeddings=original_context)
  cfg = layers.DecoderConfig(head_dim=head_dim, rope_theta=rope_theta,
                             rope_scaling=tuple(sorted(scaling.items())))
  expected = inv / np.asarray(layers.rope_inv_freq(cfg), np.float64)
  if not np.allclose(expected, factors, rtol=1e-4, atol=0):
    raise GGUFError(f'{ROPE_FREQS}: frequency factors {np.round(factors, 4).tolist()} are not a '
                    f'llama3 RoPE scaling (best fit {scaling})')
  return scaling


def hf_config(path_or_reader) -> dict[str, Any]:
  """The metadata as an HF config.json dict of its family (`model_type` = the architecture)."""
  reader = _reader(path_or_reader)
  meta = metadata(reader)
  arch = meta.get('general.architecture')
  if arch not in SUPPORTED_ARCHITECTURES:
    raise GGUFError(f'GGUF architecture {arch!r} is not supported; valid: '
                    f'{list(SUPPORTED_ARCHITECTURES)}')
  get = lambda key, default=None: meta.get(f'{arch}.{key}', default)   # noqa: E731
  tensors = {t.name: t for t in reader.tensors}
  if 'token_embd.weight' not in tensors:
    raise GGUFError('missing tensors [\'token_embd.weight\']')
  hidden, heads = int(get('embedding_length')), int(get('attention.head_count'))
  head_dim = int(get('attention.key_length', 0) or get('rope.dimension_count', 0)
                 or hidden // heads)
  if int(get('rope.dimension_count', head_dim)) != head_dim:
    raise GGUFError(f'{arch}.rope.dimension_count {get("rope.dimension_count")} != head_dim '
                    f'{head_dim}: partial rotary embeddings are not supported')
  theta = _round(get('rope.freq_base', 10000.0))
  kind = get('rope.scaling.type', 'none')
  if kind not in ('none', 'llama3'):
    raise GGUFError(f'{arch}.rope.scaling.type {kind!r} is not supported; valid: none, llama3')
  scaling = None
  if ROPE_FREQS in tensors:
    original = int(get('rope.scaling.original_context_length', LLAMA_CPP_ORIGINAL_CONTEXT))
    scaling = llama3_scaling_from_factors(dequantize(tensors[ROPE_FREQS]), theta, head_dim,
                                          original)
  bias = 'blk.0.attn_q.bias' in tensors
  return dict(
      model_type=arch, vocab_size=int(tensors['token_embd.weight'].shape[1]),
      hidden_size=hidden, intermediate_size=int(get('feed_forward_length')),
      num_hidden_layers=int(get('block_count')), num_attention_heads=heads,
      num_key_value_heads=int(get('attention.head_count_kv', heads)), head_dim=head_dim,
      rope_theta=theta, rope_scaling=scaling,
      rms_norm_eps=_round(get('attention.layer_norm_rms_epsilon', 1e-5)),
      tie_word_embeddings='output.weight' not in tensors, attention_bias=bias,
      max_position_embeddings=int(get('context_length', 4096)),
      bos_token_id=meta.get('tokenizer.ggml.bos_token_id'),
      eos_token_id=meta.get('tokenizer.ggml.eos_token_id'),
      pad_token_id=meta.get('tokenizer.ggml.padding_token_id'))


def config(path_or_reader, **overrides) -> layers.DecoderConfig:
  raw = hf_config(path_or_reader)
  return families.module_for(raw['model_type']).config_from_hf(raw, **overrides)


# ----------------------------------------------------------------------------- tensors


def dequantize(tensor) -> np.ndarray:
  """float32 array in numpy (HF `[out, in]`) layout; unsupported types raise naming the type."""
  qtype = QType(tensor.tensor_type)
  if qtype not in SUPPORTED_TYPES:
    raise GGUFError(f'tensor {tensor.name}: GGUF type {qtype.name} is not supported; valid: '
                    f'{sorted(t.name for t in SUPPORTED_TYPES)}')
  shape = tuple(int(d) for d in reversed(tensor.shape))
  return np.asarray(gguf_lib.quants.dequantize(tensor.data, qtype), np.float32).reshape(shape)


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """Inverse of llama.cpp's `LlamaModel.permute` on the rows of a q/k weight or bias.

  Args:
    w: [n_heads * head_dim, ...] rows in GGUF's interleaved (GPT-J) RoPE order.
  Returns:
    the same rows in HF's rotate-half order.
  """
  half = w.shape[0] // n_heads // 2
  return w.reshape(n_heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """llama.cpp's `LlamaModel.permute`: HF rotate-half rows -> GGUF interleaved rows."""
  half = w.shape[0] // n_heads // 2
  return w.reshape(n_heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _qk_heads(name: str, cfg: layers.DecoderConfig) -> int | None:
  """Heads to un-permute `name`'s rows over, or None where llama.cpp kept HF's order."""
  if cfg.family not in PERMUTED_QK:
    return None
  if '.attn_q.' in name:
    return cfg.num_attention_heads
  if '.attn_k.' in name:
    return cfg.num_key_value_heads
  return None


def _place(value: np.ndarray, sharding) -> jax.Array:
  if sharding is None:
    return jnp.asarray(value)
  return jax.make_array_from_callback(value.shape, sharding, lambda idx: value[idx])


def load_params(reader, cfg: layers.DecoderConfig, abstract: Mapping,
                shardings: Mapping | None = None) -> dict:
  """Pure-dict params shaped like `abstract`, dequantised tensor by tensor."""
  tensors = {t.name: t for t in reader.tensors}
  flat_abs, flat_shard = hf.flatten(abstract), hf.flatten(shardings or {})
  wanted = {our: hf.hf_key(our, GGUF_KEYS) for our in flat_abs}
  missing = sorted(name for name, _ in wanted.values() if name not in tensors)
  if missing:
    raise GGUFError(f'missing tensors {missing[:5]}')
  unexpected = sorted(set(tensors) - {n for n, _ in wanted.values()} - {ROPE_FREQS})
  if unexpected:
    raise GGUFError(f'unexpected tensors {unexpected[:5]} (not a {cfg.family} layout?)')
  out = {}
  for our_path, (name, transpose) in wanted.items():
    spec = flat_abs[our_path]
    value = dequantize(tensors[name])
    if (heads := _qk_heads(name, cfg)) is not None:
      value = unpermute_qk(value, heads)
    value = value.T if transpose else value
    if value.shape != tuple(spec.shape):
      raise GGUFError(f'tensor {name} has shape {value.shape} as {our_path}, expected '
                      f'{tuple(spec.shape)}')
    out[our_path] = _place(np.asarray(value, dtype=spec.dtype), flat_shard.get(our_path))
  return hf.unflatten_like(out, abstract)


def load_decoder(path: str | os.PathLike, dtype: str | None = None, mesh=None,
                 **overrides) -> layers.Decoder:
  """A `.gguf` file as a Decoder in `dtype` (default float32); sharded when `mesh` is set."""
  reader = _reader(path)
  cfg = config(reader, **overrides)
  if dtype is not None:
    cfg = cfg.replace(param_dtype=dtype, dtype=dtype)
  graphdef, state, abstract = hf.abstract_params(lambda: layers.Decoder(cfg, nnx.Rngs(0)))
  shardings = mesh_lib.param_shardings(state, mesh) if mesh is not None else None
  return nnx.merge(graphdef, load_params(reader, cfg, abstract, shardings))


# ----------------------------------------------------------------------------- tokenizer, HF


def has_tokenizer(path_or_reader) -> bool:
  return 'tokenizer.ggml.tokens' in _reader(path_or_reader).fields


def tokenizer_fields(path_or_reader) -> tuple[str, dict, dict]:
  """(architecture, tokenizer dict, tokenizer_config kwargs) as transformers'
  `get_gguf_tokenizer` builds them, read from our (cached) reader instead of its own."""
  from transformers.integrations.gguf import gguf_tokenizer_mapping as mapping
  reader = _reader(path_or_reader)
  if not has_tokenizer(reader):
    raise GGUFError('no tokenizer metadata (tokenizer.ggml.tokens) in the GGUF file')
  fields = reader.fields
  groups = {group: {name: fields[f'tokenizer.{key}'].contents()
                    for key, name in renames.items() if f'tokenizer.{key}' in fields}
            for group, renames in mapping.GGUF_TOKENIZER_MAPPING.items()}
  tokenizer, config = groups['tokenizer'], groups['tokenizer_config']
  if tokenizer.get('tokenizer_type') == 'llama':
    config.setdefault('add_bos_token', True)   # llama.cpp adds BOS to sentencepiece vocabularies
  for name, key in (('bos_token', 'bos_token_id'), ('eos_token', 'eos_token_id'),
                    ('unk_token', 'unknown_token_id'), ('pad_token', 'padding_token_id')):
    index = fields[f'tokenizer.ggml.{key}'].contents() if f'tokenizer.ggml.{key}' in fields \
        else None
    config[name] = tokenizer['tokens'][index] if index is not None else None
  return fields['general.architecture'].contents(), tokenizer, config


@functools.lru_cache(maxsize=4)
def load_tokenizer(path: str | os.PathLike):
  """The GGUF's tokenizer (vocabulary, merges, special tokens, chat template), offline.

  Same conversion as `AutoTokenizer.from_pretrained(dir, gguf_file=name)` (transformers'
  `convert_gguf_tokenizer`), but fed from our reader: transformers 5's own GGUF reader
  imports torch, and this way the file's metadata is parsed once.
  """
  os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
  import transformers
  from transformers.integrations.gguf import gguf_tokenizer_mapping as mapping
  arch, tokenizer, config = tokenizer_fields(path)
  backend, extra = mapping.convert_gguf_tokenizer(arch, tokenizer)
  tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, **config, **extra)
  if tok.pad_token_id is None:
    tok.pad_token = tok.eos_token
  return tok


def to_hf_dir(path: str | os.PathLike, out_dir: str | os.PathLike, dtype: str | None = None,
              tokenizer: bool = True) -> pathlib.Path:
  """Writes the GGUF as an HF directory of its family (config.json, safetensors, tokenizer).

  The weights are the dequantised values (float32 unless `dtype`); transformers'
  `AutoModelForCausalLM.from_pretrained(out_dir)` loads it.
  """
  model = load_decoder(path)
  raw = hf_config(path)
  hf_cfg = families.module_for(model.config.family).config_to_hf(model.config)
  hf_cfg.update({k: raw[k] for k in ('bos_token_id', 'eos_token_id', 'pad_token_id')})
  with tempfile.TemporaryDirectory() as tok_dir:
    if tokenizer and has_tokenizer(path):
      load_tokenizer(path).save_pretrained(tok_dir)
    return loading.save_decoder(model, out_dir, hf_cfg, dtype=dtype, tokenizer_dir=tok_dir)
