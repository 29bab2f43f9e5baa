"""Tiny trajectories (HF and Orbax), a config factory, and an independent float64 reference.

`reference_relex` is a from-scratch float64 numpy port of weizhepei/RELEX
scripts/svd_extrapolation.py `main` (whole T×d matrix, explicit V, C = M V, np.polyfit
fits); tests compare the streaming implementation against it.
"""
import collections
import pathlib

import numpy as np
import pytest

from configs import relex as relex_config
from jaxpapers.core import hf

SHAPES = {  # HF names; lm_head tied to embed_tokens
    'model.embed_tokens.weight': (24, 8),
    'model.layers.0.mlp.up_proj.weight': (12, 8),
    'model.layers.0.mlp.down_proj.weight': (8, 340),  # > GRAM_BLOCK: blocked, padded Gram
    'model.layers.0.self_attn.q_proj.bias': (8,),
    'model.norm.weight': (8,),
}
HF_CONFIG = {'model_type': 'llama', 'tie_word_embeddings': True}


def random_trajectory(steps, seed=0, noise=0.1, shapes=SHAPES, rank1=False):
  """(θ₀, {step: params}): a linear drift along v₁, a smaller quadratic one along v₂, noise.

  The two signal components and the noise floor are well separated, so the top-2
  eigenvectors are well conditioned (a clustered spectrum would make rank-2 results depend
  on fp32 rounding in any implementation, the reference's included).
  """
  rng = np.random.default_rng(seed)
  base = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
  out = {}
  for name, shape in shapes.items():
    v1, v2 = rng.standard_normal(shape), rng.standard_normal(shape)
    a, b = rng.uniform(0.1, 0.5), rng.uniform(0.2, 1.0)
    for t in steps:
      x = base[name] + (a + b * t) * v1
      if not rank1:
        x = x + 0.05 * t * t * v2 + noise * rng.standard_normal(shape)
      out.setdefault(t, {})[name] = x.astype(np.float32)
  return base, out


def write_hf(root, base, steps, config=HF_CONFIG, tied=True):
  root = pathlib.Path(root)
  def with_head(p):
    p = dict(p)
    if tied and 'model.embed_tokens.weight' in p:
      p['lm_head.weight'] = p['model.embed_tokens.weight']
    return p
  hf.save_hf_dir(root / 'base', with_head(base), config)
  (root / 'base' / 'tokenizer.json').write_text('{"fake": "tokenizer"}')
  for t, params in steps.items():
    hf.save_hf_dir(root / f'step_{t}', with_head(params), config)
  return root


@pytest.fixture
def hf_trajectory(tmp_path):
  """Factory: steps -> (dir, θ₀, {step: params}) written as HF safetensors dirs."""
  def make(steps=range(1, 7), **kwargs):
    base, data = random_trajectory(list(steps), **kwargs)
    return write_hf(tmp_path / 'traj', base, data), base, data
  return make


def make_config(trajectory_dir, **overrides):
  c = relex_config.get_config()
  c.trajectory_dir = str(trajectory_dir)
  c.history_steps = 5
  c.target_steps = '8,20'
  c.output_dtype = 'float32'
  for key, value in overrides.items():
    c[key] = value
  return c


# ----------------------------------------------------------------------------- reference


def _polyfit(c, degree):
  t = np.arange(len(c), dtype=np.float64)
  polys = [np.poly1d(np.polyfit(t, c[:, j], degree)) for j in range(c.shape[1])]
  return lambda i: np.array([p(i) for p in polys])


def _reference_coefficients(C, M, V, hist, last, targets, data_rows, o):
  if o['mode'] == 'reconstruct':
    return {m: data_rows[m] @ V for m in targets}
  degree = 1 if o['fit'] == 'linear' else o['degree']
  if o['mode'] == 'fit_reconstruct':
    f = _polyfit(C, degree)
    return {m: f(hist.index(m)) for m in targets}
  W = len(hist) if o['window'] == -1 else min(o['window'], len(hist))
  if o['refit_every'] == -1:
    f = _polyfit(C[-W:], degree)
    return {m: f(W - 1 + (round(m * o['step_scale']) - last)) for m in targets}
  buf, out, since, f = collections.deque(C[-W:], maxlen=W), {}, o['refit_every'], None
  for step in range(last + 1, max(targets) + 1):
    if since >= o['refit_every']:
      f, since = _polyfit(np.array(buf), degree), 0
    pred = f(W)
    out[step] = pred
    buf.append(pred)
    since += 1
  return {m: out[m] for m in targets}


def reference_relex(base, data, history_steps, targets, mode='extrapolate', rank=1,
                    fit='linear', degree=2, window=-1, step_scale=1.0, refit_every=-1,
                    delta_dtype='float32'):
  """{target: {name: θ̂ float64}} exactly as the reference computes it, in float64.

  delta_dtype='float16' stores Δ_t = fp16(θ_t) − fp16(θ₀) in fp16, as precompute_deltas.py.
  """
  o = dict(mode=mode, fit=fit, degree=degree, window=window, step_scale=step_scale,
           refit_every=refit_every)
  hist = [s for s in sorted(data) if s <= history_steps]
  out = {m: {} for m in targets}
  for name, theta0 in base.items():
    t0 = theta0.astype(np.float64).ravel()
    def delta(x):
      if delta_dtype == 'float16':
        return (x.astype(np.float16) - theta0.astype(np.float16)).astype(np.float64).ravel()
      return x.astype(np.float64).ravel() - t0
    M = np.stack([delta(data[s][name]) for s in hist])
    lam, vec = np.linalg.eigh(M @ M.T)
    order = np.argsort(lam)[::-1]
    r = min(rank if rank > 0 else len(hist), len(hist))
    U, S = vec[:, order[:r]], np.sqrt(np.maximum(lam[order[:r]], 0))
    V = M.T @ U
    threshold = S[0] * 1e-6 if S[0] > 0 else 1e-12
    for i in range(r):
      V[:, i] = V[:, i] / S[i] if S[i] > threshold else 0.0
    rows = {m: delta(data[m][name]) for m in targets if m in data}
    c = _reference_coefficients(M @ V, M, V, hist, hist[-1], targets, rows, o)
    for m in targets:
      out[m][name] = (t0 + V @ c[m]).reshape(theta0.shape)
  return out


def read_output(workdir, target):
  reader = hf.SafetensorsReader(pathlib.Path(workdir) / 'extrapolated' / f'step_{target}')
  return {k: reader.get(k) for k in reader.keys()}


def assert_matches_reference(ours, ref, base, rtol=1e-5):
  """max |θ̂_ours − θ̂_ref| ≤ rtol · max |θ̂_ref − θ₀|, per tensor."""
  for name, expected in ref.items():
    scale = np.abs(expected - base[name]).max()
    err = np.abs(ours[name].astype(np.float64) - expected).max()
    assert err <= rtol * scale, (name, err, scale)
