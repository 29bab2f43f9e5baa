r"""Federated bandits: vmapped + scanned JAX protocols vs the plain numpy loop, same run.

  python -m jaxpapers.bench.fedbandits                      # N=100, T=2000, then N scaling
  python -m jaxpapers.bench.fedbandits --devices=8 --clients=0 --scaling=10000 \
      --scaling_rounds=5                                   # N=10,000 sharded on 8 devices

Prints, per protocol (DisLinUCB, Inc-FedUCB): the anchor (numpy loop, `reference.py`) wall
time, ours (one jitted `lax.scan` over all rounds, compile reported apart), the ratio, and
whether arm choices, regret, communication and payments agree. The reference replays the
arm draws generated before its timer starts (`envs.sample_rounds`); ours draws them inside
the loop. Then wall time per round as N grows (first `--scaling_rounds` rounds, which hold
the most communication events). Wall and process-CPU times are both reported: on a shared
machine CPU time is the steadier of the two. float64 throughout; the env, costs and protocol
settings are configs/fedbandits_synthetic.py's (d=25, K=25, 1000 items, beta=0.1).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def parse(argv):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--clients', type=int, default=100, help='N of the comparison (0 = skip)')
  p.add_argument('--rounds', type=int, default=2000, help='T of the comparison')
  p.add_argument('--protocols', default='dislinucb,inc_feducb')
  p.add_argument('--scaling', default='10,100,1000,10000', help='N values ("" = skip)')
  p.add_argument('--scaling_rounds', type=int, default=20, help='rounds per scaling point')
  p.add_argument('--scaling_reference_max', type=int, default=1000,
                 help='largest N the numpy loop runs in the scaling table')
  p.add_argument('--devices', type=int, default=1, help='fake CPU devices; clients sharded')
  p.add_argument('--out', default='', help='write the numbers as JSON here')
  return p.parse_args(argv)


def setup(n, rounds):
  """Env, costs and settings of configs/fedbandits_synthetic.py with N=n, T=rounds."""
  import jax.numpy as jnp
  from jaxpapers.core import config as config_lib
  from jaxpapers.papers.fedbandits import costs, envs, experiment
  c = config_lib.load_file('configs/fedbandits_synthetic.py', f'n={n},t={rounds}')
  env = envs.make(c.env, n, c.seed, jnp.float64)
  return env, costs.sample(c.costs, n, c.seed, jnp.float64), experiment.settings_from(c)


class Timer:
  """Wall and process CPU seconds (CPU time is steadier on a shared machine)."""

  def __enter__(self):
    self.wall, self.cpu = time.perf_counter(), time.process_time()
    return self

  def __exit__(self, *exc):
    self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_ours(settings, protocol, env, pop, key, rounds, mesh, repeats=2):
  """-> (compile Timer, fastest run Timer, stats dict)."""
  import jax
  import numpy as np
  from jaxpapers.papers.fedbandits import federation
  n = env.num_clients
  runner = federation.make_runner(settings, protocol, rounds, mesh, n)
  fresh = lambda: federation.place(
      mesh, federation.init_state(n, settings.d, settings.lam, env.items.dtype), env, pop)
  state, env_p, pop_p = fresh()
  with Timer() as compile_t:
    compiled = runner.lower(state, env_p, pop_p, key).compile()
  best = None
  for _ in range(repeats):
    state, env_p, pop_p = fresh()
    with Timer() as t:
      state, stats = jax.block_until_ready(compiled(state, env_p, pop_p, key))
    best = t if best is None or t.wall < best.wall else best
  return compile_t, best, {k: np.asarray(v) for k, v in vars(jax.device_get(stats)).items()}


def run_anchor(settings, protocol, env, pop, key, rounds):
  """-> (Timer, reference stats)."""
  from jaxpapers.papers.fedbandits import envs, reference
  draws = envs.sample_rounds(env, key, 0, rounds)  # untimed: the anchor's input
  with Timer() as t:
    out = reference.simulate(settings, protocol, env, pop, key, rounds, draws=draws)
  return t, out


def compare(args, key, mesh) -> list[dict]:
  import numpy as np
  env, pop, settings = setup(args.clients, args.rounds)
  rows = []
  for protocol in args.protocols.split(','):
    compile_t, ours_t, ours = run_ours(settings, protocol, env, pop, key, args.rounds, mesh)
    anchor_t, ref = run_anchor(settings, protocol, env, pop, key, args.rounds)
    cum = lambda r: np.cumsum(r['regret'])
    row = dict(protocol=protocol, clients=args.clients, rounds=args.rounds,
               anchor_s=anchor_t.wall, ours_s=ours_t.wall, compile_s=compile_t.wall,
               anchor_cpu_s=anchor_t.cpu, ours_cpu_s=ours_t.cpu,
               ratio=anchor_t.wall / ours_t.wall, ratio_cpu=anchor_t.cpu / ours_t.cpu,
               ratio_with_compile=anchor_t.wall / (ours_t.wall + compile_t.wall),
               arms_equal=float(np.mean(ours['arms'] == ref['arms'])),
               regret=float(cum(ours)[-1]), regret_anchor=float(cum(ref)[-1]),
               max_regret_diff=float(np.abs(cum(ours) - cum(ref)).max()),
               communication=float(ours['communication'].sum()),
               communication_anchor=float(ref['communication'].sum()),
               payment=float(ours['payment'].sum()), payment_anchor=float(ref['payment'].sum()),
               events=int(ours['event'].sum()))
    rows.append(row)
    print(f'{protocol:11s} N={args.clients} T={args.rounds}: anchor (numpy loop) '
          f'{anchor_t.wall:.2f} s | ours (vmap+scan) {ours_t.wall:.3f} s + compile '
          f'{compile_t.wall:.2f} s | ratio {row["ratio"]:.1f}x wall, {row["ratio_cpu"]:.1f}x '
          f'cpu ({row["ratio_with_compile"]:.1f}x with compile)')
    print(f'{"":11s} arms equal {row["arms_equal"]:.4f}, regret {row["regret"]:.6f} vs '
          f'{row["regret_anchor"]:.6f} (max |diff| {row["max_regret_diff"]:.2e}), comm '
          f'{row["communication"]:.0f} vs {row["communication_anchor"]:.0f}, payment '
          f'{row["payment"]:.4f} vs {row["payment_anchor"]:.4f}, events {row["events"]}',
          flush=True)
  return rows


def scaling(args, key, mesh) -> list[dict]:
  rows = []
  for n in [int(v) for v in args.scaling.split(',') if v]:
    env, pop, settings = setup(n, args.rounds)
    r = args.scaling_rounds
    for protocol in args.protocols.split(','):
      compile_t, ours_t, _ = run_ours(settings, protocol, env, pop, key, r, mesh)
      row = dict(protocol=protocol, clients=n, rounds=r, compile_s=compile_t.wall,
                 ours_ms_per_round=1e3 * ours_t.wall / r,
                 ours_cpu_ms_per_round=1e3 * ours_t.cpu / r,
                 ours_us_per_client_round=1e6 * ours_t.wall / (r * n))
      text = ''
      if n <= args.scaling_reference_max:
        anchor_t, _ = run_anchor(settings, protocol, env, pop, key, r)
        row.update(anchor_ms_per_round=1e3 * anchor_t.wall / r, ratio=anchor_t.wall / ours_t.wall,
                   ratio_cpu=anchor_t.cpu / ours_t.cpu)
        text = (f' | anchor {row["anchor_ms_per_round"]:.1f} ms/round, ratio '
                f'{row["ratio"]:.1f}x wall, {row["ratio_cpu"]:.1f}x cpu')
      rows.append(row)
      print(f'scaling {protocol:11s} N={n:6d}: ours {row["ours_ms_per_round"]:.2f} ms/round '
            f'({row["ours_us_per_client_round"]:.2f} us per client-round, cpu '
            f'{row["ours_cpu_ms_per_round"]:.2f} ms/round), compile {compile_t.wall:.1f} s{text}',
            flush=True)
  return rows


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  if args.devices > 1:  # before jax is imported
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                               f' --xla_force_host_platform_device_count={args.devices}')
  import jax
  from jaxpapers.core import mesh as mesh_lib
  with jax.enable_x64(True):
    mesh = mesh_lib.make_mesh({'data': -1}) if jax.device_count() > 1 else None
    print(f'fedbandits bench: {jax.device_count()} {jax.devices()[0].platform} device(s), '
          f'{os.cpu_count()} cpu core(s), float64', flush=True)
    key = jax.random.key(0)
    out = {'devices': jax.device_count(),
           'compare': compare(args, key, mesh) if args.clients else [],
           'scaling': scaling(args, key, mesh)}
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(out, f, indent=2)
  return out


if __name__ == '__main__':
  main()
