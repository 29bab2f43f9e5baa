"""Experiment 'fedbandits': every configured protocol on one environment, same draws.

  python -m jaxpapers.launch --config=configs/fedbandits_synthetic.py --workdir=W

Stages: validate, mesh, env + client costs, then per algorithm: compile the chunked round
loop (`log_every` rounds per call), run it, write one metrics.jsonl row per chunk
(`<algorithm>/regret`, `/communication`, `/payment`, `/participation`, `/events`, all
cumulative), and finally results.json (final values per algorithm, wall and compile
seconds) and curves.png (regret, communication, payment, participation vs rounds, all
algorithms on one figure) plus curves_triggered.png with only the trigger-driven protocols.
"""
from __future__ import annotations

import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.core import config as config_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics
from jaxpapers.core import registry
from jaxpapers.papers.fedbandits import costs as costs_lib
from jaxpapers.papers.fedbandits import envs
from jaxpapers.papers.fedbandits import federation
from jaxpapers.papers.fedbandits import linucb
from jaxpapers.papers.fedbandits import movielens  # noqa: F401  registers 'movielens'
from jaxpapers.papers.fedbandits import protocols
from jaxpapers.papers.fedbandits.protocols import base

CURVES = ('regret', 'communication', 'payment', 'participation')
require = config_lib.require


def validate(c) -> None:
  """Every check names the field and the value received (ConfigError)."""
  config_lib.check_positive(c, 'num_clients', 'rounds', 'log_every', 'env.d', 'env.num_arms',
                            'bandit.lam', 'incentive.beta', 'incentive.max_payment',
                            'incentive.eps', 'incentive.critical_batch')
  config_lib.check_divisible(c, 'rounds', c.log_every, 'rounds run in chunks of log_every')
  config_lib.check_choice(c, 'env.name', envs.ENVS.names())
  config_lib.check_choice(c, 'bandit.dtype', ('float32', 'float64'))
  config_lib.check_choice(c, 'rng_impl', ('threefry2x32', 'rbg', 'unsafe_rbg'))
  config_lib.check_choice(c, 'sync.trigger', ('dislinucb', 'det_ratio'))
  config_lib.check_choice(c, 'costs.distribution', sorted(costs_lib.DISTRIBUTIONS))
  require(len(c.algorithms) > 0, 'algorithms', 'must name at least one protocol')
  for name in c.algorithms:
    require(name in protocols.names(), 'algorithms',
            f'{name!r} is not one of {protocols.names()}')
  require(0 < c.bandit.delta < 1, 'bandit.delta', f'must lie in (0, 1), got {c.bandit.delta!r}')
  require(0 < c.incentive.beta <= 1, 'incentive.beta',
          f'must lie in (0, 1], got {c.incentive.beta!r}')
  require(0 <= c.costs.strategic_fraction <= 1, 'costs.strategic_fraction',
          f'must lie in [0, 1], got {c.costs.strategic_fraction!r}')
  for field in ('env.noise', 'bandit.sigma', 'bandit.alpha_scale', 'sync.threshold',
                'incentive.data_value', 'costs.low', 'costs.high', 'costs.scale',
                'costs.misreport_factor'):
    value = _get(c, field)
    require(math.isfinite(value) and value >= 0, field, f'must be finite and >= 0, got {value!r}')
  require(c.costs.low <= c.costs.high, 'costs.low', f'{c.costs.low} > costs.high {c.costs.high}')
  require(c.sync.gamma > 1, 'sync.gamma', f'det-ratio trigger needs > 1, got {c.sync.gamma!r}')


def _get(c, dotted):
  for part in dotted.split('.'):
    c = c[part]
  return c


def settings_from(c) -> federation.Settings:
  threshold = c.sync.threshold or linucb.auto_threshold(c.num_clients, c.rounds, c.env.d)
  if c.sync.trigger == 'det_ratio':
    threshold = c.sync.gamma
  i = c.incentive
  mech = base.Mechanism(beta=i.beta, data_value=i.data_value, max_payment=i.max_payment,
                        eps=i.eps, gain_tol=i.gain_tol, prune=i.prune,
                        critical_batch=i.critical_batch)
  b = c.bandit
  return federation.Settings(d=c.env.d, lam=b.lam, sigma=b.sigma, delta=b.delta,
                             alpha_scale=b.alpha_scale, tie_decimals=b.tie_decimals,
                             trigger=c.sync.trigger, threshold=float(threshold), mechanism=mech)


def run_algorithm(c, name, settings, env, pop, key, mesh, writer) -> tuple[dict, list]:
  """Runs one protocol for c.rounds rounds; returns (final results, rows for the plot)."""
  n = c.num_clients
  state = federation.init_state(n, settings.d, settings.lam, env.items.dtype)
  state, env, pop = federation.place(mesh, state, env, pop)
  runner = federation.make_runner(settings, name, c.log_every, mesh, n)
  start = time.perf_counter()
  compiled = runner.lower(state, env, pop, key).compile()
  compile_s = time.perf_counter() - start
  sums = dict.fromkeys(('regret', 'communication', 'payment', 'participants', 'event'), 0.0)
  rows, start = [], time.perf_counter()
  with metrics.progress(c.rounds, desc=name) as bar:
    for chunk in range(c.rounds // c.log_every):
      state, stats = compiled(state, env, pop, key)
      for k in sums:
        sums[k] += float(np.sum(jax.device_get(getattr(stats, k))))
      row = {'regret': sums['regret'], 'communication': sums['communication'],
             'payment': sums['payment'], 'events': sums['event'],
             'participation': sums['participants'] / max(n * sums['event'], 1.0)}
      step = (chunk + 1) * c.log_every
      if not math.isfinite(row['regret']):
        raise FloatingPointError(f'{name}: non-finite regret in rounds '
                                 f'{step - c.log_every + 1}..{step}')
      writer.write(step, {f'{name}/{k}': v for k, v in row.items()})
      rows.append({'step': step, 'algorithm': name, **row})
      bar.update(c.log_every)
  wall_s = time.perf_counter() - start
  return _final(rows[-1], state, pop, n, c.rounds, wall_s, compile_s), rows


def _final(row, state, pop, n, rounds, wall_s, compile_s) -> dict:
  utility = np.asarray(jax.device_get(state.totals.utility))
  strategic = np.asarray(jax.device_get(pop.strategic))
  out = {k: row[k] for k in ('regret', 'communication', 'payment', 'participation', 'events')}
  out.update(regret_per_client=row['regret'] / n, regret_per_interaction=row['regret'] /
             (n * rounds), wall_s=round(wall_s, 3), compile_s=round(compile_s, 3),
             utility_truthful=float(utility[~strategic].sum()),
             utility_strategic=float(utility[strategic].sum()),
             num_strategic=int(strategic.sum()))
  return out


@registry.experiment('fedbandits')
def run(config, workdir) -> dict:
  validate(config)
  with jax.enable_x64(config.bandit.dtype == 'float64'):
    return _run(config, pathlib.Path(workdir))


def _run(c, workdir: pathlib.Path) -> dict:
  mesh = mesh_lib.make_mesh(dict(c.mesh))
  dtype = jnp.dtype(c.bandit.dtype)
  try:
    env = envs.make(c.env, c.num_clients, c.seed, dtype)
  except (FileNotFoundError, ValueError) as e:  # missing data file, d too large, ...
    raise config_lib.ConfigError(str(e)) from None
  pop = costs_lib.sample(c.costs, c.num_clients, c.seed, dtype)
  settings = settings_from(c)
  key = jax.random.key(c.seed, impl=c.rng_impl)
  writer = metrics.MetricWriter(workdir)
  print(f'fedbandits: {mesh_lib.describe(mesh)}; env {c.env.name}, N={c.num_clients}, '
        f'T={c.rounds}, d={c.env.d}, K={c.env.num_arms}, threshold {settings.threshold:.4g}')
  results, rows = {}, []
  for name in c.algorithms:
    results[name], algo_rows = run_algorithm(c, name, settings, env, pop, key, mesh, writer)
    rows += algo_rows
    print(f'  {name:13s} ' + ', '.join(f'{k} {results[name][k]:.6g}' for k in
                                        ('regret', 'communication', 'payment', 'participation',
                                         'events', 'wall_s', 'compile_s')))
  metrics.write_json(workdir / 'results.json', {
      'env': c.env.name, 'num_clients': c.num_clients, 'rounds': c.rounds, 'd': c.env.d,
      'threshold': settings.threshold, 'devices': jax.device_count(), 'algorithms': results})
  title = f'{c.env.name}: N={c.num_clients}, T={c.rounds}'
  metrics.plot_curves(rows, CURVES, workdir / 'curves.png', series='algorithm', title=title)
  triggered = [r for r in rows if protocols.get(r['algorithm']).schedule == 'triggered']
  if triggered:  # without the every-round / never baselines, whose scale hides the rest
    metrics.plot_curves(triggered, CURVES, workdir / 'curves_triggered.png',
                        series='algorithm', title=title + ' (triggered protocols)')
  return results
