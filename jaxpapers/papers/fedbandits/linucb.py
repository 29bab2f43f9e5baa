"""LinUCB client and server statistics, one client at a time (vmapped by the caller).

Ancestor: DisLinUCB / Async-LinUCB (github cyrilli/Async-LinUCB). A client keeps
V = lam*I + (all data it knows), b, the inverse of V updated by Sherman-Morrison, the part
not yet uploaded (pending dV, db, dn) and log det V (updated by the matrix determinant
lemma, log det(V + x x^T) = log det V + log(1 + x^T V^-1 x)). V itself (A_loc + lam*I) is
kept as V_sync + dV, V_sync being what the client last downloaded: one d x d array fewer
to update per round. The server keeps the global V_g = lam*I + A_g and b_g.

    theta = V^-1 b,   UCB(x) = x^T theta + alpha_n ||x||_{V^-1}
    alpha_n = sigma*sqrt(d*log(1 + n/(d*lam)) + 2*log(1/delta)) + sqrt(lam)   (||theta*|| <= 1)

Choices where the papers are silent (all config fields, see configs/fedbandits_*.py):
  * `alpha_scale` multiplies alpha_n (1.0 = the theory value above); n is the number of
    samples in the client's own V (its local data plus what it last downloaded).
  * UCB scores are rounded to `tie_decimals` decimals before argmax, so exact ties (every
    arm has the same score in round one, items on the unit sphere) break to the lowest
    index identically here and in the numpy reference, whatever the summation order.
  * Upload triggers: 'dislinucb' fires when log(det V / det V_sync) * dn >= D;
    'det_ratio' (Async-LinUCB) when det V / det V_sync > gamma.
"""
from __future__ import annotations

import math

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Clients:
  """Per-client statistics; every field has a leading client axis [N] when batched."""
  gram_sync: jax.Array     # [N, d, d] V at the last download; V = gram_sync + pending_gram
  gram_inv: jax.Array      # [N, d, d] V^-1 (Sherman-Morrison between downloads)
  b: jax.Array             # [N, d]
  n: jax.Array             # [N] samples in V
  pending_gram: jax.Array  # [N, d, d] dV not yet uploaded
  pending_b: jax.Array     # [N, d]
  pending_n: jax.Array     # [N] rounds since the last upload
  logdet: jax.Array        # [N] log det V
  logdet_sync: jax.Array   # [N] log det V at the last synchronisation (= log det(V - dV))


@flax.struct.dataclass
class Server:
  gram: jax.Array          # [d, d] V_g = lam*I + A_g
  b: jax.Array             # [d]
  n: jax.Array             # [] samples in A_g
  logdet: jax.Array        # [] log det V_g


def init_clients(num_clients: int, d: int, lam: float, dtype) -> Clients:
  # Distinct buffers for every field: the state is donated to the round loop.
  eye = jnp.broadcast_to(jnp.eye(d, dtype=dtype), (num_clients, d, d))
  zeros = lambda *shape: jnp.zeros((num_clients,) + shape, dtype)
  ld = lambda: jnp.full((num_clients,), d * math.log(lam), dtype)
  return Clients(gram_sync=lam * eye, gram_inv=eye / lam, b=zeros(d), n=zeros(),
                 pending_gram=zeros(d, d), pending_b=zeros(d), pending_n=zeros(),
                 logdet=ld(), logdet_sync=ld())


def init_server(d: int, lam: float, dtype) -> Server:
  return Server(gram=lam * jnp.eye(d, dtype=dtype), b=jnp.zeros((d,), dtype),
                n=jnp.zeros((), dtype), logdet=jnp.asarray(d * math.log(lam), dtype))


def alpha(n, d: int, lam: float, sigma: float, delta: float, scale: float = 1.0):
  """Confidence width alpha_n (DisLinUCB / Abbasi-Yadkori et al. 2011, ||theta*|| <= 1)."""
  radius = sigma * jnp.sqrt(d * jnp.log1p(n / (d * lam)) + 2.0 * math.log(1.0 / delta))
  return scale * (radius + math.sqrt(lam))


def ucb_scores(gram_inv, b, x, width_scale, tie_decimals: int):
  """UCB of K arms for one client.

  Args:
    gram_inv: [d, d] V^-1.  b: [d].  x: [K, d] arm features.  width_scale: [] alpha_n.
  Returns:
    [K] scores, rounded to `tie_decimals` (see module docstring).
  """
  theta = gram_inv @ b
  width = jnp.sqrt(jnp.maximum(jnp.sum((x @ gram_inv) * x, axis=-1), 0.0))
  return jnp.round(x @ theta + width_scale * width, tie_decimals)


def observe(c: Clients, x, reward) -> Clients:
  """Adds one (x [d], reward []) to a client's statistics; V^-1 by Sherman-Morrison."""
  u = c.gram_inv @ x
  denom = 1.0 + x @ u
  outer = jnp.outer(x, x)
  return c.replace(
      gram_inv=c.gram_inv - jnp.outer(u, u) / denom,
      b=c.b + reward * x, n=c.n + 1, pending_gram=c.pending_gram + outer,
      pending_b=c.pending_b + reward * x, pending_n=c.pending_n + 1,
      logdet=c.logdet + jnp.log(denom))


def logdet_spd(m):
  """log det of one SPD matrix [d, d] via LAPACK Cholesky (never call it under vmap: see
  `logdet_spd_batched`)."""
  chol = jnp.linalg.cholesky(m)
  return 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def logdet_spd_batched(m):
  """log det of SPD matrices [..., d, d]: the sum of log pivots of Gaussian elimination
  (= Cholesky, without the square roots), unrolled over d on a shrinking trailing block.

  Plain jnp ops on purpose: jaxlib's batched LAPACK potrf parallelises the batch on a
  thread pool that the devices share, and with 8 CPU devices calling it at once (clients
  sharded, N >= ~800) every device thread waited on that pool forever. Use it for every
  batched or vmapped log det; for one matrix LAPACK is faster.
  """
  ld = jnp.zeros(m.shape[:-2], m.dtype)
  for _ in range(m.shape[-1]):
    pivot = m[..., 0, 0]
    ld = ld + jnp.log(pivot)
    col = m[..., 1:, 0] / pivot[..., None]
    m = m[..., 1:, 1:] - col[..., :, None] * m[..., None, 0, 1:]
  return ld


def inverse_spd(m):
  """Inverse of one SPD matrix [d, d] via Cholesky solves."""
  chol = jnp.linalg.cholesky(m)
  eye = jnp.eye(m.shape[-1], dtype=m.dtype)
  return jax.scipy.linalg.cho_solve((chol, True), eye)


def trigger(c: Clients, rule: str, threshold: float):
  """[N] bool: clients whose upload condition holds (see module docstring)."""
  log_ratio = c.logdet - c.logdet_sync
  if rule == 'dislinucb':
    return log_ratio * c.pending_n >= threshold
  if rule == 'det_ratio':
    return log_ratio > math.log(threshold)
  raise ValueError(f'sync.trigger: {rule!r} is not one of [\'dislinucb\', \'det_ratio\']')


def auto_threshold(num_clients: int, rounds: int, d: int) -> float:
  """DisLinUCB's D = T / (N d log T), with T the total number of interactions N * rounds."""
  total = max(num_clients * rounds, 3)
  return total / (num_clients * d * math.log(total))


def synchronise(c: Clients, s: Server, participate) -> tuple[Clients, Server]:
  """Participants upload their pending statistics, then download the merged global ones.

  Args:
    participate: [N] bool.
  """
  mask = participate[:, None, None]
  gram = s.gram + jnp.sum(jnp.where(mask, c.pending_gram, 0.0), axis=0)
  b = s.b + jnp.sum(jnp.where(participate[:, None], c.pending_b, 0.0), axis=0)
  n = s.n + jnp.sum(jnp.where(participate, c.pending_n, 0.0))
  ld = logdet_spd(gram)
  server = Server(gram=gram, b=b, n=n, logdet=ld)
  inv = inverse_spd(gram)
  p1 = participate[:, None]
  clients = Clients(
      gram_sync=jnp.where(mask, gram, c.gram_sync), gram_inv=jnp.where(mask, inv, c.gram_inv),
      b=jnp.where(p1, b, c.b), n=jnp.where(participate, n, c.n),
      pending_gram=jnp.where(mask, 0.0, c.pending_gram),
      pending_b=jnp.where(p1, 0.0, c.pending_b),
      pending_n=jnp.where(participate, 0.0, c.pending_n),
      logdet=jnp.where(participate, ld, c.logdet),
      logdet_sync=jnp.where(participate, ld, c.logdet_sync))
  return clients, server
