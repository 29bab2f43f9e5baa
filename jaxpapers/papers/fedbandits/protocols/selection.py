"""Greedy log-det set cover: which clients to buy so that det V_S >= beta * det V_all.

Starting from the auction's base (V_g plus the triggered clients' uploads), repeatedly buy
the eligible client with the largest log-det gain per unit of net cost,

    gain_j(S) / max(n_j, eps),   gain_j(S) = log det(V_S + dV_j) - log det V_S,

until log det V_S reaches the target or no client with a positive gain is left
(Truth-FedBan's monotone selection rule; Inc-FedUCB runs it too, then prunes).

Choice: *lazy* greedy. log det is submodular over PSD updates, so last step's gain is an
upper bound on this step's; we refresh only the top candidate until the top one is fresh.
That picks exactly what the full greedy picks (up to exact ties) with one or two Cholesky
factorisations per step instead of N; the numpy reference checks it against the full one.

`probe=j` runs the search without client j and returns j's critical net cost: the largest
n_j with which j would still have been picked, max over steps k of gain_j(S_k) / rho_k
(rho_k = the ratio picked at step k); +inf when the others cannot reach the target and j
still adds information, -inf when j is never needed.
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from jaxpapers.papers.fedbandits import linucb
from jaxpapers.papers.fedbandits.protocols import base


@flax.struct.dataclass
class Cover:
  selected: jax.Array   # [N] bool
  bound: jax.Array      # [N] upper bound on each client's gain at the current S
  fresh: jax.Array      # [N] bool: bound is the exact gain at the current S
  gram: jax.Array       # [d, d] V_S
  logdet: jax.Array     # []
  threshold: jax.Array  # [] probe's critical net cost
  done: jax.Array       # [] bool


def initial_gains(auction: base.Auction):
  """[N] log-det gain of each client's pending data over the base."""
  return linucb.logdet_spd_batched(auction.base_gram + auction.pending) - auction.base_logdet


def _step(auction: base.Auction, mech: base.Mechanism, probe, c: Cover) -> Cover:
  """One lazy-greedy iteration: pick the top candidate if fresh, else refresh its gain.

  With a probe the search runs vmapped (Truth-FedBan's critical values), so its log dets
  use the batched-safe `logdet_spd_batched`."""
  logdet = linucb.logdet_spd if probe is None else linucb.logdet_spd_batched
  index = jnp.arange(auction.net_cost.shape[0])
  cand = auction.eligible & ~c.selected & (c.bound > mech.gain_tol)
  if probe is not None:
    cand = cand & (index != probe)
  has = jnp.any(cand)
  ratio = jnp.where(cand, c.bound / jnp.maximum(auction.net_cost, mech.eps), -jnp.inf)
  k = jnp.argmax(ratio)
  ld_k = logdet(c.gram + auction.pending[k])
  pick = has & c.fresh[k]
  refresh = has & ~c.fresh[k]
  threshold = c.threshold
  if probe is not None:
    gain_p = logdet(c.gram + auction.pending[probe]) - c.logdet
    live = gain_p > mech.gain_tol
    step = jnp.where(pick & live, gain_p / ratio[k], -jnp.inf)
    threshold = jnp.maximum(threshold, jnp.where(~has & live, jnp.inf, step))
  fresh = c.fresh.at[k].set(c.fresh[k] | refresh)
  return Cover(
      selected=c.selected.at[k].set(c.selected[k] | pick),
      bound=c.bound.at[k].set(jnp.where(refresh, ld_k - c.logdet, c.bound[k])),
      fresh=jnp.where(pick, jnp.zeros_like(fresh), fresh),
      gram=jnp.where(pick, c.gram + auction.pending[k], c.gram),
      logdet=jnp.where(pick, ld_k, c.logdet),
      threshold=threshold,
      done=~has | (pick & (ld_k >= auction.target)))


def cover(auction: base.Auction, gains0, mech: base.Mechanism, probe=None,
          active=True) -> Cover:
  """Greedy cover (see module docstring).

  Args:
    auction: the event.  gains0: [N] `initial_gains(auction)`.
    probe: None, or a client index [] to exclude and price.  active: [] bool; False
      returns at once (used to skip non-winners in a batch of probes).
  Returns:
    The final `Cover`.
  """
  dtype = auction.base_gram.dtype
  start = Cover(selected=jnp.zeros(gains0.shape, bool), bound=gains0,
                fresh=jnp.ones(gains0.shape, bool), gram=auction.base_gram,
                logdet=auction.base_logdet, threshold=jnp.asarray(-jnp.inf, dtype),
                done=(auction.base_logdet >= auction.target) | ~jnp.asarray(active))
  return jax.lax.while_loop(lambda c: ~c.done,
                            lambda c: _step(auction, mech, probe, c), start)


def prune(auction: base.Auction, c: Cover) -> Cover:
  """Reverse delete: visit winners by decreasing net cost (ties: lower index first) and
  drop each one whose removal keeps log det V_S at or above the target."""
  order = jnp.argsort(jnp.where(c.selected, -auction.net_cost, jnp.inf), stable=True)
  count = jnp.sum(c.selected)

  def body(state):
    i, selected, gram, ld = state
    j = order[i]
    gram_wo = gram - auction.pending[j]
    ld_wo = linucb.logdet_spd(gram_wo)
    drop = ld_wo >= auction.target
    return (i + 1, selected.at[j].set(selected[j] & ~drop),
            jnp.where(drop, gram_wo, gram), jnp.where(drop, ld_wo, ld))

  _, selected, gram, ld = jax.lax.while_loop(
      lambda s: s[0] < count, body, (jnp.asarray(0, count.dtype), c.selected, c.gram, c.logdet))
  return c.replace(selected=selected, gram=gram, logdet=ld)
