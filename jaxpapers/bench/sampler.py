r"""Sampler benchmark: `jaxpapers.core.sampler.generate` vs transformers' `generate` (torch).

  python -m jaxpapers.bench.sampler                  # the issue's setting, CPU
  python -m jaxpapers.bench.sampler --repeats=5 --skip_torch
  python -m jaxpapers.bench.sampler --model=smollm2   # the shipped SmolLM2-135M-Instruct
  python -m jaxpapers.bench.sampler --model=qwen2.5-coder-0.5b --batch=8,1

One random Qwen2-style model (vocab 32000, hidden 512, intermediate 1408, 8 layers, 8 heads,
2 KV heads, tied embeddings; ~39M params, float32 unless `--dtype`) is built in our code, written with
`qwen.save_pretrained` and loaded by transformers' `Qwen2ForCausalLM`, so both sides hold the
same weights. Batch 8, prompt 64 (no padding), 128 new tokens sampled with the same settings
on both sides (temperature 1.0, top-k 50, top-p 0.95; no EOS, so every row makes all 128).
tok/s = batch x new tokens / median wall time of `--repeats` timed runs; our compile time is
the first call minus a timed call, reported apart. HF runs with torch's default threads (all
cores) and with 1 thread (`--torch_threads`): on a small shared CPU, torch's OpenMP threads
collapse under load while one thread does not, so both are printed, plus tokens per CPU-second
(process CPU time over all threads), which is steadier than wall time on a loaded machine.
The torch side is skipped with a message when torch is missing. `--model=smollm2` (or
`qwen2.5-coder-0.5b`, `qwen2.5-coder-1.5b`) times a shipped GGUF checkpoint (`core.assets`)
dequantised to `--dtype`, written with its family's `save_pretrained` so transformers holds the
same weights; its load time (join check, parse, dequantise) is printed. `--batch` takes a comma
list (`8,1`): every size is timed on both sides in the same run. `--preset=qwen2.5-0.5b --dtype=bfloat16 --skip_torch` times a 0.5B-shaped model (on a
GPU it also prints the fraction of HBM bandwidth reached). `--dtype` applies to both sides
(transformers loads the same weights in that dtype). `--matmul_floor` also times a loop of
only the model's weight matmuls: the most a sampler built on XLA's dot kernels can reach.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import numpy as np

from jaxpapers.bench import timing
from jaxpapers.core import sampler
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.models import qwen

BENCH = dict(vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
             num_attention_heads=8, num_key_value_heads=2, head_dim=64,
             tie_word_embeddings=True)
# --model -> checkpoint name (jaxpapers.core.assets)
MODELS = {'smollm2': 'smollm2-135m-instruct', 'qwen2.5-coder-0.5b': 'qwen2.5-coder-0.5b-instruct',
          'qwen2.5-coder-1.5b': 'qwen2.5-coder-1.5b-instruct'}
HBM_GBPS = {'H100': 3350.0, 'H200': 4800.0, 'A100': 2039.0}   # datasheet peaks (SXM)


def _args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--batch', default='8', help='batch size, or a comma list timed in turn')
  p.add_argument('--prompt', type=int, default=64)
  p.add_argument('--new', type=int, default=128)
  p.add_argument('--temperature', type=float, default=1.0)
  p.add_argument('--top_k', type=int, default=50)
  p.add_argument('--top_p', type=float, default=0.95)
  p.add_argument('--repeats', type=int, default=3)
  p.add_argument('--model', default='random', choices=('random', *MODELS),
                 help='random: the issue model (or --preset); else a shipped GGUF checkpoint')
  p.add_argument('--preset', default='', help='a qwen preset instead of the issue model')
  p.add_argument('--dtype', default='float32')
  p.add_argument('--skip_torch', action='store_true')
  p.add_argument('--matmul_floor', action='store_true',
                 help='also time a decode loop of only the weight matmuls (a floor for ours)')
  p.add_argument('--torch_threads', default='0,1',
                 help='comma list of torch thread counts to time; 0 = torch default (all cores)')
  return p.parse_args(argv)


def bench_ours(model, prompts: np.ndarray, a) -> dict:
  """Compile time and steady-state seconds of our sampler."""
  pair = sampler.split(model)
  def run():
    out = sampler.generate(pair, prompts, max_new_tokens=a.new, rng=jax.random.key(0),
                           temperature=a.temperature, top_k=a.top_k, top_p=a.top_p)
    out.tokens.block_until_ready()
    assert int(np.min(np.asarray(out.lengths))) == a.new
  first = timing.timed(run, 1)['median_s']
  stats = timing.timed(run, a.repeats)
  return {**stats, 'compile_s': first - stats['median_s']}


def bench_matmul_floor(cfg, a) -> dict:
  """A decode loop of only the weight matmuls of `cfg` (q, k, v, o, gate, up, down per layer,
  then the vocab projection) at batch `a.batch`, `a.new` steps: no attention, norms, RoPE or
  sampling. What XLA's dot kernels alone need per token on this machine."""
  jnp = jax.numpy
  dt = jnp.dtype(a.dtype)
  d, f = cfg.hidden_size, cfg.intermediate_size
  q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
  shapes = [(d, q), (d, kv), (d, kv), (q, d), (d, f), (d, f), (f, d)]
  keys = iter(jax.random.split(jax.random.key(0), len(shapes) * cfg.num_hidden_layers + 1))
  init = lambda shape: (0.02 * jax.random.normal(next(keys), shape)).astype(dt)  # noqa: E731
  blocks = [[init(s) for s in shapes] for _ in range(cfg.num_hidden_layers)]
  vocab = init((cfg.vocab_size, d))
  mm = layers.matmul  # the model's own dot (f32 accumulation, result in the input dtype)

  @jax.jit
  def loop(blocks, vocab, h):
    def step(_, h):
      for wq, wk, wv, wo, wg, wu, wd in blocks:
        h = h + mm(mm(h, wq) + (mm(h, wk).sum() + mm(h, wv).sum()).astype(dt), wo)
        h = h + mm(mm(h, wg) * mm(h, wu), wd)
      return h + mm(h, vocab.T)[:, :d] * dt.type(1e-3)
    return jax.lax.fori_loop(0, a.new, step, h)
  h = jnp.ones((a.batch, d), dt)
  run = lambda: loop(blocks, vocab, h).block_until_ready()  # noqa: E731
  run()
  return timing.timed(run, a.repeats)


def bench_torch(path: str, prompts: np.ndarray, a, threads: int) -> dict | None:
  """HF `generate` on the same weights; threads 0 = torch's default (all cores)."""
  try:
    import torch
    import transformers
  except ImportError as e:
    print(f'torch side skipped: {e} (pip install torch transformers)')
    return None
  default_threads = torch.get_num_threads()
  torch.set_num_threads(threads or default_threads)
  model = transformers.AutoModelForCausalLM.from_pretrained(
      path, dtype=getattr(torch, a.dtype)).eval()
  ids = torch.tensor(prompts, dtype=torch.long)
  kw = dict(attention_mask=torch.ones_like(ids), do_sample=True, temperature=a.temperature,
            top_k=a.top_k, top_p=a.top_p, pad_token_id=0, eos_token_id=None)
  def run(new=a.new):
    with torch.inference_mode():
      out = model.generate(ids, max_new_tokens=new, **kw)
    assert out.shape[1] == a.prompt + new, out.shape
  run(8)  # warm-up (allocator, kernels)
  stats = timing.timed(run, a.repeats)
  stats.update(threads=torch.get_num_threads(), version=f'torch {torch.__version__}, '
               f'transformers {transformers.__version__}')
  torch.set_num_threads(default_threads)
  return stats


def _line(name: str, tokens: int, r: dict, extra: str = '') -> str:
  return (f'{name}: {tokens / r["median_s"]:8.1f} tok/s, {tokens / r["cpu_s"]:7.1f} tok per '
          f'CPU-s  (median of {[round(t, 2) for t in r["times"]]} s{extra})')


def _hbm_fraction(cfg, a, seconds: float) -> str:
  """Bytes each decode step must read (weights once + the KV cache) / time, vs the peak."""
  kind = jax.devices()[0].device_kind
  peak = next((v for k, v in HBM_GBPS.items() if k in kind), None)
  if jax.devices()[0].platform != 'gpu' or peak is None:
    return ''
  itemsize = np.dtype(jax.numpy.dtype(a.dtype)).itemsize
  kv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * itemsize
  per_step = cfg.num_params * itemsize + a.batch * kv * (a.prompt + a.new / 2)
  gbps = per_step * a.new / seconds / 1e9
  return f'; HBM {gbps:.0f} GB/s = {gbps / peak:.0%} of {kind} peak {peak:.0f} GB/s'


def load_model(a):
  """(model, save_pretrained) for `--model`: a shipped checkpoint or random weights."""
  if a.model in MODELS:
    start = time.perf_counter()
    model = families.from_pretrained(MODELS[a.model], dtype=a.dtype)
    print(f'{MODELS[a.model]}: loaded in {time.perf_counter() - start:.1f} s', flush=True)
    return model, families.module_for(model.config.family).save_pretrained
  cfg = (qwen.preset(a.preset) if a.preset else qwen.preset('qwen2-tiny', **BENCH))
  cfg = cfg.replace(dtype=a.dtype, param_dtype=a.dtype)
  return qwen.init(cfg, seed=0), qwen.save_pretrained


def main(argv=None):
  a = _args(argv)
  model, save = load_model(a)
  with tempfile.TemporaryDirectory() as tmp:
    if not a.skip_torch:
      save(model, tmp)
    for batch in [int(b) for b in a.batch.split(',')]:
      bench_batch(model, tmp, argparse.Namespace(**{**vars(a), 'batch': batch}))


def bench_batch(model, hf_dir: str, a) -> None:
  """Ours, the optional matmul floor, then HF at each torch thread count, for one batch size."""
  cfg = model.config
  prompts = np.random.default_rng(0).integers(0, cfg.vocab_size, (a.batch, a.prompt))
  tokens = a.batch * a.new
  print(f'model: {cfg.family} {cfg.num_params / 1e6:.1f}M params, {a.dtype}; batch {a.batch}, '
        f'prompt {a.prompt}, {a.new} new tokens (T={a.temperature}, top_k={a.top_k}, '
        f'top_p={a.top_p}); jax {jax.__version__} on {jax.devices()[0].device_kind}; '
        f'{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}', flush=True)
  ours = bench_ours(model, prompts, a)
  print(_line('ours', tokens, ours, f'; compile {ours["compile_s"]:.1f} s'
              f'{_hbm_fraction(cfg, a, ours["median_s"])}'), flush=True)
  if a.matmul_floor:
    print(_line('floor (weight matmuls only)', tokens, bench_matmul_floor(cfg, a)), flush=True)
  if a.skip_torch:
    return
  for threads in [int(t) for t in a.torch_threads.split(',')]:
    ref = bench_torch(hf_dir, prompts, a, threads)
    if ref is None:
      return
    print(_line(f'HF ({ref["threads"]} thr)', tokens, ref, f'; {ref["version"]}'), flush=True)
    print(f'ratio: {ref["median_s"] / ours["median_s"]:.2f}x tok/s, '
          f'{ref["cpu_s"] / ours["cpu_s"]:.2f}x tok per CPU-s (ours / HF generate with '
          f'{ref["threads"]} torch threads); load average {os.getloadavg()[0]:.1f}',
          flush=True)


if __name__ == '__main__':
  main()
