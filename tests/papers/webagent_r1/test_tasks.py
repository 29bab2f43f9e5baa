"""Generated tasks: WebArena's schema, enough per site family, a split without overlap."""
import collections

import pytest

from jaxpapers.papers.webagent_r1 import tasks

SCHEMA_KEYS = {'sites', 'task_id', 'require_login', 'storage_state', 'start_url', 'geolocation',
               'intent_template', 'instantiation_dict', 'intent', 'require_reset', 'eval',
               'intent_template_id'}
EVAL_KEYS = {'eval_types', 'reference_answers', 'reference_url', 'program_html'}


@pytest.fixture(scope='module')
def all_tasks():
  return tasks.generate(0)


def test_at_least_100_tasks_from_4_templates_per_site(all_tasks):
  count = collections.Counter(t['sites'][0] for t in all_tasks)
  templates = collections.defaultdict(set)
  for t in all_tasks:
    templates[t['sites'][0]].add(t['template'])
  assert set(count) == {'shop', 'forum', 'admin'}
  assert min(count.values()) >= 100
  assert min(len(v) for v in templates.values()) >= 4


def test_tasks_follow_the_webarena_schema(all_tasks):
  assert [t['task_id'] for t in all_tasks] == list(range(len(all_tasks)))
  for t in all_tasks:
    assert SCHEMA_KEYS <= set(t) and EVAL_KEYS <= set(t['eval'])
    assert '{{' not in t['intent'] and t['start_url'].startswith('__')
    assert t['eval']['eval_types'] and t['entities']
    assert tasks.TEMPLATES[t['template']][1] == t['intent_template']
    for check in t['eval']['program_html']:
      assert set(check) == {'url', 'locator', 'required_contents'}
  intents = [t['intent'] for t in all_tasks]
  assert len(set(intents)) == len(intents)


def test_generation_is_deterministic(all_tasks):
  assert tasks.generate(0) == all_tasks
  assert tasks.generate(0, task_seed=1) != all_tasks


def test_split_holds_out_templates_and_entities(all_tasks):
  train, test = tasks.split(all_tasks)
  assert len(train) > 3 * len(test) > 0
  train_templates = {t['template'] for t in train}
  assert not train_templates & set(tasks.TEST_TEMPLATES)
  assert set(tasks.TEST_TEMPLATES) <= {t['template'] for t in test}
  train_entities = {e for t in train for e in t['entities']}
  test_entities = {e for t in test for e in t['entities']}
  assert train_entities and test_entities and not train_entities & test_entities
  assert {t['sites'][0] for t in test} == {'shop', 'forum', 'admin'}
  ids = [t['task_id'] for t in train + test]
  assert len(set(ids)) == len(ids)


def test_split_salt_changes_the_held_out_entities(all_tasks):
  _, a = tasks.split(all_tasks)
  _, b = tasks.split(all_tasks, salt=1)
  assert {t['task_id'] for t in a} != {t['task_id'] for t in b}


def test_resolve_url():
  assert tasks.resolve_url('__SHOP__/cart', 'http://h:1/') == 'http://h:1/shop/cart'
  assert tasks.resolve_url('__ADMIN__/order/1042', '') == '/admin/order/1042'
  assert tasks.resolve_url('/x', 'http://h') == '/x'
