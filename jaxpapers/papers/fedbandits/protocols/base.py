"""What a communication protocol sees and decides when a communication event happens.

A protocol is a schedule ('never', 'every_round', or 'triggered' = when any client's
upload condition holds) plus `decide(auction, mechanism) -> Decision`: who uploads (and
then downloads) and what each is paid.

Incentives (Inc-FedUCB / Truth-FedBan setting; the exact form is not public, so this is
our reconstruction, exposed as config `incentive.*`):
  * Client j has a private participation cost c_j and reports r_j (= c_j if truthful).
  * Uploading also earns it the server's new data; its value is
    v_j = data_value * max(0, log det V_g - log det V_j,sync): the log-det information the
    server gained since j last synchronised. The server knows both terms, and v_j does not
    depend on any report.
  * The server must pay j its net reported cost n_j = max(r_j - v_j, 0) for j to upload.
  * Clients whose own trigger fired upload unpaid: they asked for the synchronisation.
    Everyone else the server wants must be paid; baselines that need full participation
    (centralised, DisLinUCB) pay each of them n_j (pay-as-bid).
  * Clients with n_j > `max_payment` (a reserve price) are never bought.
  * The server wants det V_S >= beta * det V_all, where V_S = V_g plus the uploads of the
    triggered and selected clients and V_all = V_g plus every client's pending data.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import flax.struct
import jax
import jax.numpy as jnp

from jaxpapers.core import registry as registry_lib
from jaxpapers.papers.fedbandits import linucb

SCHEDULES = ('never', 'every_round', 'triggered')
PROTOCOLS = registry_lib.Registry('fedbandits protocol')


@dataclasses.dataclass(frozen=True)
class Mechanism:
  """Static incentive hyperparameters (config `incentive.*`)."""
  beta: float = 0.5          # det V_S >= beta * det V_all (Inc-FedUCB's condition)
  data_value: float = 0.0    # weight of the data value v_j, in cost units per nat
  max_payment: float = 1.0   # reserve price: net costs above it are never bought
  eps: float = 1e-6          # floor on n_j in the gain / cost ratio
  gain_tol: float = 1e-9     # log-det gains at or below this count as zero
  prune: bool = True         # Inc-FedUCB: drop costly redundant winners after greedy
  critical_batch: int = 8    # Truth-FedBan: critical-value searches run at once


@flax.struct.dataclass
class Auction:
  base_gram: jax.Array     # [d, d] V_g + uploads of the triggered clients
  base_logdet: jax.Array   # []
  pending: jax.Array       # [N, d, d] each client's pending dV
  triggered: jax.Array     # [N] bool
  net_cost: jax.Array      # [N] n_j = max(r_j - v_j, 0)
  eligible: jax.Array      # [N] bool: may be bought
  target: jax.Array        # [] log det V_all + log beta


@flax.struct.dataclass
class Decision:
  participate: jax.Array   # [N] bool: uploads, then downloads
  paid: jax.Array          # [N] bool: participates because it was paid
  payment: jax.Array       # [N]


@dataclasses.dataclass(frozen=True)
class Protocol:
  name: str
  schedule: str
  decide: Callable[[Auction, Mechanism], Decision] | None


def register(name: str, schedule: str):
  """Decorator: registers `decide` as protocol `name` with its event schedule."""
  if schedule not in SCHEDULES:
    raise ValueError(f'schedule {schedule!r} is not one of {SCHEDULES}')

  def wrap(decide):
    PROTOCOLS.register(name)(Protocol(name=name, schedule=schedule, decide=decide))
    return decide
  return wrap


def data_value(server: linucb.Server, clients: linucb.Clients, weight: float):
  """[N] v_j = weight * max(0, log det V_g - log det V_j,sync)."""
  return weight * jnp.maximum(server.logdet - clients.logdet_sync, 0.0)


def make_auction(server: linucb.Server, clients: linucb.Clients, triggered, reported_cost,
                 mech: Mechanism) -> tuple[Auction, jax.Array]:
  """Builds the event's auction; also returns the data values v_j [N]."""
  value = data_value(server, clients, mech.data_value)
  net = jnp.maximum(reported_cost - value, 0.0)
  pending = clients.pending_gram
  base = server.gram + jnp.sum(jnp.where(triggered[:, None, None], pending, 0.0), axis=0)
  full = server.gram + jnp.sum(pending, axis=0)
  eligible = ~triggered & (clients.pending_n > 0) & (net <= mech.max_payment)
  auction = Auction(base_gram=base, base_logdet=linucb.logdet_spd(base), pending=pending,
                    triggered=triggered, net_cost=net, eligible=eligible,
                    target=linucb.logdet_spd(full) + math.log(mech.beta))
  return auction, value


def full_participation(auction: Auction) -> Decision:
  """Everyone uploads; the server pays every non-triggered client its net cost."""
  everyone = jnp.ones_like(auction.triggered)
  paid = ~auction.triggered
  return Decision(participate=everyone, paid=paid,
                  payment=jnp.where(paid, auction.net_cost, 0.0))
