"""Plain numpy reference: the same protocols as `federation.py`, one client at a time.

Written as the obvious Python loops (rounds, then clients, then the server's greedy), from
the same formulas, as a check of the vmapped / scanned JAX version and as the baseline of
`python -m jaxpapers.bench.fedbandits`. It replays the arm draws of `envs.sample_rounds`
(generated before the loop; not timed by the benchmark), so with the same seeds both pick
the same arms. `lazy=False` runs the full greedy (every candidate's gain at every step)
instead of the lazy one, to check that lazy evaluation changes nothing.
"""
from __future__ import annotations

import math

import numpy as np

from jaxpapers.papers.fedbandits import envs
from jaxpapers.papers.fedbandits import protocols


def logdet(m: np.ndarray) -> float:
  return 2.0 * float(np.sum(np.log(np.diag(np.linalg.cholesky(m)))))


def alpha(n: float, s) -> float:
  radius = s.sigma * math.sqrt(s.d * math.log1p(n / (s.d * s.lam)) + 2 * math.log(1 / s.delta))
  return s.alpha_scale * (radius + math.sqrt(s.lam))


def cover(base, base_ld, pending, net, eligible, target, mech, probe=-1, lazy=True):
  """Greedy log-det cover -> (selected [N] bool, gram, logdet, probe threshold)."""
  n = len(net)
  selected = np.zeros(n, bool)
  gram, ld, threshold = base.copy(), base_ld, -math.inf
  if ld >= target:
    return selected, gram, ld, threshold
  bound = np.array([logdet(base + pending[j]) - base_ld for j in range(n)])
  fresh = np.ones(n, bool)
  while True:
    if not lazy:
      for j in range(n):
        if not fresh[j]:
          bound[j], fresh[j] = logdet(gram + pending[j]) - ld, True
    cand = eligible & ~selected & (bound > mech.gain_tol)
    if probe >= 0:
      cand[probe] = False
    gain_p = logdet(gram + pending[probe]) - ld if probe >= 0 else 0.0
    if not cand.any():
      if probe >= 0 and gain_p > mech.gain_tol:
        threshold = math.inf
      return selected, gram, ld, threshold
    ratio = np.where(cand, bound / np.maximum(net, mech.eps), -np.inf)
    k = int(np.argmax(ratio))
    if not fresh[k]:
      bound[k], fresh[k] = logdet(gram + pending[k]) - ld, True
      continue
    if probe >= 0 and gain_p > mech.gain_tol:
      threshold = max(threshold, gain_p / ratio[k])
    selected[k] = True
    gram = gram + pending[k]
    ld = logdet(gram)
    fresh[:] = False
    if ld >= target:
      return selected, gram, ld, threshold


def prune(selected, gram, pending, net, target):
  """Reverse delete by decreasing net cost (stable: lower index first on ties)."""
  selected = selected.copy()
  for j in np.argsort(np.where(selected, -net, np.inf), kind='stable')[:selected.sum()]:
    gram_wo = gram - pending[j]
    if logdet(gram_wo) >= target:
      selected[j], gram = False, gram_wo
  return selected


def decide(name, base, base_ld, pending, triggered, net, eligible, target, mech, lazy):
  """-> (participate, paid, payment) for one communication event."""
  if name in ('centralized', 'dislinucb'):
    paid = ~triggered
    return np.ones_like(triggered), paid, np.where(paid, net, 0.0)
  args = (base, base_ld, pending, net, eligible, target, mech)
  winners = cover(*args, lazy=lazy)[0]
  if name == 'inc_feducb':
    if mech.prune:
      gram = base + sum((pending[j] for j in np.flatnonzero(winners)), np.zeros_like(base))
      winners = prune(winners, gram, pending, net, target)
    return triggered | winners, winners, np.where(winners, net, 0.0)
  if name == 'truth_fedban':
    payment = np.zeros(len(net))
    for j in np.flatnonzero(winners):
      payment[j] = min(cover(*args, probe=j, lazy=lazy)[3], mech.max_payment)
    return triggered | winners, winners, payment
  raise ValueError(f'protocol {name!r} has no reference')


class _Clients:
  """Per-client numpy statistics, mirroring linucb.Clients."""

  def __init__(self, n, d, lam):
    self.gram_sync = np.stack([lam * np.eye(d)] * n)
    self.inv = np.stack([np.eye(d) / lam] * n)
    self.b, self.pb = np.zeros((n, d)), np.zeros((n, d))
    self.pgram = np.zeros((n, d, d))
    self.n, self.pn = np.zeros(n), np.zeros(n)
    self.ld = np.full(n, d * math.log(lam))
    self.ld_sync = self.ld.copy()

  def act(self, i, x, mean, noise, s):
    """Client i picks among x [K, d]; returns (arm, regret)."""
    theta = self.inv[i] @ self.b[i]
    width = np.sqrt(np.maximum(np.sum((x @ self.inv[i]) * x, axis=1), 0.0))
    a = int(np.argmax(np.round(x @ theta + alpha(self.n[i], s) * width, s.tie_decimals)))
    xa, reward = x[a], mean[a] + noise
    u = self.inv[i] @ xa
    denom = 1.0 + xa @ u
    self.inv[i] -= np.outer(u, u) / denom
    self.pgram[i] += np.outer(xa, xa)
    self.b[i] += reward * xa
    self.pb[i] += reward * xa
    self.n[i] += 1
    self.pn[i] += 1
    self.ld[i] += math.log(denom)
    return a, float(np.max(mean) - mean[a])

  def triggered(self, s):
    ratio = self.ld - self.ld_sync
    if s.trigger == 'dislinucb':
      return ratio * self.pn >= s.threshold
    return ratio > math.log(s.threshold)


class _Server:
  def __init__(self, d, lam):
    self.gram, self.b, self.n = lam * np.eye(d), np.zeros(d), 0.0
    self.ld = d * math.log(lam)


def _event(name, s, c: _Clients, srv: _Server, triggered, pop, totals, lazy):
  """One communication event; returns (communication, payment, participants, paid)."""
  mech = s.mechanism
  value = mech.data_value * np.maximum(srv.ld - c.ld_sync, 0.0)
  net = np.maximum(pop['reported'] - value, 0.0)
  base = srv.gram + sum((c.pgram[j] for j in np.flatnonzero(triggered)), np.zeros_like(srv.gram))
  full = srv.gram + c.pgram.sum(axis=0)
  eligible = ~triggered & (c.pn > 0) & (net <= mech.max_payment)
  part, paid, pay = decide(name, base, logdet(base), c.pgram, triggered, net, eligible,
                           logdet(full) + math.log(mech.beta), mech, lazy)
  for j in np.flatnonzero(part):  # uploads
    srv.gram, srv.b, srv.n = srv.gram + c.pgram[j], srv.b + c.pb[j], srv.n + c.pn[j]
  srv.ld = logdet(srv.gram)
  inv = np.linalg.inv(srv.gram)
  for j in np.flatnonzero(part):  # downloads
    c.gram_sync[j], c.inv[j], c.b[j], c.n[j] = srv.gram, inv, srv.b, srv.n
    c.pgram[j], c.pb[j], c.pn[j] = 0.0, 0.0, 0.0
    c.ld[j] = c.ld_sync[j] = srv.ld
  totals['payment'] += pay
  totals['utility'] += np.where(paid, pay + value - pop['true'], 0.0)
  return 2.0 * part.sum(), pay.sum(), part.sum(), paid.sum()


def simulate(settings, protocol_name: str, env: envs.Env, pop, key, rounds: int,
             draws: envs.Round | None = None, lazy: bool = True) -> dict:
  """Numpy twin of `federation.simulate` -> per-round stats (+ per-client totals)."""
  schedule = protocols.get(protocol_name).schedule
  draws = envs.sample_rounds(env, key, 0, rounds) if draws is None else draws
  items = np.asarray(env.items, np.float64)
  n, s = env.num_clients, settings
  pop = {'true': np.asarray(pop.true_cost, np.float64),
         'reported': np.asarray(pop.reported_cost, np.float64)}
  c, srv = _Clients(n, s.d, s.lam), _Server(s.d, s.lam)
  totals = {'payment': np.zeros(n), 'utility': np.zeros(n)}
  out = {k: np.zeros(rounds) for k in ('regret', 'communication', 'payment', 'participants',
                                       'paid', 'event')}
  out['arms'] = np.zeros((rounds, n), np.int32)
  for t in range(rounds):
    for i in range(n):
      out['arms'][t, i], r = c.act(i, items[draws.arms[t, i]], draws.mean[t, i],
                                   draws.noise[t, i], s)
      out['regret'][t] += r
    triggered = np.zeros(n, bool) if schedule == 'every_round' else c.triggered(s)
    if schedule == 'every_round' or (schedule == 'triggered' and triggered.any()):
      comm = _event(protocol_name, s, c, srv, triggered, pop, totals, lazy)
      for k, v in zip(('communication', 'payment', 'participants', 'paid'), comm):
        out[k][t] = v
      out['event'][t] = 1
  out.update({f'total_{k}': v for k, v in totals.items()})
  return out
