"""The launcher end to end on `:tiny`; config mistakes name the field."""
import json

import pytest

from configs import personaagent_baselines
from jaxpapers import launch
from jaxpapers.core import config as config_lib
from jaxpapers.papers.personaagent import experiment
from jaxpapers.papers.personaagent import tasks


def test_tiny_run_writes_lamp_files_predictions_and_results(tmp_path):
  config = personaagent_baselines.get_config('tiny')
  results = launch.run(config, str(tmp_path))
  saved = json.loads((tmp_path / 'results.json').read_text())
  assert set(saved['methods']) == set(config.methods)
  for name in ('global_mean', 'user_mean', 'item_mean', 'mf', 'bm25_knn', 'dense_knn'):
    row = saved['methods'][name]
    assert 0 < row['mae'] <= row['rmse'] and row['mae_ci'][0] <= row['mae'] <= row['mae_ci'][1]
  assert saved['methods']['history_rule']['tag_accuracy'] == 1.0
  assert saved['methods']['mf']['tag_accuracy'] is None
  assert saved['methods']['mf']['mae'] < saved['methods']['global_mean']['mae']
  assert results['data']['users'] == 20
  assert tasks.read_outputs(tmp_path / 'lamp' / 'LaMP_3_outputs.json')[0] == 'LaMP_3'
  assert (tmp_path / 'predictions' / 'dense_knn_LaMP_2.json').exists()


@pytest.mark.parametrize('field, value', [
    ('data.num_users', 2000), ('memory.encoder', 'bert'), ('eval.unit', 'item'),
    ('memory.recency_weight', 1.5), ('methods', ('mf', 'oracle')), ('mf.steps', 0),
])
def test_config_mistake_names_field(field, value):
  config = personaagent_baselines.get_config('tiny')
  node, parts = config, field.split('.')
  for part in parts[:-1]:
    node = node[part]
  node[parts[-1]] = value
  with pytest.raises(config_lib.ConfigError, match=f'config.{field}'):
    experiment.validate(config)


def test_default_config_validates():
  experiment.validate(personaagent_baselines.get_config())
