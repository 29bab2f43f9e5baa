"""The vmapped/scanned protocols against the numpy loop, and the regret / cost claims."""
import numpy as np
import pytest

from jaxpapers.papers.fedbandits import reference
from tests.papers.fedbandits.conftest import LONG_ROUNDS, PROTOCOLS


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_protocol_sharded_vmapped_equals_numpy_loop(instance, runs, protocol):
  state, ours = runs[protocol]
  ref = reference.simulate(instance.settings, protocol, instance.env, instance.pop,
                           instance.key, instance.config.rounds)
  np.testing.assert_array_equal(ours['arms'], ref['arms'])
  np.testing.assert_allclose(np.cumsum(ours['regret']), np.cumsum(ref['regret']), atol=1e-6)
  for k in ('communication', 'participants', 'paid', 'event'):
    np.testing.assert_array_equal(ours[k], ref[k], err_msg=k)
  np.testing.assert_allclose(ours['payment'], ref['payment'], atol=1e-6)
  np.testing.assert_allclose(np.asarray(state.totals.utility), ref['total_utility'], atol=1e-6)


def test_clients_sharded_one_per_device(instance, runs):
  state, _ = runs['dislinucb']
  assert len(state.clients.gram_inv.sharding.device_set) == 8
  assert state.clients.gram_inv.addressable_shards[0].data.shape[0] == 1


def test_regret_sublinear_on_synthetic(long_runs):
  cum = np.cumsum(long_runs['dislinucb']['regret'])
  t = np.array([25, 50, 100, 200])
  per_round = cum[t - 1] / t
  assert np.all(np.diff(per_round) < 0), per_round
  slope = np.polyfit(np.log(t), np.log(cum[t - 1]), 1)[0]
  assert slope < 0.8, slope


def test_independent_regret_exceeds_federated(runs):
  regret = {p: runs[p][1]['regret'].sum() for p in PROTOCOLS}
  assert regret['independent'] > regret['dislinucb']
  assert regret['independent'] > regret['centralized']


def test_inc_feducb_costs_below_centralized_and_clients_covered(runs):
  inc, cen = runs['inc_feducb'], runs['centralized']
  assert inc[1]['communication'].sum() < cen[1]['communication'].sum()
  assert inc[1]['payment'].sum() < cen[1]['payment'].sum()
  assert inc[1]['paid'].sum() > 0
  assert np.all(np.asarray(inc[0].totals.utility) >= -1e-9)  # payment + value >= cost


def test_truth_fedban_regret_close_to_dislinucb_and_rational(long_runs, runs):
  truth, dis = long_runs['truth_fedban']['regret'].sum(), long_runs['dislinucb']['regret'].sum()
  assert truth <= 1.5 * dis, (truth, dis)
  assert np.all(np.asarray(runs['truth_fedban'][0].totals.utility) >= -1e-9)
  assert len(long_runs['truth_fedban']['regret']) == LONG_ROUNDS
