"""The federated round loop: all clients act every round (vmap), rounds run under lax.scan.

One round, for every client at once: draw K arms, pick argmax UCB, observe the reward,
update the statistics (Sherman-Morrison), evaluate the upload trigger; then, if the
protocol's schedule says so, hold a communication event (`lax.cond` on "any trigger"):
build the auction, let the protocol decide who uploads and what each is paid, merge the
uploads on the server and send the new global statistics back to every participant.

Accounting (choices where the papers are silent):
  * regret: summed over clients, against the best arm of each client's arm set;
  * communication: d x d matrices sent, one upload plus one download per participant;
  * payment: what the server pays (net of data value); utility of a paid client:
    payment + data value - true cost.
Clients are sharded over the mesh's batch axes (`data`, `fsdp`) when N divides; the server
state is replicated, and so is an event's auction (pending statistics of all clients, as
on a real server): its greedy while-loops then need no collective per iteration. The round
key is fold_in(key, t), so chunking does not change results.
"""
from __future__ import annotations

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.papers.fedbandits import costs as costs_lib
from jaxpapers.papers.fedbandits import envs
from jaxpapers.papers.fedbandits import linucb
from jaxpapers.papers.fedbandits import protocols
from jaxpapers.papers.fedbandits.protocols import base


@dataclasses.dataclass(frozen=True)
class Settings:
  """Static hyperparameters of one run (configs/fedbandits_*.py `bandit`, `sync`)."""
  d: int = 25
  lam: float = 0.1            # lambda, ridge
  sigma: float = 0.1          # sigma in alpha_n
  delta: float = 0.1          # delta in alpha_n
  alpha_scale: float = 1.0    # multiplies alpha_n
  tie_decimals: int = 9       # UCB rounding before argmax
  trigger: str = 'dislinucb'  # 'dislinucb' | 'det_ratio'
  threshold: float = 1.0      # D (dislinucb) or gamma_U (det_ratio), resolved
  mechanism: base.Mechanism = base.Mechanism()


@flax.struct.dataclass
class Totals:
  payment: jax.Array   # [N] received
  utility: jax.Array   # [N] payment + value - true cost, over paid uploads
  uploads: jax.Array   # [N]


@flax.struct.dataclass
class State:
  clients: linucb.Clients
  server: linucb.Server
  totals: Totals
  t: jax.Array         # [] rounds done


@flax.struct.dataclass
class RoundStats:
  regret: jax.Array         # [] summed over clients
  communication: jax.Array  # [] matrices sent
  payment: jax.Array        # []
  participants: jax.Array   # [] clients that uploaded
  paid: jax.Array           # [] of which were paid
  event: jax.Array          # [] 1 if a communication event happened
  arms: jax.Array           # [N] chosen arm slot of each client


def init_state(num_clients: int, d: int, lam: float, dtype) -> State:
  zeros = lambda: jnp.zeros((num_clients,), dtype)  # distinct buffers (donated)
  return State(clients=linucb.init_clients(num_clients, d, lam, dtype),
               server=linucb.init_server(d, lam, dtype),
               totals=Totals(payment=zeros(), utility=zeros(), uploads=zeros()),
               t=jnp.zeros((), jnp.int32))


def _no_comm(dtype):
  z = jnp.zeros((), dtype)
  return z, z, z, z, z


def communicate(settings: Settings, protocol, pop: costs_lib.Population, state: State,
                triggered, mesh: Mesh | None = None):
  """One communication event -> (state, (communication, payment, participants, paid, 1))."""
  with jax.named_scope(f'communicate_{protocol.name}'):
    return _communicate(settings, protocol, pop, state, triggered, mesh)


def _communicate(settings: Settings, protocol, pop, state: State, triggered, mesh):
  mech = settings.mechanism
  clients, server = state.clients, state.server
  auction, value = base.make_auction(server, clients, triggered, pop.reported_cost, mech)
  if mesh is not None:  # the server holds every upload: the greedy loops run collective-free
    auction = jax.lax.with_sharding_constraint(auction, mesh_lib.replicated(mesh))
  dec = protocol.decide(auction, mech)
  clients, server = linucb.synchronise(clients, server, dec.participate)
  utility = jnp.where(dec.paid, dec.payment + value - pop.true_cost, 0.0)
  part = dec.participate.astype(value.dtype)
  totals = Totals(payment=state.totals.payment + dec.payment,
                  utility=state.totals.utility + utility, uploads=state.totals.uploads + part)
  state = state.replace(clients=clients, server=server, totals=totals)
  dtype = value.dtype
  return state, (2.0 * jnp.sum(part), jnp.sum(dec.payment), jnp.sum(part),
                 jnp.sum(dec.paid.astype(dtype)), jnp.ones((), dtype))


def round_step(settings: Settings, protocol, env: envs.Env, pop, key, state: State,
               mesh: Mesh | None = None):
  """One round for all clients -> (state, RoundStats)."""
  with jax.named_scope('sample'):
    rnd = envs.sample(env, envs.round_key(key, state.t))
    x = envs.features(env, rnd.arms)                                   # [N, K, d]
  c = state.clients
  with jax.named_scope('ucb'):
    width = linucb.alpha(c.n, settings.d, settings.lam, settings.sigma, settings.delta,
                         settings.alpha_scale)
    scores = jax.vmap(linucb.ucb_scores, (0, 0, 0, 0, None))(
        c.gram_inv, c.b, x, width, settings.tie_decimals)
    choice = jnp.argmax(scores, axis=-1)                               # [N]
  x_a = jnp.take_along_axis(x, choice[:, None, None], axis=1)[:, 0]
  mean_a = jnp.take_along_axis(rnd.mean, choice[:, None], axis=1)[:, 0]
  regret = jnp.sum(jnp.max(rnd.mean, axis=-1) - mean_a)
  with jax.named_scope('observe'):
    clients = jax.vmap(linucb.observe)(c, x_a, mean_a + rnd.noise)
  state = state.replace(clients=clients, t=state.t + 1)
  dtype = x.dtype
  if protocol.schedule == 'never':
    comm = _no_comm(dtype)
  elif protocol.schedule == 'every_round':
    state, comm = communicate(settings, protocol, pop, state,
                              jnp.zeros(choice.shape, bool), mesh)
  else:
    triggered = linucb.trigger(clients, settings.trigger, settings.threshold)
    state, comm = jax.lax.cond(
        jnp.any(triggered),
        lambda s: communicate(settings, protocol, pop, s, triggered, mesh),
        lambda s: (s, _no_comm(dtype)), state)
  return state, RoundStats(regret, *comm, arms=choice.astype(jnp.int32))


def client_sharding(mesh: Mesh, num_clients: int) -> NamedSharding:
  """Client axis (leading dim of every per-client array) on the batch mesh axes when N
  divides their size, else replicated."""
  return NamedSharding(mesh, mesh_lib.logical_spec(('batch',), (num_clients,), mesh))


def shardings(mesh: Mesh, num_clients: int):
  """Prefix sharding trees for (state, env, pop, key): per-client arrays split, the rest
  (server, env tables, key) replicated."""
  per_client, rep = client_sharding(mesh, num_clients), mesh_lib.replicated(mesh)
  state = State(clients=per_client, server=rep, totals=per_client, t=rep)
  return state, rep, per_client, rep


def place(mesh: Mesh | None, state: State, env: envs.Env, pop):
  """Puts (state, env, pop) on the mesh with `shardings` (no-op without a mesh)."""
  if mesh is None:
    return state, env, pop
  s_state, s_env, s_pop, _ = shardings(mesh, pop.true_cost.shape[0])
  return (jax.device_put(state, s_state), jax.device_put(env, s_env),
          jax.device_put(pop, s_pop))


@functools.lru_cache(maxsize=32)
def make_runner(settings: Settings, protocol_name: str, rounds: int, mesh: Mesh | None = None,
                num_clients: int = 0):
  """jit(run)(state, env, pop, key) -> (state, RoundStats [rounds]); state is donated.

  Cached on its arguments, so every caller with the same settings shares one compile.
  """
  protocol = protocols.get(protocol_name)

  def run(state, env, pop, key):
    body = lambda s, _: round_step(settings, protocol, env, pop, key, s, mesh)
    return jax.lax.scan(body, state, None, length=rounds)

  if mesh is None:
    return jax.jit(run, donate_argnums=0)
  in_shardings = shardings(mesh, num_clients)
  return jax.jit(run, in_shardings=in_shardings,
                 out_shardings=(in_shardings[0], mesh_lib.replicated(mesh)), donate_argnums=0)


def simulate(settings: Settings, protocol_name: str, env: envs.Env, pop, key, rounds: int,
             mesh: Mesh | None = None, chunk: int | None = None) -> tuple[State, dict]:
  """Runs `rounds` rounds (in calls of `chunk` rounds); returns the final state and the
  per-round stats as numpy arrays [rounds, ...]."""
  n = env.num_clients
  envs.validate(env, n, settings.d)
  costs_lib.validate(pop, n)
  chunk = chunk or rounds
  if rounds % chunk:
    raise ValueError(f'rounds: {rounds} is not a multiple of chunk {chunk}')
  state = init_state(n, settings.d, settings.lam, env.items.dtype)
  state, env, pop = place(mesh, state, env, pop)
  runner = make_runner(settings, protocol_name, chunk, mesh, n)
  parts = []
  for _ in range(rounds // chunk):
    state, stats = runner(state, env, pop, key)
    parts.append(jax.device_get(stats))
  return state, {k: np.concatenate([np.asarray(getattr(p, k)) for p in parts])
                 for k in vars(parts[0])}
