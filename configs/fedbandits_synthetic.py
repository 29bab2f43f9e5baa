"""Federated linear bandits on the synthetic linear env: LinUCB baselines, Inc-FedUCB,
Truth-FedBan (Wei et al., NeurIPS 2023 https://arxiv.org/abs/2309.11702 and ICLR 2024
https://arxiv.org/abs/2402.04485; ancestor github cyrilli/Async-LinUCB).

Reproduces the papers' synthetic setting (d = 25, 1000 items and theta* on the unit sphere,
25 arms per round, sigma = 0.1, lambda = 0.1, delta = 0.1) with N = 100 clients that all act
in each of T = 2000 rounds; reports cumulative regret, matrices sent, incentives paid and
participation for every protocol on the same draws.

  python -m jaxpapers.launch --config=configs/fedbandits_synthetic.py --workdir=/tmp/fb_syn

Variants: `:quick` (N=8, T=40, d=5; seconds, for tests), `:n=1000,t=200` (sizes).
Expected (2 shared CPU cores, float64): a few minutes; regret independent >> DisLinUCB ~
Inc-FedUCB ~ Truth-FedBan > centralised, communication and payments of the incentive
protocols far below centralised (README has the measured table).
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, quick=False, n=100, t=2000)
  c = ml_collections.ConfigDict()
  c.experiment = 'fedbandits'     # registered in jaxpapers/papers/fedbandits/experiment.py
  c.seed = 0                      # env, costs and per-round draws
  c.rng_impl = 'threefry2x32'     # jax PRNG; threefry draws do not depend on the mesh
  c.algorithms = ('independent', 'centralized', 'dislinucb', 'inc_feducb', 'truth_fedban')
  c.num_clients = arg.n           # N, clients; all act every round
  c.rounds = arg.t                # T, rounds per client
  c.log_every = 50                # rounds per jitted chunk and per metrics.jsonl row

  # Environment (envs.py): items and theta* uniform on the unit sphere.
  c.env = ml_collections.ConfigDict()
  c.env.name = 'synthetic'        # envs.ENVS: synthetic | movielens
  c.env.d = 25                    # d, feature dimension
  c.env.num_items = 1000          # items arms are drawn from
  c.env.num_arms = 25             # K, arms per client per round
  c.env.noise = 0.1               # reward noise std

  add_protocol_settings(c, arg.quick)
  if arg.quick:
    c.env.d, c.env.num_items, c.env.num_arms = 5, 50, 5
  return c


def add_protocol_settings(c: ml_collections.ConfigDict, quick: bool) -> ml_collections.ConfigDict:
  """Bandit, trigger, incentive, cost and mesh fields shared by every fedbandits config."""
  # LinUCB (linucb.py).
  c.bandit = ml_collections.ConfigDict()
  c.bandit.lam = 0.1              # lambda, ridge regulariser
  c.bandit.delta = 0.1            # delta, confidence level in alpha_t
  c.bandit.sigma = 0.1            # sigma, noise scale in alpha_t
  c.bandit.alpha_scale = 1.0      # multiplies alpha_t (1 = theory value)
  c.bandit.tie_decimals = 9       # UCB rounded before argmax (ties -> lowest index)
  c.bandit.dtype = 'float64'      # float64 keeps Sherman-Morrison exact over T rounds

  # Upload trigger (DisLinUCB / Async-LinUCB).
  c.sync = ml_collections.ConfigDict()
  c.sync.trigger = 'dislinucb'    # log(det V/det V_sync) * dn >= D  |  'det_ratio' > gamma
  c.sync.threshold = 0.0          # D; 0 = N*T / (N d log(N*T)) (DisLinUCB)
  c.sync.gamma = 2.0              # gamma_U for 'det_ratio' (Async-LinUCB)

  # Incentives (protocols/base.py): Inc-FedUCB and Truth-FedBan.
  c.incentive = ml_collections.ConfigDict()
  c.incentive.beta = 0.1          # beta: det V_S >= beta * det V_all (Inc-FedUCB)
  c.incentive.data_value = 0.0    # weight of a client's value for downloaded data (per nat)
  c.incentive.max_payment = 1.0   # reserve price; net costs above are never bought
  c.incentive.eps = 1e-6          # floor on net cost in gain / cost
  c.incentive.gain_tol = 1e-9     # log-det gains <= this count as zero
  c.incentive.prune = True        # Inc-FedUCB: reverse-delete redundant winners
  c.incentive.critical_batch = 8  # Truth-FedBan: critical-value searches at once

  # Client participation costs (costs.py).
  c.costs = ml_collections.ConfigDict()
  c.costs.distribution = 'uniform'  # uniform | exponential | constant
  c.costs.low = 0.0               # uniform lower bound
  c.costs.high = 1.0              # uniform upper bound (constant value)
  c.costs.scale = 0.5             # exponential mean
  c.costs.strategic_fraction = 0.0  # share of clients that misreport
  c.costs.misreport_factor = 1.0  # reported = factor * true cost for them

  c.mesh = common.mesh(data=-1)   # clients sharded over data; -1 = remaining devices

  if quick:
    c.num_clients, c.rounds, c.log_every = 8, 40, 10
    # every code path: paid uploads (beta 0.5), data value in the net cost, two clients
    # over-reporting by 1.5x
    c.incentive.beta, c.incentive.data_value = 0.5, 0.05
    c.costs.strategic_fraction, c.costs.misreport_factor = 0.25, 1.5
  return c
