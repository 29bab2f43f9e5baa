"""MiniWoB++ in headless Chromium: tasks load, the oracle solves its tasks, mistakes fail, bad
actions are error observations, and the experiment writes per-task success."""
import importlib.util
import json
import os
import signal
import types

import pytest

from configs import webagent_miniwob
from jaxpapers.core import env as env_lib
from jaxpapers.papers.webagent_r1 import chromium
from jaxpapers.papers.webagent_r1 import miniwob
from jaxpapers.papers.webagent_r1 import miniwob_eval
from jaxpapers.papers.webagent_r1 import prompts
from tests.papers.webagent_r1 import test_chromium

pytestmark = pytest.mark.skipif(
    not chromium.browser_available() or importlib.util.find_spec('miniwob') is None,
    reason='needs Debian chromium + chromium-driver and `pip install --no-deps miniwob`')

MAX_STEPS = 15


@pytest.fixture(scope='module')
def env():
  e = miniwob.MiniWoBEnv(types.SimpleNamespace(max_steps=MAX_STEPS))
  yield e
  e.close()


def _start(env, task, seed=0):
  env.reset([miniwob.make_task(task, seed)])
  return env.rows[0]


def _reply(action: str) -> str:
  return f'<think>x</think><answer>{action}</answer>'


def test_miniwob_config_tasks_load_with_instruction_and_elements(env):
  tasks = webagent_miniwob.get_config().tasks
  assert len(tasks) >= 20 and set(tasks) <= set(miniwob.available_tasks())
  for task in tasks:
    row = _start(env, task)
    assert not row.died and not row.state.done, task
    assert row.utterance and row.page.elements, task
    assert env.first_turn(0) == prompts.first_turn(row.utterance, row.page.text)
    assert '<' in row.page.text and 'Episodes done' not in row.page.text, task


def test_miniwob_seed_fixes_the_problem_and_the_prompt(env):
  task = env.make_task('login-user', 3)
  first = _start(env, 'login-user', 3)
  text = (first.utterance, first.page.text)
  assert task.prompt == env.first_turn(0)
  assert task.meta['brief_prompt'].endswith(prompts.PLACEHOLDER)
  other = _start(env, 'login-user', 4)
  assert (other.utterance, other.page.text) != text
  again = _start(env, 'login-user', 3)
  assert (again.utterance, again.page.text) == text


def test_miniwob_unicode_labels_survive(env):
  row = _start(env, 'unicode-test')
  assert any(not label.isascii() for label in (e.label for e in row.page.elements.values()))


@pytest.mark.parametrize('seed', [1])
def test_miniwob_oracle_solves_its_tasks(env, seed):
  result = miniwob_eval.evaluate_policy(miniwob_eval.oracle_policy, miniwob_eval.ORACLE_TASKS,
                                        [seed], env=env)
  assert result['miniwob_success'] == {t: 1.0 for t in miniwob_eval.ORACLE_TASKS}
  assert result['miniwob_perfect'] == result['miniwob_success']
  assert all(e['raw_reward'] == 1.0 for e in result['episodes'])
  assert 0 < result['step_s_median'] < 5


def test_miniwob_wrong_button_fails(env):
  row = _start(env, 'click-button')
  target = row.utterance.split('"')[1]
  wrong = next(e for e in row.page.elements.values()
               if e.kind == 'button' and e.label != target)
  obs = env.step([0], [_reply(f'do(action="Click", element="{wrong.id}")')])[0]
  assert obs.done
  outcome = env.score(0)
  assert outcome.reward == 0.0 and outcome.components['raw_reward'] < 0


def test_miniwob_bad_actions_are_error_observations(env):
  row = _start(env, 'enter-text')
  button = next(e for e in row.page.elements.values() if e.kind == 'button')
  replies = ['no answer here', _reply('do(action="Click", element="99")'),
             _reply(f'do(action="Type", argument="x", element="{button.id}")')]
  obs = [env.step([0], [r])[0] for r in replies]
  assert obs[0].text.startswith(prompts.NO_ANSWER_ERROR + 'Round 1\n\n') and obs[0].invalid
  assert obs[1].text.startswith('Error: invalid action') and obs[1].invalid
  assert obs[2].text.startswith('Error: invalid action') and not obs[2].invalid
  assert 'Round 3\n\n' in obs[2].text and not any(o.done for o in obs)
  assert env.score(0).info['errors'] == 3


def test_miniwob_exit_and_max_steps_end_without_success(env):
  _start(env, 'click-test')
  assert env.step([0], [_reply('exit(message="")')])[0].done
  assert env.score(0).reward == 0.0 and env.score(0).info['exited'] == 1.0
  _start(env, 'click-test')
  waits = [env.step([0], [_reply('do(action="Wait")')])[0] for _ in range(MAX_STEPS)]
  assert [o.done for o in waits] == [False] * (MAX_STEPS - 1) + [True]
  assert env.score(0).info['steps'] == MAX_STEPS


def test_miniwob_env_runs_under_core_call_step(env):
  row = _start(env, 'click-test')
  button = next(iter(row.page.elements.values()))
  results = env_lib.call_step(env, [0], [_reply(f'do(action="Click", element="{button.id}")')],
                              timeout_s=30)
  assert results[0].done and not results[0].error
  assert env_lib.call_score(env, 0, None).reward == 1.0


def test_miniwob_experiment_writes_oracle_and_random_success(tmp_path):
  config = webagent_miniwob.get_config('test')
  results = miniwob_eval.run(config, str(tmp_path))
  saved = json.loads((tmp_path / 'results.json').read_text())
  assert set(saved) == {'oracle', 'random'}
  assert saved['oracle']['miniwob_success'] == {t: 1.0 for t in config.tasks}
  assert set(saved['random']['miniwob_success']) == set(config.tasks)
  assert results['random']['mean_success'] <= 1.0


def test_miniwob_envs_built_in_turn_reuse_pooled_browsers():
  first = miniwob.MiniWoBEnv()
  first.reset([miniwob.make_task('click-test', 0)])
  first.close()
  second = miniwob.MiniWoBEnv()
  second.reset([miniwob.make_task('click-test', 1)])
  assert second.start_s == [] and not second.rows[0].died  # no new Chromium started
  second.close()


def test_miniwob_dead_browser_is_replaced_at_reset(env):
  _start(env, 'click-test')
  os.kill(test_chromium.browser_pid(env.sessions[0].backend), signal.SIGKILL)
  row = _start(env, 'click-test', 1)
  assert not row.died and row.page.elements


def test_miniwob_partly_covered_button_is_clicked_where_visible(env):
  row = _start(env, 'click-test-2', 112)  # at this seed button TWO covers ONE's centre
  one = next(e for e in row.page.elements.values() if e.label == 'ONE')
  assert env.step([0], [_reply(f'do(action="Click", element="{one.id}")')])[0].done
  assert env.score(0).reward == 1.0
