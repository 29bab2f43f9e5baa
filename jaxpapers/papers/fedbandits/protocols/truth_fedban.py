"""Truth-FedBan (Wei et al., ICLR 2024): truthful incentives for federated bandits.

Myerson's recipe for a single-parameter (cost) domain:
  * a monotone selection rule: the greedy log-det cover by gain per reported net cost
    (`selection.cover`, no pruning); raising one's report only lowers one's ratio, so a
    loser never becomes a winner by asking for more;
  * critical-value payments: a winner is paid the largest net cost with which it would
    still have been selected, found by re-running the cover without it (`probe`) and
    taking max_k gain_j(S_k) / rho_k. The payment never depends on the winner's own
    report, so reporting the true cost maximises utility. Polynomial: one lazy-greedy run
    per winner, at most N picks each.
  * Payments are capped by the reserve `incentive.max_payment` (an essential client, one
    the others cannot replace, would otherwise have an unbounded critical value).
With data value v_j (independent of reports) the net cost is max(r_j - v_j, 0); the
selection is flat for r_j <= v_j, so a winner's critical net cost is >= 0 and utility
payment + v_j - c_j = (critical report) - c_j, Myerson's utility.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxpapers.papers.fedbandits.protocols import base
from jaxpapers.papers.fedbandits.protocols import selection


def critical_values(auction: base.Auction, gains0, winners, mech: base.Mechanism):
  """[N] critical net cost of each winner (0 for losers), capped at the reserve.

  Winners are searched first, `mech.critical_batch` at a time (padded with inactive
  probes to a whole number of batches, so the search is compiled once); a batch of
  losers exits at once.
  """
  n = winners.shape[0]
  batch = min(mech.critical_batch, n)
  pad = -n % batch
  order = jnp.argsort(~winners, stable=True)
  probes = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)])
  active = jnp.concatenate([winners[order], jnp.zeros((pad,), bool)])

  def one(args):
    probe, is_active = args
    return selection.cover(auction, gains0, mech, probe=probe, active=is_active).threshold

  values = jax.lax.map(one, (probes, active), batch_size=batch)[:n]
  values = jnp.zeros_like(values).at[order].set(values)
  return jnp.where(winners, jnp.minimum(values, mech.max_payment), 0.0)


@base.register('truth_fedban', schedule='triggered')
def truth_fedban(auction: base.Auction, mech: base.Mechanism) -> base.Decision:
  gains0 = selection.initial_gains(auction)
  winners = selection.cover(auction, gains0, mech).selected
  return base.Decision(participate=auction.triggered | winners, paid=winners,
                       payment=critical_values(auction, gains0, winners, mech))
