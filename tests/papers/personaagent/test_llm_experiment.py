"""'personaagent' end to end on `:tiny` (a random tiny Qwen3, real tokenizer): every method
and the alignment curve are in results.json, and a rerun resumes from the caches."""
import json

import pytest

from configs import personaagent_movielens
from jaxpapers import launch
from jaxpapers.core import config as config_lib
from jaxpapers.papers.personaagent import alignment
from jaxpapers.papers.personaagent import llm_experiment

KEYS = ('mae', 'rmse', 'tag_accuracy', 'tag_f1')


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  work = tmp_path_factory.mktemp('pa')
  config = personaagent_movielens.get_config('tiny')
  return config, work, launch.run(config, str(work))


def test_tiny_run_scores_every_method_with_intervals(tiny_run):
  config, work, results = tiny_run
  saved = json.loads((work / 'results.json').read_text())
  assert set(config.methods) | set(config.baselines) == set(saved['methods'])
  for name in config.methods:
    row = saved['methods'][name]
    assert all(row[k] is not None and row[f'{k}_ci'] is not None for k in KEYS)
    assert row['parse_failures'] <= saved['data']['llm_rating_queries']
  assert saved['methods']['mf']['tag_accuracy'] is None
  curve = saved['alignment_by_iteration']
  assert [r['iteration'] for r in curve] == list(range(config.curve.iterations + 1))
  assert all(r['mae'] is not None for r in curve)
  assert '| personaagent |' in (work / 'results.md').read_text()


def test_tiny_run_persists_personas_per_iteration(tiny_run):
  config, work, results = tiny_run
  personas = alignment.load_personas(work / 'personas.jsonl')
  assert sorted(personas) == list(range(config.alignment.iterations + 1))
  assert len(personas[0]) == results['data']['users']
  assert (work / 'semantic.jsonl').exists()
  assert (work / 'predictions' / 'personaagent_LaMP_3.json').exists()


def test_rerun_resumes_without_generating(tiny_run):
  config, work, results = tiny_run
  again = launch.run(config, str(work))
  assert again['llm']['generated'] == 0 and again['llm']['load_s'] == 0
  assert again['methods']['personaagent'] == results['methods']['personaagent']


@pytest.mark.parametrize('field, value', [
    ('curve.users', 99), ('methods', ('personaagent', 'oracle')), ('alignment.n', 0),
    ('curve.method', 'mystery'), ('baselines', ('mf', 'oracle')),
])
def test_config_mistake_names_field(field, value):
  config = personaagent_movielens.get_config('tiny')
  node, parts = config, field.split('.')
  for part in parts[:-1]:
    node = node[part]
  node[parts[-1]] = value
  with pytest.raises(config_lib.ConfigError, match=f'config.{field}'):
    llm_experiment.validate(config)
