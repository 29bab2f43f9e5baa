"""Baseline protocols: independent LinUCB, centralised LinUCB, DisLinUCB.

  independent   no communication; each client learns alone.
  centralized   every client uploads and downloads in every round (the server schedules
                it, so every client is paid its net cost n_j each round).
  dislinucb     Wang et al. 2020 (ancestor: cyrilli/Async-LinUCB): when any client's
                trigger fires, every client uploads and downloads; the non-triggered are
                paid n_j (what forcing full participation costs self-interested clients).
"""
from __future__ import annotations

from jaxpapers.papers.fedbandits.protocols import base


@base.register('independent', schedule='never')
def independent(auction: base.Auction, mech: base.Mechanism) -> base.Decision:
  raise AssertionError('independent LinUCB never communicates')


@base.register('centralized', schedule='every_round')
def centralized(auction: base.Auction, mech: base.Mechanism) -> base.Decision:
  del mech
  return base.full_participation(auction)


@base.register('dislinucb', schedule='triggered')
def dislinucb(auction: base.Auction, mech: base.Mechanism) -> base.Decision:
  del mech
  return base.full_participation(auction)
