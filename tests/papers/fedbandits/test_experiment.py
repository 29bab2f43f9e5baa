"""The launcher end to end on `:quick`, and config mistakes naming the field."""
import json

import pytest

from configs import fedbandits_movielens
from configs import fedbandits_synthetic
from jaxpapers import launch
from jaxpapers.core import config as config_lib
from jaxpapers.core import metrics
from jaxpapers.papers.fedbandits import experiment
from tests.papers.fedbandits.conftest import PROTOCOLS


@pytest.mark.slow
def test_launch_quick_writes_metrics_results_and_plot(tmp_path, runs):
  del runs  # compiled round loops are shared with the session fixture
  config = fedbandits_synthetic.get_config('quick')
  results = launch.run(config, str(tmp_path))
  assert set(results) == set(PROTOCOLS)
  saved = json.loads((tmp_path / 'results.json').read_text())
  for name in PROTOCOLS:
    for key in ('regret', 'communication', 'payment', 'participation', 'wall_s'):
      assert key in saved['algorithms'][name]
  assert saved['algorithms']['independent']['communication'] == 0
  rows = metrics.read_metrics(tmp_path)
  assert len(rows) == len(PROTOCOLS) * config.rounds // config.log_every
  assert rows[-1]['step'] == config.rounds and 'truth_fedban/payment' in rows[-1]
  assert (tmp_path / 'curves.png').stat().st_size > 10_000
  assert (tmp_path / 'curves_triggered.png').exists()


@pytest.mark.parametrize('field, value, match', [
    ('incentive.beta', 1.5, 'config.incentive.beta'),
    ('costs.low', -1.0, 'config.costs.low'),
    ('log_every', 7, 'config.rounds'),
    ('num_clients', 0, 'config.num_clients'),
    ('algorithms', ('dislinucb', 'nope'), 'config.algorithms'),
    ('env.name', 'lastfm', 'config.env.name'),
])
def test_config_mistake_raises_config_error_naming_field(field, value, match):
  config = fedbandits_synthetic.get_config('quick')
  node, leaf = config, field.split('.')
  for part in leaf[:-1]:
    node = node[part]
  node[leaf[-1]] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    experiment.validate(config)


def test_movielens_config_validates():
  experiment.validate(fedbandits_movielens.get_config())
  experiment.validate(fedbandits_movielens.get_config('quick'))
