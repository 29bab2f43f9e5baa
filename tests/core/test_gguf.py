"""GGUF import: files written here with `gguf`'s GGUFWriter the way llama.cpp's converter does
(its tensor-name map, its Q/K row permutation, its llama3 `rope_freqs`) load back to the source
params and logits -- exactly in F32, within quantisation error for Q8_0/Q4_0/Q4_1 -- and the
shipped SmolLM2-135M-Instruct GGUF answers a question. Also: dequantisers, errors, converter.

The writer deliberately does not use `jaxpapers.core.gguf`'s name map or permutation, so a
mistake there cannot cancel out in the round trip.
"""
import functools
import json
import math
import time

import chex
import gguf as gguf_lib
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from transformers.convert_slow_tokenizer import bytes_to_unicode

from jaxpapers import launch
from jaxpapers.core import assets
from jaxpapers.core import config as config_lib
from jaxpapers.core import gguf
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tokenizer_lib
from jaxpapers.core.models import layers
from jaxpapers.core.models import llama
from jaxpapers.core.models import loading

QType = gguf_lib.GGMLQuantizationType
ATOL = 1e-4
# Byte-level BPE of 256 tokens laid out like SmolLM2's: 251 of the 256 byte symbols, two
# merges, three control tokens (unk 253, bos 254, eos 255).
_TOKENS = ([bytes_to_unicode()[b] for b in range(251)] +
           ['he', 'll', '<|endoftext|>', '<|im_start|>', '<|im_end|>'])
_CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                  "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                  "{% endif %}")


# ----------------------------------------------------------------------------- writer


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
  """convert_hf_to_gguf.py `LlamaModel.permute` (HF rotate-half rows -> interleaved)."""
  return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
          .swapaxes(1, 2).reshape(w.shape))


def llama_cpp_rope_factors(cfg: layers.DecoderConfig) -> np.ndarray:
  """convert_hf_to_gguf.py `LlamaModel.generate_extra_tensors` (llama3 `rope_freqs`)."""
  s = dict(cfg.rope_scaling)
  factor, lo, hi, old = (s['factor'], s['low_freq_factor'], s['high_freq_factor'],
                         s['original_max_position_embeddings'])
  out = []
  for i in range(0, cfg.head_dim, 2):
    wavelen = 2 * math.pi * cfg.rope_theta ** (i / cfg.head_dim)
    if wavelen < old / hi:
      out.append(1.0)
    elif wavelen > old / lo:
      out.append(factor)
    else:
      smooth = (old / wavelen - lo) / (hi - lo)
      out.append(1 / ((1 - smooth) / factor + smooth))
  return np.asarray(out, np.float32)


def _add_metadata(w, cfg: layers.DecoderConfig, tokenizer: bool):
  w.add_block_count(cfg.num_hidden_layers)
  w.add_context_length(cfg.max_position_embeddings)
  w.add_embedding_length(cfg.hidden_size)
  w.add_feed_forward_length(cfg.intermediate_size)
  w.add_head_count(cfg.num_attention_heads)
  w.add_head_count_kv(cfg.num_key_value_heads)
  w.add_key_length(cfg.head_dim)
  w.add_value_length(cfg.head_dim)
  w.add_rope_dimension_count(cfg.head_dim)
  w.add_rope_freq_base(cfg.rope_theta)
  w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
  w.add_vocab_size(cfg.vocab_size)
  if tokenizer:
    w.add_tokenizer_model('gpt2')
    w.add_tokenizer_pre('smollm')
    w.add_token_list(_TOKENS)
    w.add_token_types([1] * 253 + [3, 3, 3])
    w.add_unk_token_id(253)
    w.add_token_merges(['h e', 'l l'])
    w.add_bos_token_id(254)
    w.add_eos_token_id(255)
    w.add_pad_token_id(255)
    w.add_chat_template(_CHAT_TEMPLATE)


def _close(w: gguf_lib.GGUFWriter):
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()


def write_gguf(path, model: layers.Decoder, qtype: QType = QType.F32, tokenizer=False,
               arch='llama', override: dict | None = None, drop=()):
  """Writes `model` as llama.cpp would: 2-D weights in `qtype`, norms F32.

  Args:
    override: GGUF tensor name -> (raw numpy data, QType) written instead of the real tensor.
    drop: GGUF tensor names left out.
  """
  cfg = model.config
  # llama.cpp's Qwen2Model/Qwen3Model keep HF's q/k rows; only LlamaModel permutes them.
  qwen = arch in ('qwen2', 'qwen3')
  names = gguf_lib.get_tensor_name_map(
      gguf_lib.MODEL_ARCH[arch.upper()] if qwen else gguf_lib.MODEL_ARCH.LLAMA,
      cfg.num_hidden_layers)
  w = gguf_lib.GGUFWriter(str(path), arch)
  _add_metadata(w, cfg, tokenizer)
  tensors = hf.to_hf_tensors(loading.params_of(model), hf.KEY_TABLES.get('decoder'))
  for hf_name, value in sorted(tensors.items()):
    name = names.get_name(hf_name, try_suffixes=('.weight', '.bias'))
    if name in drop:
      continue
    if not qwen and name.startswith('blk.') and name.split('.')[2] in ('attn_q', 'attn_k'):
      heads = cfg.num_attention_heads if '.attn_q.' in name else cfg.num_key_value_heads
      value = llama_cpp_permute(value, heads)
    data, kind = (override or {}).get(name, (None, qtype if value.ndim == 2 else QType.F32))
    if data is None:
      data = gguf_lib.quants.quantize(value.astype(np.float32), kind)
    w.add_tensor(name, data, raw_dtype=None if kind in (QType.F32, QType.F16) else kind)
  if cfg.rope_scaling:
    w.add_tensor(gguf.ROPE_FREQS, llama_cpp_rope_factors(cfg))
  _close(w)
  return path


def reference_params(model: layers.Decoder, qtype: QType) -> dict:
  """Source params through gguf's own quantise -> dequantise, per HF-layout row (2-D only)."""
  table = hf.KEY_TABLES.get('decoder')
  params = loading.params_of(model)
  tensors = hf.to_hf_tensors(params, table)
  out = {}
  for our_path in hf.flatten(params):
    key, transpose = hf.hf_key(our_path, table)
    value = tensors[key]
    if value.ndim == 2:
      value = gguf_lib.quants.dequantize(gguf_lib.quants.quantize(value, qtype), qtype)
    out[our_path] = np.asarray(value.T if transpose else value, np.float32)
  return hf.unflatten_like(out, params)


# ----------------------------------------------------------------------------- helpers


def _golden(golden_dir, name):
  path = golden_dir / 'llama' / name
  with np.load(path / 'golden.npz') as f:
    return llama.from_pretrained(path), dict(f)


@functools.partial(jax.jit, static_argnums=0)
def _logits(graphdef, state, tokens, positions, kv_mask):
  return nnx.merge(graphdef, state)(tokens, positions=positions, kv_mask=kv_mask)[0]


def _forward(model, batch):
  graphdef, state = nnx.split(model)
  return np.asarray(_logits(graphdef, state, batch['input_ids'], batch['position_ids'],
                            batch['attention_mask']), np.float32)


def _max_err(actual, expected, mask):
  keep = np.asarray(mask) > 0
  return float(np.abs(actual[keep] - expected[keep]).max())


def _as_np(params):
  return jax.tree.map(lambda x: np.asarray(x, np.float32), params)


# ----------------------------------------------------------------------------- F32 round trip


@pytest.mark.parametrize('name', ['llama_tied', 'llama_untied', 'llama3_scaled_tied'])
def test_load_decoder_f32_gguf_params_exact_and_logits_match_torch(golden_dir, tmp_path, name):
  source, batch = _golden(golden_dir, name)
  model = llama.from_pretrained(write_gguf(tmp_path / 'm.gguf', source))
  chex.assert_trees_all_equal(loading.params_of(model), loading.params_of(source))
  assert model.config.tie_word_embeddings == source.config.tie_word_embeddings
  np.testing.assert_array_equal(layers.rope_inv_freq(model.config),
                                layers.rope_inv_freq(source.config))
  logits = _forward(model, batch)
  np.testing.assert_array_equal(logits, _forward(source, batch))
  err = _max_err(logits, batch['logits'], batch['attention_mask'])
  print(f'{name} F32 GGUF: max |ours - torch| = {err:.2e}')
  assert err < ATOL


def test_hf_config_reads_sizes_and_recovers_llama3_scaling(golden_dir, tmp_path):
  source, _ = _golden(golden_dir, 'llama3_scaled_tied')
  raw = gguf.hf_config(write_gguf(tmp_path / 'm.gguf', source))
  cfg = source.config
  assert (raw['vocab_size'], raw['hidden_size'], raw['head_dim'], raw['num_key_value_heads'],
          raw['rms_norm_eps'], raw['tie_word_embeddings']) == (
              cfg.vocab_size, cfg.hidden_size, cfg.head_dim, cfg.num_key_value_heads,
              cfg.rms_norm_eps, True)
  assert raw['rope_scaling']['rope_type'] == 'llama3'
  assert raw['rope_scaling']['factor'] == dict(cfg.rope_scaling)['factor']


def test_llama3_scaling_from_factors_recovers_llama31_and_rejects_other_factors():
  cfg = llama.preset('llama3.1-8b')
  scaling = gguf.llama3_scaling_from_factors(llama_cpp_rope_factors(cfg), cfg.rope_theta,
                                             cfg.head_dim)
  assert scaling == dict(cfg.rope_scaling)
  with pytest.raises(gguf.GGUFError, match='not a llama3 RoPE scaling'):   # linear scaling
    gguf.llama3_scaling_from_factors(np.full(64, 2.0), cfg.rope_theta, cfg.head_dim)


def test_unpermute_qk_turns_llama_cpp_interleaved_rope_into_rotate_half():
  """RoPE on adjacent pairs of permuted rows (llama.cpp) == rotate-half RoPE (HF) on the rows."""
  heads, dh, pos = 3, 8, 7
  x = np.random.default_rng(0).normal(size=(heads * dh,)).astype(np.float32)
  inv = 1.0 / 10000.0 ** (np.arange(0, dh, 2) / dh)
  hf_rot = np.asarray(layers.apply_rope(jnp.asarray(x.reshape(1, 1, heads, dh)),
                                        jnp.full((1, 1), pos), jnp.asarray(inv))).reshape(-1)
  pairs = llama_cpp_permute(x, heads).reshape(heads, dh // 2, 2)
  cos, sin = np.cos(pos * inv), np.sin(pos * inv)
  gptj = np.stack([pairs[..., 0] * cos - pairs[..., 1] * sin,
                   pairs[..., 0] * sin + pairs[..., 1] * cos], -1).reshape(-1)
  np.testing.assert_allclose(gguf.unpermute_qk(gptj, heads), hf_rot, atol=1e-5)
  np.testing.assert_array_equal(gguf.unpermute_qk(llama_cpp_permute(x, heads), heads), x)


# ----------------------------------------------------------------------------- quantised


def _rel_rms(actual, expected) -> float:
  """sqrt(sum (a - e)^2 / sum e^2) over matching leaves."""
  a, e = jax.tree.leaves(actual), jax.tree.leaves(expected)
  num = sum(float(np.sum((np.asarray(x, np.float64) - y)**2)) for x, y in zip(a, e))
  return math.sqrt(num / sum(float(np.sum(np.asarray(y, np.float64)**2)) for y in e))


@pytest.mark.parametrize('qtype', [QType.Q8_0, QType.Q4_0, QType.Q4_1, QType.F16, QType.BF16],
                         ids=lambda q: q.name)
def test_load_decoder_quantized_equals_reference_dequantization(golden_dir, tmp_path, qtype):
  """Params equal gguf's own dequantisation exactly; the logit error stays within a small
  multiple of the weight quantisation error (these random 2-layer models amplify it 3-4x)."""
  source, batch = _golden(golden_dir, 'llama_untied')
  model = llama.from_pretrained(write_gguf(tmp_path / 'm.gguf', source, qtype))
  params = _as_np(loading.params_of(model))
  chex.assert_trees_all_equal(params, reference_params(source, qtype))
  weight_err = _rel_rms(params, _as_np(loading.params_of(source)))
  keep = batch['attention_mask'] > 0
  logit_err = _rel_rms(_forward(model, batch)[keep], batch['logits'][keep])
  print(f'{qtype.name}: relative RMS error: weights {weight_err:.2e}, logits vs torch fp32 '
        f'{logit_err:.2e}')
  assert 0 < weight_err < 0.1 and logit_err < 6 * weight_err


@pytest.mark.filterwarnings('ignore:invalid value:RuntimeWarning')   # random bytes: NaN scales
@pytest.mark.parametrize('qtype', [QType.Q4_K, QType.Q6_K, QType.Q5_K, QType.Q3_K, QType.Q2_K,
                                   QType.Q5_0, QType.Q8_0, QType.BF16], ids=lambda q: q.name)
def test_dequantize_block_types_match_gguf_reference_in_hf_layout(tmp_path, qtype):
  block, size = gguf_lib.GGML_QUANT_SIZES[qtype]
  rows, cols = 3, 2 * block
  raw = np.random.default_rng(int(qtype)).integers(0, 256, (rows, cols // block * size),
                                                    dtype=np.uint8)
  w = gguf_lib.GGUFWriter(str(tmp_path / 't.gguf'), 'llama')
  w.add_tensor('t', raw, raw_dtype=qtype)
  _close(w)
  tensor = gguf_lib.GGUFReader(str(tmp_path / 't.gguf')).tensors[0]
  out = gguf.dequantize(tensor)
  assert out.shape == (rows, cols) and out.dtype == np.float32
  np.testing.assert_array_equal(out, gguf_lib.quants.dequantize(raw, qtype))


# ----------------------------------------------------------------------------- errors


def test_load_decoder_unsupported_quant_type_raises_naming_type_and_tensor(golden_dir,
                                                                          tmp_path):
  source, _ = _golden(golden_dir, 'llama_tied')
  block, size = gguf_lib.GGML_QUANT_SIZES[QType.IQ4_NL]
  raw = np.zeros((64, 32 // block * size), np.uint8)     # ffn_up [out=64, in=32]
  path = write_gguf(tmp_path / 'm.gguf', source,
                    override={'blk.1.ffn_up.weight': (raw, QType.IQ4_NL)})
  with pytest.raises(gguf.GGUFError, match=r'blk\.1\.ffn_up\.weight.*IQ4_NL'):
    llama.from_pretrained(path)


def test_load_decoder_unsupported_architecture_raises_naming_it(golden_dir, tmp_path):
  source, _ = _golden(golden_dir, 'llama_tied')
  path = write_gguf(tmp_path / 'm.gguf', source, arch='mamba')
  with pytest.raises(gguf.GGUFError, match="'mamba'"):
    llama.from_pretrained(path)


def test_load_decoder_missing_tensor_raises_naming_it(golden_dir, tmp_path):
  source, _ = _golden(golden_dir, 'llama_untied')
  path = write_gguf(tmp_path / 'm.gguf', source, drop=('blk.1.attn_v.weight',))
  with pytest.raises(gguf.GGUFError, match=r'missing .*blk\.1\.attn_v\.weight'):
    llama.from_pretrained(path)


# ----------------------------------------------------------------------------- dtype, mesh


def test_load_decoder_bfloat16_on_mesh_shards_params(golden_dir, tmp_path):
  source, batch = _golden(golden_dir, 'llama_untied')
  path = write_gguf(tmp_path / 'm.gguf', source, QType.Q8_0)
  mesh = mesh_lib.make_mesh({'data': 2, 'fsdp': 2, 'tensor': 2})
  model = llama.from_pretrained(path, dtype='bfloat16', mesh=mesh)
  assert {x.dtype for x in jax.tree.leaves(loading.params_of(model))} == {jnp.dtype('bfloat16')}
  up = model.layers[0].mlp.up_proj.kernel[...]
  assert up.sharding.spec == jax.sharding.PartitionSpec('fsdp', 'tensor')
  assert _max_err(_forward(model, batch), batch['logits'], batch['attention_mask']) < 0.1


# ----------------------------------------------------------------------------- tokenizer, converter


def test_convert_experiment_writes_hf_dir_with_tokenizer(golden_dir, tmp_path):
  from configs import convert as convert_config
  source, _ = _golden(golden_dir, 'llama_tied')
  src = write_gguf(tmp_path / 'm.gguf', source, QType.Q8_0, tokenizer=True)
  config = convert_config.get_config()
  config.src, config.out_dir = str(src), str(tmp_path / 'hf')
  results = launch.run(config, str(tmp_path / 'work'))
  assert results['max_abs_diff'] == 0.0
  assert {'config.json', 'model.safetensors', 'tokenizer.json'} <= set(results['files'])
  converted = llama.from_pretrained(tmp_path / 'hf')
  chex.assert_trees_all_equal(loading.params_of(converted),
                              loading.params_of(llama.from_pretrained(src)))
  assert json.loads((tmp_path / 'hf' / 'config.json').read_text())['eos_token_id'] == 255
  tok = tokenizer_lib.load(str(tmp_path / 'hf'))
  prompt = tokenizer_lib.chat_prompt(tok, 'hello')
  assert prompt == '<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n'
  ids = tokenizer_lib.encode(tok, prompt)
  assert ids == tokenizer_lib.encode(gguf.load_tokenizer(src), prompt)
  assert ids[0] == 254 and 251 in ids and 252 in ids      # <|im_start|>, 'he', 'll'
  assert len(tok) == 256 and tokenizer_lib.stop_token_ids(tok) == [255]   # unk 253 excluded


def test_convert_config_bad_src_raises_naming_field(tmp_path):
  from configs import convert as convert_config
  config = convert_config.get_config()
  config.src = str(tmp_path / 'model.safetensors')
  with pytest.raises(config_lib.ConfigError, match='config.src'):
    launch.run(config, str(tmp_path))


@pytest.mark.parity
def test_load_tokenizer_matches_transformers_gguf_file_loader(golden_dir, tmp_path):
  pytest.importorskip('torch')   # transformers' own GGUF reader imports torch
  from transformers import AutoTokenizer
  source, _ = _golden(golden_dir, 'llama_tied')
  path = write_gguf(tmp_path / 'm.gguf', source, tokenizer=True)
  ours = gguf.load_tokenizer(path)
  ref = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file='m.gguf')
  messages = [{'role': 'user', 'content': 'hello, hell!'}]
  assert ours.apply_chat_template(messages, tokenize=False) == ref.apply_chat_template(
      messages, tokenize=False)
  for text in ('hello, hell!', '<|im_start|>user\nhe said<|im_end|>', ' two  spaces\n'):
    assert ours(text)['input_ids'] == ref(text)['input_ids'], text
  assert ours.special_tokens_map == ref.special_tokens_map


@pytest.mark.parity
def test_converted_dir_loads_in_transformers_with_golden_logits(golden_dir, tmp_path):
  torch = pytest.importorskip('torch')
  transformers = pytest.importorskip('transformers')
  source, batch = _golden(golden_dir, 'llama3_scaled_tied')
  gguf.to_hf_dir(write_gguf(tmp_path / 'm.gguf', source), tmp_path / 'hf')
  model = transformers.AutoModelForCausalLM.from_pretrained(
      tmp_path / 'hf', dtype=torch.float32, attn_implementation='eager').eval()
  with torch.no_grad():
    logits = model(**{k: torch.as_tensor(batch[k], dtype=torch.long)
                      for k in ('input_ids', 'attention_mask', 'position_ids')}).logits
  assert _max_err(logits.numpy(), batch['logits'], batch['attention_mask']) < ATOL


# ----------------------------------------------------------------------------- SmolLM2


@pytest.mark.slow
def test_smollm2_gguf_greedy_answers_capital_of_france():
  try:
    path = assets.path('smollm2-135m-instruct')
  except assets.AssetError as e:
    pytest.skip(f'{e}')
  start = time.perf_counter()
  model = llama.from_pretrained(path)
  load_s = time.perf_counter() - start
  assert model.config == llama.preset('smollm2-135m')
  tok = gguf.load_tokenizer(path)
  answer, = sampler.generate_text(model, tok, ['What is the capital of France?'],
                                  max_new_tokens=24, rng=jax.random.key(0), temperature=0.0)
  print(f'SmolLM2 load {load_s:.1f} s, total {time.perf_counter() - start:.1f} s: {answer!r}')
  assert 'Paris' in answer
