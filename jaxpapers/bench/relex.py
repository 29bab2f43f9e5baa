r"""RELEX benchmark: streaming JAX extrapolation vs a numpy port of the reference approach.

  python -m jaxpapers.bench.relex                      # 110M params x 20 steps (~4.6 GB bf16)
  python -m jaxpapers.bench.relex --params=20e6        # scaled down

A synthetic trajectory (Llama-like tensors, tied embeddings, bf16 safetensors: θ₀ plus T
checkpoints drifting along one direction per tensor with noise) is written once under
--dir (reused when it matches). Each contender then runs in its own process, so peak RSS
(ru_maxrss) is its own:
  read   read every tensor of every checkpoint once (the I/O floor);
  numpy  port of weizhepei/RELEX scripts/svd_extrapolation.py: whole θ₀ in fp32, the whole
         T×d matrix per tensor in RAM, G = M Mᵀ, eigh, V = MᵀU/S, C = M V, OLS, predictions
         held for every tensor, then saved (the reference's separate fp16 delta precompute
         pass is not charged to it);
  ours   `jaxpapers.papers.relex.extrapolate.run` (streaming, jitted, one CPU/GPU device).
Reads are warm: the page cache is primed by an untimed read first, for every contender;
with --cold (root on Linux) the page cache is dropped before each contender instead.
Prints wall times, ratios, peak RSS and the max |ours − numpy| over the bf16 outputs.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

HIDDEN, FFN, LAYERS, VOCAB = 768, 2048, 12, 32000  # ~110M params at scale 1


def model_shapes(params: float) -> dict[str, tuple[int, ...]]:
  """HF tensor shapes of a tied-embedding Llama/Qwen2-like model of about `params`."""
  per_layer = 4 * HIDDEN**2 + 3 * HIDDEN * FFN + 5 * HIDDEN
  scale = params / (VOCAB * HIDDEN + LAYERS * per_layer)
  layers, vocab = max(1, round(LAYERS * scale)), max(1024, round(VOCAB * min(scale, 1.0)))
  shapes = {'model.embed_tokens.weight': (vocab, HIDDEN), 'model.norm.weight': (HIDDEN,)}
  for i in range(layers):
    p = f'model.layers.{i}.'
    shapes.update({p + 'input_layernorm.weight': (HIDDEN,),
                   p + 'post_attention_layernorm.weight': (HIDDEN,)})
    for n in 'qkvo':
      shapes[p + f'self_attn.{n}_proj.weight'] = (HIDDEN, HIDDEN)
    for n in 'qkv':
      shapes[p + f'self_attn.{n}_proj.bias'] = (HIDDEN,)
    shapes.update({p + 'mlp.gate_proj.weight': (FFN, HIDDEN),
                   p + 'mlp.up_proj.weight': (FFN, HIDDEN),
                   p + 'mlp.down_proj.weight': (HIDDEN, FFN)})
  return shapes


def generate(root: pathlib.Path, params: float, steps: int) -> dict:
  """Writes base/ and step_1..T/ (bf16); θ_t = θ₀ + (a + b·t + 0.002·t²)·v + noise."""
  shapes = model_shapes(params)
  meta = {'version': 2, 'params': params, 'steps': steps,
          'shapes': {k: list(v) for k, v in shapes.items()}}
  if (root / 'bench.json').exists() and json.loads((root / 'bench.json').read_text()) == meta:
    return meta
  rng = np.random.default_rng(0)
  n = sum(int(np.prod(s)) for s in shapes.values())
  theta0 = rng.standard_normal(n, dtype=np.float32) * 0.02
  v = rng.standard_normal(n, dtype=np.float32) * 1e-3
  pool = rng.standard_normal(n + 100_003, dtype=np.float32) * 2e-4
  config = json.dumps({'model_type': 'llama', 'tie_word_embeddings': True,
                       'hidden_size': HIDDEN, 'torch_dtype': 'bfloat16'})
  for t in range(steps + 1):
    flat = theta0 if t == 0 else (theta0 + (0.5 + t + 0.002 * t * t) * v
                                  + pool[(t * 7919) % 100_003:][:n])
    flat = flat.astype(ml_dtypes.bfloat16)
    tensors, offset = {}, 0
    for name, shape in shapes.items():
      size = int(np.prod(shape))
      tensors[name] = flat[offset:offset + size].reshape(shape)
      offset += size
    out = root / ('base' if t == 0 else f'step_{t}')
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / 'model.safetensors'), metadata={'format': 'pt'})
    (out / 'config.json').write_text(config)
  (root / 'bench.json').write_text(json.dumps(meta))
  return meta


def _dirs(root: pathlib.Path, steps: int) -> list[pathlib.Path]:
  return [root / 'base'] + [root / f'step_{t}' for t in range(1, steps + 1)]


class Checkpoint:
  """Plain reads of one safetensors file (np.fromfile at the header's offsets, as the
  reference reads its delta files); no memory map, so RSS counts only arrays held."""

  def __init__(self, directory: pathlib.Path):
    self.path = directory / 'model.safetensors'
    with open(self.path, 'rb') as f:
      size = int(np.frombuffer(f.read(8), '<u8')[0])
      header = json.loads(f.read(size))
    header.pop('__metadata__', None)
    self.start, self.header = 8 + size, header

  def keys(self) -> list[str]:
    return list(self.header)

  def get(self, name: str) -> np.ndarray:
    info = self.header[name]
    dtype = np.dtype(_NP_DTYPES[info['dtype']])
    begin, end = info['data_offsets']
    return np.fromfile(self.path, dtype=dtype, count=(end - begin) // dtype.itemsize,
                       offset=self.start + begin).reshape(info['shape'])


_NP_DTYPES = {'BF16': ml_dtypes.bfloat16, 'F32': np.float32, 'F16': np.float16}


def role_read(root: pathlib.Path, steps: int, **_) -> None:
  for d in _dirs(root, steps):
    ckpt = Checkpoint(d)
    for name in ckpt.keys():
      ckpt.get(name)


def _compute_svd(m: np.ndarray, rank: int):
  """Reference `compute_svd` (Gram trick, descending eigh, V = MᵀU/S with zeroing)."""
  lam, vec = np.linalg.eigh(m @ m.T)
  idx = np.argsort(lam)[::-1]
  lam, vec = lam[idx], vec[:, idx]
  u = vec[:, :rank]
  s = np.sqrt(np.maximum(lam[:rank], 0))
  v = m.T @ u
  for i in range(rank):
    threshold = s[0] * 1e-6 if s[0] > 0 else 1e-12
    v[:, i] = v[:, i] / s[i] if s[i] > threshold else 0.0
  return v


def role_numpy(root: pathlib.Path, steps: int, target: int, out: pathlib.Path, **_) -> None:
  """The reference approach (svd_extrapolation.py `main`, rank 1, linear, full window)."""
  handles = [Checkpoint(d) for d in _dirs(root, steps)]
  theta0 = {k: handles[0].get(k).astype(np.float32) for k in handles[0].keys()}
  predictions = {}
  t_idx = np.arange(steps, dtype=np.float64)
  for name, base in theta0.items():
    m = np.zeros((steps, base.size), dtype=np.float32)
    for i, h in enumerate(handles[1:]):
      m[i] = h.get(name).astype(np.float32).reshape(-1) - base.reshape(-1)
    v = _compute_svd(m, 1)
    c = np.stack([m[i] @ v for i in range(steps)]).astype(np.float64)
    slope = np.sum((t_idx - t_idx.mean())[:, None] * (c - c.mean(0)), 0) / np.sum(
        (t_idx - t_idx.mean()) ** 2)
    intercept = c.mean(0) - slope * t_idx.mean()
    c_pred = (slope * (steps - 1 + target - steps) + intercept).astype(np.float32)
    predictions[name] = (c_pred @ v.T).reshape(base.shape)
    del m, v
  state = {k: (theta0[k] + predictions[k]).astype(ml_dtypes.bfloat16) for k in theta0}
  out.mkdir(parents=True, exist_ok=True)
  save_file(state, str(out / 'model.safetensors'), metadata={'format': 'pt'})


def role_ours(root: pathlib.Path, steps: int, target: int, out: pathlib.Path, chunk_mb: float,
              **_) -> None:
  from jaxpapers.core import config as config_lib
  from jaxpapers.papers.relex import extrapolate
  config = config_lib.load_file('configs/relex.py')
  config.trajectory_dir, config.history_steps = str(root), steps
  config.target_steps, config.chunk_mb = str(target), chunk_mb
  config.plot_tensors = 0  # the diagnostic plot (matplotlib) is not part of the comparison
  return extrapolate.run(config, out)['seconds']


ROLES = {'read': role_read, 'numpy': role_numpy, 'ours': role_ours}


def _peak_rss_mb() -> float:
  """VmHWM: this process image's peak resident set (ru_maxrss would include the parent's
  footprint at fork, which the exec'd child inherits)."""
  status = pathlib.Path('/proc/self/status').read_text()
  return int(re.search(r'VmHWM:\s+(\d+)', status).group(1)) / 1024


def _child(args) -> None:
  root = pathlib.Path(args.dir)
  if args.role == 'generate':
    generate(root, args.params, args.steps)
    return
  start, cpu = time.perf_counter(), time.process_time()
  inner = ROLES[args.role](root=root, steps=args.steps, target=args.target,
                           out=root / f'out_{args.role}', chunk_mb=args.chunk_mb)
  print(json.dumps({'role': args.role, 'seconds': time.perf_counter() - start,
                    'cpu_seconds': time.process_time() - cpu, 'peak_rss_mb': _peak_rss_mb(),
                    'run_seconds': inner}))


def drop_page_cache() -> None:
  """Writes dirty pages, then drops the page cache (Linux, root), so reads come from disk."""
  os.sync()
  try:
    pathlib.Path('/proc/sys/vm/drop_caches').write_text('3\n')
  except OSError as e:
    raise SystemExit(f'--cold: cannot drop the page cache ({e}); run as root on Linux, or '
                     'leave out --cold for warm reads') from None


def _spawn(args, role: str) -> dict:
  if args.cold and role != 'generate':
    drop_page_cache()
  cmd = [sys.executable, '-m', 'jaxpapers.bench.relex', f'--role={role}', f'--dir={args.dir}',
         f'--steps={args.steps}', f'--target={args.target}', f'--chunk_mb={args.chunk_mb}',
         f'--params={args.params}']
  proc = subprocess.run(cmd, capture_output=True, text=True)
  if proc.returncode:
    raise RuntimeError(f'{role} failed:\n{proc.stderr[-3000:]}')
  lines = proc.stdout.strip().splitlines()
  return json.loads(lines[-1]) if lines else {}


def output_diff(ours_dir: pathlib.Path, ref_dir: pathlib.Path, base_dir: pathlib.Path) -> dict:
  """|ours − numpy| over all tensors: max, and max in bf16 ulps of the operands' scale
  max(|θ₀|, |θ̂|) (an output near 0 from cancellation has a tiny ulp of its own)."""
  a, b, base = Checkpoint(ours_dir), Checkpoint(ref_dir), Checkpoint(base_dir)
  worst, ulps, differ, total = 0.0, 0.0, 0, 0
  for name in b.keys():
    x, y = a.get(name).astype(np.float32), b.get(name).astype(np.float32)
    scale = np.maximum(np.abs(base.get(name).astype(np.float32)), np.abs(y))
    ulp = np.spacing(scale.astype(ml_dtypes.bfloat16)).astype(np.float32)
    d = np.abs(x - y)
    worst, ulps = max(worst, float(d.max())), max(ulps, float((d / ulp).max()))
    differ, total = differ + int((d > 0).sum()), total + x.size
  return {'max_abs': worst, 'max_ulps': ulps, 'frac_differ': differ / total}


def _report(args, results: dict, diff: dict) -> None:
  read, ref, ours = (results[r] for r in ('read', 'numpy', 'ours'))
  print(f'{"":8s}{"wall s":>9s}{"cpu s":>9s}{"peak RSS MB":>13s}')
  for r in ('read', 'numpy', 'ours'):
    x = results[r]
    print(f'{r:8s}{x["seconds"]:9.2f}{x["cpu_seconds"]:9.2f}{x["peak_rss_mb"]:13.0f}')
  print(f'ours vs numpy: {ref["seconds"] / ours["seconds"]:.2f}x faster (wall), '
        f'{ref["cpu_seconds"] / ours["cpu_seconds"]:.2f}x (cpu); peak RAM '
        f'{ref["peak_rss_mb"] / ours["peak_rss_mb"]:.2f}x lower')
  print(f'ours / read-once: {ours["seconds"] / read["seconds"]:.1f}x (wall); ours without '
        f'process start-up (imports): {ours["run_seconds"]:.2f} s')
  print(f'max |ours - numpy| over bf16 outputs: {diff["max_abs"]:.3g} = '
        f'{diff["max_ulps"]:.2f} bf16 ulp of max(|θ₀|, |θ̂|); {diff["frac_differ"]:.2e} of '
        'elements differ')


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--params', type=float, default=110e6, help='parameters per checkpoint')
  p.add_argument('--steps', type=int, default=20, help='T observed checkpoints')
  p.add_argument('--target', type=int, default=100, help='extrapolation target step')
  p.add_argument('--dir', default='/tmp/relex_bench', help='trajectory + outputs')
  p.add_argument('--chunk_mb', type=float, default=0.0, help='ours: config.chunk_mb (0 = auto)')
  p.add_argument('--cold', action='store_true',
                 help='drop the page cache before each contender (root): cold-disk reads')
  p.add_argument('--role', choices=sorted(ROLES) + ['generate'], help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.role:
    return _child(args)
  root = pathlib.Path(args.dir)
  t0 = time.perf_counter()
  _spawn(args, 'generate')  # own process: the orchestrator stays small
  meta = json.loads((root / 'bench.json').read_text())
  n = sum(int(np.prod(s)) for s in meta['shapes'].values())
  print(f'trajectory: {n / 1e6:.1f}M params x (1 + {args.steps}) checkpoints, bf16, '
        f'{n * 2 * (args.steps + 1) / 1e9:.2f} GB ({time.perf_counter() - t0:.0f} s to prepare)')
  if not args.cold:
    _spawn(args, 'read')  # prime the page cache
  results = {r: _spawn(args, r) for r in ('read', 'numpy', 'ours')}
  diff = output_diff(root / 'out_ours' / 'extrapolated' / f'step_{args.target}',
                     root / 'out_numpy', root / 'base')
  _report(args, results, diff)


if __name__ == '__main__':
  main()
