"""Linear bandit environments for N clients that all act every round.

An environment is an `Env` pytree: an item table `items` [M, d] (arm features), env-specific
arrays in `data`, and a static `sample_fn(env, key) -> Round` that draws, for every client,
K arm indices, their mean rewards and the reward noise. Arms are drawn independently of
what the algorithm does, so every algorithm sees the same arm sets and noise for the same
seed (common random numbers), and the numpy reference can replay them.

Synthetic (ancestor: cyrilli/Async-LinUCB's simulator): items and a single theta* shared by
all clients drawn uniformly on the unit sphere; each round each client sees K items drawn
uniformly with replacement from the M items (choice: with replacement); reward = x^T theta*
+ N(0, noise^2). Each round takes one draw of K+2 uint32 words per client from the
round's key (arm indices by modulo, noise by Box-Muller): one PRNG call per round.
MovieLens-100K lives in `movielens.py`.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers.core import registry as registry_lib

ENVS = registry_lib.Registry('fedbandits env')


@flax.struct.dataclass
class Round:
  """One round's draw for every client."""
  arms: jax.Array   # [N, K] int32 item indices
  mean: jax.Array   # [N, K] expected reward of each arm
  noise: jax.Array  # [N] reward noise added to the chosen arm's mean


@flax.struct.dataclass
class Env:
  items: jax.Array  # [M, d] arm features
  data: Any         # env-specific arrays (theta*, positive lists, ...)
  num_clients: int = flax.struct.field(pytree_node=False)
  num_arms: int = flax.struct.field(pytree_node=False)
  sample_fn: Callable[['Env', jax.Array], Round] = flax.struct.field(pytree_node=False)


def sample(env: Env, key) -> Round:
  return env.sample_fn(env, key)


def features(env: Env, arms):
  """[N, K] indices -> [N, K, d] features."""
  return env.items[arms]


def round_key(key, t):
  """The key of round t; the JAX loop and the numpy reference both use this."""
  return jax.random.fold_in(key, t)


@jax.jit
def _sample_many(env: Env, key, rounds):
  return jax.lax.map(lambda t: sample(env, round_key(key, t)), rounds)


def sample_rounds(env: Env, key, start: int, count: int) -> Round:
  """Rounds start..start+count-1 as host numpy arrays [T, N, ...] (for the reference)."""
  return jax.tree.map(np.asarray, _sample_many(env, key, jnp.arange(start, start + count)))


def unit_rows(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


@flax.struct.dataclass
class SyntheticData:
  theta: jax.Array  # [d] theta*, shared by all clients
  noise: jax.Array  # [] reward noise std


def bits(key, num_clients: int, words: int):
  """[N, words] uint32 random words: one PRNG call per round (on CPU each threefry call is
  a rolled loop, so several calls per round cost more than the bandit update itself)."""
  return jax.random.bits(key, (num_clients, words), jnp.uint32)


def to_index(words, n):
  """uint32 words -> uniform ints in [0, n) (modulo bias < n / 2^32, negligible here)."""
  return (words % jnp.asarray(n, jnp.uint32)).astype(jnp.int32)


def to_normal(w1, w2, dtype):
  """Two uint32 words -> one N(0, 1) draw (Box-Muller)."""
  u1 = (w1.astype(dtype) + 0.5) / 2.0**32
  u2 = w2.astype(dtype) / 2.0**32
  return jnp.sqrt(-2.0 * jnp.log(u1)) * jnp.cos(2.0 * jnp.pi * u2)


def _sample_synthetic(env: Env, key) -> Round:
  k = env.num_arms
  words = bits(key, env.num_clients, k + 2)
  arms = to_index(words[:, :k], env.items.shape[0])
  mean = features(env, arms) @ env.data.theta
  noise = env.data.noise * to_normal(words[:, k], words[:, k + 1], env.items.dtype)
  return Round(arms=arms, mean=mean, noise=noise)


@ENVS.register('synthetic')
def synthetic(cfg, num_clients: int, seed: int, dtype) -> Env:
  """cfg: d, num_items, num_arms, noise (see configs/fedbandits_synthetic.py)."""
  rng = np.random.default_rng(seed)
  items = unit_rows(rng.standard_normal((cfg.num_items, cfg.d)))
  theta = unit_rows(rng.standard_normal((cfg.d,)))
  data = SyntheticData(theta=jnp.asarray(theta, dtype), noise=jnp.asarray(cfg.noise, dtype))
  return Env(items=jnp.asarray(items, dtype), data=data, num_clients=num_clients,
             num_arms=cfg.num_arms, sample_fn=_sample_synthetic)


def make(cfg, num_clients: int, seed: int, dtype) -> Env:
  """Builds the env named by cfg.name and validates it against cfg.d."""
  if num_clients < 1:
    raise ValueError(f'num_clients: must be >= 1, got {num_clients}')
  from jaxpapers.papers.fedbandits import movielens  # noqa: F401  registers 'movielens'
  env = ENVS.get(cfg.name)(cfg, num_clients, seed, dtype)
  validate(env, num_clients, cfg.d)
  return env


def validate(env: Env, num_clients: int, d: int) -> None:
  """Raises ValueError naming the field: client count, feature dimension, non-finite items."""
  if num_clients < 1 or env.num_clients != num_clients:
    raise ValueError(f'num_clients: env has {env.num_clients} clients, run asks for '
                     f'{num_clients} (must be >= 1 and equal)')
  items = np.asarray(env.items)
  if items.ndim != 2 or items.shape[1] != d:
    raise ValueError(f'env.items: feature dimension {items.shape[1:]} does not match d={d}')
  if not np.all(np.isfinite(items)):
    raise ValueError(f'env.items: {int(np.sum(~np.isfinite(items)))} non-finite (NaN/inf) '
                     'context values')
  if env.num_arms < 1:
    raise ValueError(f'env.num_arms: must be >= 1, got {env.num_arms}')
