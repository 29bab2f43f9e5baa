"""Temporal uncentred SVD of one tensor's trajectory, streamed over chunks of d.

Follows weizhepei/RELEX scripts/svd_extrapolation.py (`compute_svd`,
`compute_svd_streaming`; ../shared/papers/relex.md): with Δ_t = θ_t − θ₀ flattened and
M = [Δ_1; …; Δ_T] ∈ R^{T×d},
  G = M Mᵀ = Σ_chunks M_c M_cᵀ          (T×T, accumulated in fp32 on device)
  eigh(G) sorted descending, S = sqrt(max(λ, 0)), U = top-k eigenvectors
  v_i = Mᵀ u_i / S_i, zero where S_i ≤ 1e-6·S_1   (1e-12 when S_1 = 0)
  c_t = Δ_t · v  =  S·u_t for observed rows (exact: M Mᵀ u = λ u)
and a prediction θ̂ = θ₀ + Σ_i ĉ_i v_i is computed per chunk as θ₀ + Mᵀ w with
w = U diag(keep/S) ĉ, so v (d×k) is never stored.

Extra rows (checkpoints outside the fit set, e.g. reconstruct targets or held-out steps)
ride along in pass 1: the cross block G[T:, :T] gives their coefficients Δ_e·v = G_e U / S.

Choices: eigh and the weight algebra run on the host in float64 (T×T is tiny; the
reference's fp32 eigh adds avoidable error); `delta_dtype='float16'` reproduces the
reference's fp16 delta storage (precompute_deltas.py) by rounding θ_t, θ₀ and Δ_t to fp16.
On a mesh, a chunk is sharded along d over every mesh axis and G is reduced with psum.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

_HIGHEST = jax.lax.Precision.HIGHEST
CPU_GRAM_BLOCK = 2048  # columns per Gram block on CPU (a [20, 2048] fp32 block fits L2)


def deltas(theta0: jax.Array, rows: jax.Array, delta_dtype=jnp.float32) -> jax.Array:
  """M_c = rows − θ₀ in fp32.

  Args:
    theta0: [c] θ₀ chunk (any float dtype).
    rows: [R, c] the same chunk at each step.
    delta_dtype: float32, or float16 to round like the reference's fp16 delta files.
  Returns:
    [R, c] float32.
  """
  if jnp.dtype(delta_dtype) == jnp.float16:
    up = lambda x: x.astype(jnp.float16).astype(jnp.float32)
    return (up(rows) - up(theta0)[None]).astype(jnp.float16).astype(jnp.float32)
  return rows.astype(jnp.float32) - theta0.astype(jnp.float32)[None]


def gram_block(platform: str) -> int:
  """Columns per Gram block: CPU loops over cache-sized blocks, accelerators do one dot."""
  return CPU_GRAM_BLOCK if platform == 'cpu' else 1


def bf16_pairs(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """uint32 [..., n] holding 2n bfloat16 values (little-endian) -> (even, odd) float32 [..., n].

  A bf16 is the top half of an f32, so each half converts with one 32-bit shift or mask:
  XLA:CPU vectorises these, while its bf16 -> f32 convert made the Gram loop 1.5x slower.
  """
  even = jax.lax.bitcast_convert_type(x << 16, jnp.float32)
  odd = jax.lax.bitcast_convert_type(x & jnp.uint32(0xFFFF0000), jnp.float32)
  return even, odd


def gram(theta0: jax.Array, rows: jax.Array, block: int = 1,
         delta_dtype=jnp.float32) -> jax.Array:
  """M Mᵀ of one chunk, M = deltas(θ₀, rows), built block by block (M is never whole).

  With block > 1 (CPU), a loop over column blocks so each [R, block] slice stays in cache;
  measured ~2x faster than one [R, c] x [c, R] dot on XLA:CPU, whose kernels suit large M
  and N, not R ≈ 20. uint32 inputs are bf16 pairs (`bf16_pairs`): the even and the odd
  columns each add their own M Mᵀ.

  Args:
    theta0: [c] θ₀ chunk, or [c/2] uint32 bf16 pairs.
    rows: [R, c] the chunk at each row step, or [R, c/2] uint32 bf16 pairs.
    block: columns per Gram block; c must be a multiple of it (else one block).
  Returns:
    [R, R] float32.
  """
  pairs = rows.dtype == jnp.uint32
  r, c = rows.shape
  b = block // 2 if pairs else block
  b = b if b > 1 and c % b == 0 else c

  def body(i, acc):
    th = jax.lax.dynamic_slice_in_dim(theta0, i * b, b)
    x = jax.lax.dynamic_slice_in_dim(rows, i * b, b, axis=1)
    for th_part, x_part in zip(bf16_pairs(th), bf16_pairs(x)) if pairs else [(th, x)]:
      m = deltas(th_part, x_part, delta_dtype)
      acc = acc + jax.lax.dot_general(m, m, (((1,), (1,)), ((), ())), precision=_HIGHEST,
                                      preferred_element_type=jnp.float32)
    return acc
  return jax.lax.fori_loop(0, c // b, body, jnp.zeros((r, r), jnp.float32))


def count_nonfinite(theta0: jax.Array, rows: jax.Array) -> jax.Array:
  """[R + 1] int32: non-finite entries per row of `rows`, then in θ₀. Only run on chunks whose
  Gram went non-finite (a NaN/inf anywhere in Δ_i makes G_ii NaN/inf), to name the steps."""
  return jnp.concatenate([jnp.sum(~jnp.isfinite(rows), axis=1),
                          jnp.sum(~jnp.isfinite(theta0))[None]]).astype(jnp.int32)


def project(theta0, m, weights, out_dtype) -> jax.Array:
  """θ̂_j = θ₀ + Σ_t w_jt Δ_t for one chunk.

  Args:
    theta0: [c] θ₀ chunk.
    m: [R, c] the chunk's deltas (`deltas`) in the order G was built (extra rows get zero
      weight).
    weights: [J, R] float32, w_j = U diag(keep/S) ĉ_j.
  Returns:
    [J, c] in `out_dtype`.
  """
  delta = jnp.dot(weights, m, precision=_HIGHEST, preferred_element_type=jnp.float32)
  return (theta0.astype(jnp.float32)[None] + delta).astype(out_dtype)


@dataclasses.dataclass(frozen=True)
class Kernels:
  """Jitted steps for one placement: a single device or the mesh (along d).

  Each pass is one jitted step on the chunk as read, so the fp32 deltas live only inside
  XLA's temporaries (as separate steps, every chunk's deltas were a fresh output buffer
  whose page faults cost more than the Gram itself). Pass 1: G = gram_step(G, θ₀, rows),
  on CPU with bf16 chunks as uint32 pairs (`Loaded.gram_inputs`); pass 2: project(θ₀,
  rows, w).
  """
  gram_step: callable   # (gram [R, R], theta0 [c], rows [R, c]) -> gram + M Mᵀ, donated
  project: callable     # (theta0 [c], rows [R, c], weights [J, R]) -> [J, c]
  count_nonfinite: callable  # (theta0 [c], rows [R, c]) -> [R + 1] int32
  sharding: object      # where θ₀ chunks go ([c], d sharded on a mesh)
  rows_sharding: object # where row blocks go ([R, c], d sharded on a mesh)
  acc_sharding: object  # where the Gram matrix and weights live (replicated)
  block: int            # Gram block: chunk shards are padded to a multiple of it
  bf16_pairs: bool      # the Gram step takes bf16 chunks as uint32 pairs (CPU)


@functools.lru_cache(maxsize=None)  # one compile cache per placement and dtypes
def make_kernels(placement: Mesh | jax.Device, out_dtype, delta_dtype=jnp.float32) -> Kernels:
  """Kernels on one device, or on a mesh with d sharded over all its axes and G psum-reduced."""
  platform = (placement.devices.flat[0] if isinstance(placement, Mesh) else placement).platform
  block = gram_block(platform)
  local_gram = lambda th, rows: gram(th, rows, block, delta_dtype)
  local_proj = lambda th, rows, w: project(th, deltas(th, rows, delta_dtype), w, out_dtype)
  if isinstance(placement, Mesh):
    axes = tuple(placement.axis_names)
    # check_vma off: the loop carry starts replicated; psum makes the result replicated.
    gram_fn = jax.shard_map(lambda th, rows: jax.lax.psum(local_gram(th, rows), axes),
                            mesh=placement, in_specs=(P(axes), P(None, axes)), out_specs=P(),
                            check_vma=False)
    proj = jax.shard_map(local_proj, mesh=placement, in_specs=(P(axes), P(None, axes), P()),
                         out_specs=P(None, axes))
    sharding = NamedSharding(placement, P(axes))
    rows_sharding = NamedSharding(placement, P(None, axes))
    acc_sharding = NamedSharding(placement, P())
  else:
    gram_fn, proj = local_gram, local_proj
    sharding = rows_sharding = acc_sharding = jax.sharding.SingleDeviceSharding(placement)
  return Kernels(gram_step=jax.jit(lambda g, th, rows: g + gram_fn(th, rows),
                                   donate_argnums=(0,)),
                 project=jax.jit(proj), count_nonfinite=jax.jit(count_nonfinite),
                 sharding=sharding, rows_sharding=rows_sharding, acc_sharding=acc_sharding,
                 block=block, bf16_pairs=platform == 'cpu')


# ----------------------------------------------------------------------------- host math


@dataclasses.dataclass(frozen=True)
class Eigen:
  u: np.ndarray           # [T, k] float64, top-k eigenvectors of G (sign: u[-1] >= 0)
  s: np.ndarray           # [k] float64, singular values S_i = sqrt(max(λ_i, 0))
  keep: np.ndarray        # [k] bool, S_i > 1e-6·S_1
  s_all: np.ndarray       # [T] float64, every singular value (explained variance, energy)
  explained: float        # Σ_{i<k} S_i² / Σ S_i², 0 when G = 0 (reference `explained_var`)


def top_eigen(gram: np.ndarray, rank: int) -> Eigen:
  """Top-`rank` eigenpairs of the T×T Gram matrix (reference `compute_svd`)."""
  g = np.asarray(gram, np.float64)
  lam, vec = np.linalg.eigh((g + g.T) / 2)
  order = np.argsort(lam)[::-1]
  lam, vec = lam[order], vec[:, order]
  pos = np.maximum(lam, 0.0)
  k = min(rank, len(lam))
  explained = float(pos[:k].sum() / pos.sum()) if pos.sum() > 0 else 0.0
  u = vec[:, :k] * np.where(vec[-1, :k] < 0, -1.0, 1.0)  # sign is arbitrary; cancels in c·v
  s_all = np.sqrt(pos)
  s = s_all[:k]
  threshold = s[0] * 1e-6 if s[0] > 0 else 1e-12
  return Eigen(u, s, s > threshold, s_all, explained)


def coefficients(eig: Eigen, cross: np.ndarray | None = None) -> np.ndarray:
  """c = Δ·v for the fit rows (S·u) or for extra rows from their cross-Gram block.

  Args:
    eig: from `top_eigen`.
    cross: [E, T] block G[extra, fit]; None for the fit rows themselves.
  Returns:
    [T, k] or [E, k] float64; zero in dropped components.
  """
  if cross is None:
    return eig.u * np.where(eig.keep, eig.s, 0.0)
  safe = np.where(eig.keep, eig.s, 1.0)
  return (np.asarray(cross, np.float64) @ eig.u) / safe * eig.keep


def mixing_weights(eig: Eigen, c_pred: np.ndarray) -> np.ndarray:
  """w = U diag(keep/S) ĉ so that Mᵀ w = Σ_i ĉ_i v_i.

  Args:
    c_pred: [J, k] predicted coefficients (one row per output checkpoint).
  Returns:
    [J, T] float32.
  """
  scale = np.where(eig.keep, 1.0 / np.where(eig.keep, eig.s, 1.0), 0.0)
  return ((np.asarray(c_pred, np.float64) * scale) @ eig.u.T).astype(np.float32)
