"""Client participation costs: true costs, reports, and which clients misreport.

Choices (papers silent): costs are drawn once per client from a configurable distribution
(config `costs.distribution`: uniform on [low, high], exponential with mean `scale`, or
constant `high`) and stay fixed for the run; a random `strategic_fraction` of clients
report `misreport_factor` times their true cost in every auction.
"""
from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

DISTRIBUTIONS = {
    'uniform': lambda rng, n, cfg: rng.uniform(cfg.low, cfg.high, n),
    'exponential': lambda rng, n, cfg: rng.exponential(cfg.scale, n),
    'constant': lambda rng, n, cfg: np.full(n, float(cfg.high)),
}


@flax.struct.dataclass
class Population:
  true_cost: jax.Array      # [N] c_j
  reported_cost: jax.Array  # [N] r_j
  strategic: jax.Array      # [N] bool: reports r_j != c_j


def sample(cfg, num_clients: int, seed: int, dtype) -> Population:
  """Draws costs per cfg (distribution, low, high, scale, strategic_fraction,
  misreport_factor)."""
  if cfg.distribution not in DISTRIBUTIONS:
    raise ValueError(f'costs.distribution: {cfg.distribution!r} is not one of '
                     f'{sorted(DISTRIBUTIONS)}')
  rng = np.random.default_rng(seed + 7919)
  true = DISTRIBUTIONS[cfg.distribution](rng, num_clients, cfg)
  strategic = rng.random(num_clients) < cfg.strategic_fraction
  reported = np.where(strategic, cfg.misreport_factor * true, true)
  return make(true, reported, strategic, dtype)


def make(true_cost, reported_cost=None, strategic=None, dtype=jnp.float32) -> Population:
  """Validated population from arrays (reported defaults to the truth)."""
  true_cost = np.asarray(true_cost, np.float64)
  reported_cost = true_cost if reported_cost is None else np.asarray(reported_cost, np.float64)
  strategic = (reported_cost != true_cost) if strategic is None else np.asarray(strategic)
  validate_array('costs.true_cost', true_cost)
  validate_array('costs.reported_cost', reported_cost)
  if reported_cost.shape != true_cost.shape:
    raise ValueError(f'costs.reported_cost: shape {reported_cost.shape} != true_cost '
                     f'shape {true_cost.shape}')
  return Population(true_cost=jnp.asarray(true_cost, dtype),
                    reported_cost=jnp.asarray(reported_cost, dtype),
                    strategic=jnp.asarray(strategic, bool))


def validate_array(field: str, values: np.ndarray) -> None:
  if values.ndim != 1 or values.size == 0:
    raise ValueError(f'{field}: expected one cost per client (shape [N], N >= 1), got '
                     f'shape {values.shape}')
  if not np.all(np.isfinite(values)):
    raise ValueError(f'{field}: {int(np.sum(~np.isfinite(values)))} non-finite value(s)')
  if np.any(values < 0):
    raise ValueError(f'{field}: negative cost(s), min {values.min():.4g}; costs must be >= 0')


def validate(pop: Population, num_clients: int) -> None:
  validate_array('costs.true_cost', np.asarray(pop.true_cost))
  validate_array('costs.reported_cost', np.asarray(pop.reported_cost))
  if pop.true_cost.shape[0] != num_clients:
    raise ValueError(f'costs.true_cost: {pop.true_cost.shape[0]} costs for {num_clients} '
                     'clients')
