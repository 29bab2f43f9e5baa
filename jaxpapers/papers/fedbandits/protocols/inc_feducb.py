"""Inc-FedUCB (Wei et al., NeurIPS 2023): the server pays clients to upload.

When a communication event triggers, the server buys participation so that the global
statistics still satisfy det V_S >= beta * det V_all at (heuristically) least total
payment, paying each bought client its net reported cost n_j = max(r_j - v_j, 0)
(pay-as-bid: payment plus data value covers the reported cost).

Choice (the paper's heuristic search is not public): greedy set cover by log-det gain per
net cost (`selection.cover`), then, with `incentive.prune`, reverse delete of redundant
winners in decreasing cost order (`selection.prune`). Pay-as-bid is not truthful: a client
gains by over-reporting; Truth-FedBan fixes that.
"""
from __future__ import annotations

import jax.numpy as jnp

from jaxpapers.papers.fedbandits.protocols import base
from jaxpapers.papers.fedbandits.protocols import selection


@base.register('inc_feducb', schedule='triggered')
def inc_feducb(auction: base.Auction, mech: base.Mechanism) -> base.Decision:
  chosen = selection.cover(auction, selection.initial_gains(auction), mech)
  if mech.prune:
    chosen = selection.prune(auction, chosen)
  paid = chosen.selected
  return base.Decision(participate=auction.triggered | paid, paid=paid,
                       payment=jnp.where(paid, auction.net_cost, 0.0))
