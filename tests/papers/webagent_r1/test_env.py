"""WebEnv: turns become actions and reference observations; faults become error observations."""
import ml_collections
import pytest

from jaxpapers.core import env as core_env
from jaxpapers.papers.webagent_r1 import env as env_lib
from jaxpapers.papers.webagent_r1 import expert
from jaxpapers.papers.webagent_r1 import prompts
from jaxpapers.papers.webagent_r1 import sim
from jaxpapers.papers.webagent_r1 import tasks as tasks_lib


def answer(action: str, think: str = '# Note: acting') -> str:
  return f'<think> {think} </think>\n<answer> {action} </answer>'


@pytest.fixture(scope='module')
def all_tasks():
  return tasks_lib.generate(0)


@pytest.fixture(scope='module')
def env():
  config = ml_collections.ConfigDict({'backend': 'sim', 'max_steps': 4, 'world_seed': 0,
                                      'site_url': ''})
  return core_env.ENVS.get('webagent')(config)


def first(all_tasks, template):
  return next(t for t in all_tasks if t['template'] == template)


def test_registered_with_defaults():
  e = core_env.ENVS.get('webagent')(None)
  assert isinstance(e, env_lib.WebEnv)
  assert (e.backend_name, e.max_steps, e.world_seed) == ('sim', 15, 0)
  with pytest.raises(ValueError, match='max_steps'):
    env_lib.WebEnv(ml_collections.ConfigDict({'max_steps': 0}))


def test_prompts_and_core_tasks(env, all_tasks):
  d = first(all_tasks, 'shop_add')
  intent, page = env.first_observation(d)
  assert intent == d['intent'] and '<input id="2" placeholder="Search products">' in page
  task = env.make_task(d)
  assert task.prompt == prompts.first_turn(intent, page)
  assert task.meta['brief_prompt'] == prompts.first_turn(intent, prompts.PLACEHOLDER)
  assert task.meta['webarena'] is d


def test_split_tasks_are_core_tasks_with_prompts(env):
  train, test = env.split_tasks()
  assert len(train) > len(test) > 0
  assert all(t.prompt.startswith('Task Instruction: ') and 'Round 0' in t.prompt for t in test)
  assert {t.meta['webarena']['template'] for t in test} & set(tasks_lib.TEST_TEMPLATES)


@pytest.mark.parametrize('template', ['shop_cheapest', 'forum_reply', 'admin_address',
                                      'admin_total'])
def test_expert_replay_through_the_env_succeeds(all_tasks, template):
  e = env_lib.WebEnv()
  d = first(all_tasks, template)
  b = sim.SimBackend(e.app)
  b.goto(tasks_lib.resolve_url(d['start_url'], b.base_url))
  steps = expert.solve(d, b)
  e.reset([e.make_task(d)])
  for k, (think, action) in enumerate(steps, start=1):
    obs, = e.step([0], [answer(action, think)])
    assert obs.done == (k == len(steps))
    if not obs.done:
      assert obs.text.startswith(f'Round {k}\n\n') and obs.tool_call and not obs.invalid
      assert obs.brief == prompts.next_turn(k, prompts.PLACEHOLDER)
  out = e.score(0, None)
  assert out.reward == 1.0 and out.components['success'] == 1.0
  assert out.info['steps'] == len(steps) and out.info['errors'] == 0


def test_bad_turns_get_error_observations_not_exceptions(env, all_tasks):
  env.reset([first(all_tasks, 'shop_add')])
  page = env.rows[0].page.text
  obs, = env.step([0], ['I will click something'])
  assert obs.text == prompts.next_turn(1, page, prompts.NO_ANSWER_ERROR)
  assert obs.invalid and not obs.done and not obs.tool_call
  assert obs.brief == prompts.next_turn(1, prompts.PLACEHOLDER, prompts.NO_ANSWER_ERROR)
  obs, = env.step([0], [answer('do(action="Click", element="99")')])  # no such element
  assert obs.text == prompts.next_turn(
      2, page, prompts.invalid_action_error('do(action="Click", element="99")'))
  assert obs.invalid
  obs, = env.step([0], [answer('do(action="Type", argument="x", element="0")')])  # a link
  assert obs.text.startswith('Error: invalid action do(action="Type"') and not obs.invalid
  assert obs.text.endswith(page)
  info = env.score(0).info
  assert (info['errors'], info['invalid'], info['steps']) == (3, 2, 3)


def test_max_steps_ends_the_episode(env, all_tasks):
  env.reset([first(all_tasks, 'admin_total')])
  dones = [env.step([0], [answer('do(action="Wait")')])[0].done for _ in range(4)]
  assert dones == [False, False, False, True]
  assert env.step([0], [answer('do(action="Wait")')])[0].done
  out = env.score(0)
  assert out.reward == 0.0 and out.info['steps'] == 4 and out.info['exited'] == 0


def test_exit_ends_and_records_the_message(env, all_tasks):
  d = first(all_tasks, 'admin_total')
  total = d['eval']['reference_answers']['must_include'][0]
  env.reset([d, d])
  obs = env.step([0, 1], [answer(f'exit(message="${total}")'), answer('exit(message="$1.00")')])
  assert [o.done for o in obs] == [True, True]
  assert [env.score(i).reward for i in (0, 1)] == [1.0, 0.0]  # string_match reads the answer
  assert env.rows[0].answer == f'${total}'
  assert env.step([0], [answer('do(action="Wait")')])[0].done


def test_http_500_is_an_error_observation_and_counted(env):
  d = {**tasks_lib.make_task('shop_open', {'product': 'x'}, tasks_lib.url_match('__SHOP__/'),
                             ['product:0']), 'start_url': '/'}
  env.reset([d])
  broken = env.rows[0].page.find('link', 'Broken page')
  obs, = env.step([0], [answer(f'do(action="Click", element="{broken.id}")')])
  assert obs.text.startswith('Error: the page failed to load (HTTP 500 at /__error).Round 1')
  assert 'Server error' in obs.text and not obs.done
  obs, = env.step([0], [answer('go_backward()')])
  assert 'Broken page' in obs.text
  assert env.score(0).info['page_errors'] == 1


def test_rows_are_isolated_sessions_and_reset_starts_fresh(env, all_tasks):
  d = first(all_tasks, 'shop_add')
  env.reset([d, d])
  add = lambda row: env.step([row], [answer(  # noqa: E731
      f'do(action="Click", element="{env.rows[row].page.find("button", "Add to cart").id}")')])
  name = d['instantiation_dict']['product']
  env.step([0], [answer(f'do(action="Search", argument="{name}", element="2")')])
  env.step([0], [answer('do(action="Click", element="2")')])
  obs, = add(0)
  assert 'Cart (1)' in obs.text
  env.rows[1].backend.goto('/shop/cart')
  assert 'Cart (0)' in env.rows[1].backend.observe().text
  old = env.rows[0].backend
  env.reset([d])
  assert old.closed and 'Cart (0)' in env.rows[0].page.text


def test_dead_browser_ends_the_episode(env, all_tasks):
  env.reset([first(all_tasks, 'shop_add'), first(all_tasks, 'shop_add')])
  env.rows[0].backend.close()
  obs = env.step([0, 1], [answer('do(action="Wait")')] * 2)
  assert obs[0].done and not obs[1].done
  assert env.score(0).reward == 0.0


def test_core_call_step_reads_the_observation(env, all_tasks):
  env.reset([first(all_tasks, 'shop_add')])
  res, = core_env.call_step(env, [0], [answer('do(action="Click", element="5")')])
  assert res.text.startswith('Round 1\n\n<h1>Apparel</h1>') and not res.error
  if hasattr(res, 'brief'):
    assert res.brief == prompts.next_turn(1, prompts.PLACEHOLDER)


@pytest.mark.parametrize('template', ['shop_buy', 'forum_post', 'admin_count'])
def test_expert_demonstration_matches_the_env_turn_by_turn(all_tasks, template):
  e = env_lib.WebEnv()
  d = first(all_tasks, template)
  b = sim.SimBackend(e.app)
  b.goto(tasks_lib.resolve_url(d['start_url'], b.base_url))
  chat = expert.demonstration(d, b)
  assert [m['role'] for m in chat] == ['user', 'assistant'] * (len(chat) // 2)
  assert chat[0]['content'] == e.prompt(d)
  e.reset([d])
  for k in range(1, len(chat), 2):
    obs, = e.step([0], [chat[k]['content']])
    if k + 1 < len(chat):
      assert obs.text == chat[k + 1]['content']
    else:
      assert obs.done
  assert e.score(0).reward == 1.0
