"""Shared fedbandits fixtures: float64, the `:quick` instance, and each protocol's run on it.

The runs use the quick config's settings, mesh (8 fake CPU devices, one client each) and
chunk length, so the launcher test reuses their compiled round loops.
"""
import jax
import jax.numpy as jnp
import pytest

from configs import fedbandits_synthetic
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.papers.fedbandits import costs
from jaxpapers.papers.fedbandits import envs
from jaxpapers.papers.fedbandits import experiment
from jaxpapers.papers.fedbandits import federation

PROTOCOLS = ('independent', 'centralized', 'dislinucb', 'inc_feducb', 'truth_fedban')
LONG_ROUNDS = 200   # for the regret-shape tests (same compiled chunk, more calls)


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


class Instance:
  """The quick config's env, costs, settings and mesh."""

  def __init__(self):
    self.config = fedbandits_synthetic.get_config('quick')
    c = self.config
    self.mesh = mesh_lib.make_mesh(dict(c.mesh))
    self.env = envs.make(c.env, c.num_clients, c.seed, jnp.float64)
    self.pop = costs.sample(c.costs, c.num_clients, c.seed, jnp.float64)
    self.settings = experiment.settings_from(c)
    self.key = jax.random.key(c.seed, impl=c.rng_impl)

  def run(self, protocol, rounds=None, settings=None, pop=None):
    return federation.simulate(settings or self.settings, protocol, self.env, pop or self.pop,
                               self.key, rounds or self.config.rounds, mesh=self.mesh,
                               chunk=self.config.log_every)


@pytest.fixture(scope='session')
def instance():
  with jax.enable_x64(True):
    return Instance()


@pytest.fixture(scope='session')
def runs(instance):
  """protocol -> (final state, per-round stats) over the quick config's T rounds."""
  with jax.enable_x64(True):
    return {p: instance.run(p) for p in PROTOCOLS}


@pytest.fixture(scope='session')
def long_runs(instance):
  """dislinucb and truth_fedban over LONG_ROUNDS rounds (regret shape)."""
  with jax.enable_x64(True):
    return {p: instance.run(p, rounds=LONG_ROUNDS)[1] for p in ('dislinucb', 'truth_fedban')}
