"""DeSA: rewards and search stats on hand-made episodes, the world env (in process and over
HTTP), masked observations in demonstrations, and the stage switch of a tiny schedule run."""
import numpy as np
import pytest

from configs import desa_world
from jaxpapers import launch
from jaxpapers.core import agent as agent_lib
from jaxpapers.core import env as env_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core.retrieval import env as search_env
from jaxpapers.core.retrieval import server
from jaxpapers.papers.desa import env as desa_env
from jaxpapers.papers.desa import world as world_lib

TEST = desa_world.get_config('test').base


def _episode(*turns: tuple[str, str]) -> agent_lib.Episode:
  ep = agent_lib.Episode(prompt=[1])
  for role, text in turns:
    ep.add(role, [0] * len(text), [0.0] * len(text), text, budget=10_000)
  return ep


def _info(*docs: str) -> str:
  body = ''.join(f'Doc {i}(Title: t) {d}\n' for i, d in enumerate(docs, 1))
  return f'\n\n<information>{body.strip()}</information>\n\n'


def _score(task_answer, *turns, reward='em', log=()):
  task = env_lib.Task('question: who?\n', task_answer)
  return desa_env.score_episode(task, _episode(*turns), reward, list(log))


def test_recall_and_em_rewards_on_hand_made_episodes():
  hit = _score('Paris', ('policy', '<search>france capital</search>'),
               ('env', _info('The capital of France is Paris.', 'Lyon is big.')),
               ('policy', '<answer>paris</answer>'))
  assert hit.components['recall'] == 1.0 and hit.components['em'] == 1.0 and hit.reward == 1.0
  # the answer split across passages is not recalled; a wrong answer has em 0
  split = _score('new york', ('policy', '<search>x</search>'), ('env', _info('in new', 'york')),
                 ('policy', '<answer>york</answer>'), reward='recall')
  assert split.reward == 0.0 and split.components['em'] == 0.0
  assert split.components['f1'] == pytest.approx(2 / 3)
  # the answer only in the question, or written by the policy itself: no recall
  own = _score('rome', ('policy', '<information>rome</information><answer>rome</answer>'),
               reward='recall')
  assert own.reward == 0.0 and own.components['em'] == 1.0
  assert own.components['no_search'] == 1.0
  # several answers: the last one counts; unicode gold normalised
  last = _score(['São Paulo', 'Sao Paulo'], ('policy', '<answer>rio</answer>'),
                ('env', 'x'), ('policy', '<answer>são paulo!</answer>'))
  assert last.components['em'] == 1.0
  mixed = _score('paris', ('policy', '<search>q</search>'), ('env', _info('paris')),
                 ('policy', '<answer>lyon</answer>'), reward='mixed')
  assert mixed.reward == 0.5 and mixed.components['recall'] == 1.0
  none = _score('paris', ('policy', 'I do not know'))
  assert none.reward == 0.0 and none.components['answered'] == 0.0


def test_search_stats_count_redundant_and_invalid_queries():
  a, b = _info('one'), _info('two')
  stats = desa_env.search_stats([('q1', a), ('q1', b), ('q2', a), ('q3', b), ('.', 'c'),
                                 ('and', 'd'), ('x', 'e')])
  assert stats['searches'] == 7 and stats['no_search'] == 0
  assert stats['redundant'] == 3          # repeated query, then two repeated passage sets
  assert stats['invalid_queries'] == 3    # '.', 'and', 'x'
  assert desa_env.search_stats([])['no_search'] == 1.0


@pytest.fixture(scope='module')
def world_env():
  env = env_lib.ENVS.get('desa_search')(TEST.env)
  world, _ = world_lib.cached(world_lib.world_config(TEST.env))
  return env, world


def test_env_answers_good_queries_and_flags_invalid_actions(world_env):
  env, world = world_env
  tasks = world_lib.make_tasks(world, 'test', 3, seed=0)
  env.reset(tasks)
  turns = [f'<search>{tasks[0].meta["queries"][-1]}</search>', 'no action here',
           '<search></search>']
  out = env_lib.call_step(env, [0, 1, 2], turns)
  assert '<information>Doc 1(Title: ' in out[0].text and tasks[0].answer in out[0].text
  assert out[0].tool_call and not out[0].done
  assert out[1].text == search_env.INVALID_ACTION and out[1].invalid
  assert out[2].invalid
  done = env_lib.call_step(env, [0], ['<answer>x</answer>'])[0]
  assert done.done and done.text == ''
  ep = _episode(('policy', turns[0]), ('env', out[0].text),
                ('policy', f'<answer>{tasks[0].answer}</answer>'))
  outcome = env_lib.call_score(env, 0, ep)
  assert outcome.components['recall'] == 1.0 and outcome.reward == 1.0


def test_train_and_test_questions_ask_about_different_entities(world_env):
  _, world = world_env
  train = world_lib.make_tasks(world, 'train', 200, seed=0)
  test = world_lib.make_tasks(world, 'test', 200, seed=1)
  asked = lambda tasks: {t.meta['queries'][0].split()[0] for t in tasks}  # noqa: E731
  assert not asked(train) & asked(test)
  assert {t.meta['hops'] for t in train} == {1, 2}


def test_demonstrations_mask_observations_and_train_policy_turns():
  ps = world_lib.prompt_set(TEST.task, 64, 0, 'train')
  tok = ps.tokenizer
  seen_info = False
  for ex in ps.sft:
    n = int(ex['attention_mask'].sum())
    text = tok.decode([int(t) for t in ex['tokens'][:n]])
    trained = ''.join(c for c, m in zip(text, ex['loss_mask'][1:n]) if m)  # BOS offset
    assert '<information>' not in trained and 'q:' not in trained
    if n < len(ex['tokens']):           # not cut by the test config's short sft_seq_len
      assert '<answer>' in trained
    seen_info |= '<information>' in text
  assert seen_info


def test_env_over_http_server_gives_the_same_observations(world_env):
  env, world = world_env
  _, retriever = world_lib.cached(world_lib.world_config(TEST.env))
  url, stop = server.start_in_thread(retriever)
  try:
    config = TEST.env.copy_and_resolve_references()
    config.server_url = url
    remote = env_lib.ENVS.get('desa_search')(config)
    tasks = world_lib.make_tasks(world, 'test', 4, seed=2)
    turns = [f'<search>{t.meta["queries"][0]}</search>' for t in tasks]
    env.reset(tasks)
    remote.reset(tasks)
    assert [o.text for o in remote.step(range(4), turns)] == \
           [o.text for o in env.step(range(4), turns)]
  finally:
    stop()


@pytest.mark.slow
def test_desa_schedule_switches_reward_at_stage1_steps(tmp_path):
  config = desa_world.get_config('test')
  config.base.desa.schedules = ('desa',)
  config.base.steps, config.base.desa.stage1_steps = 3, 2
  results = launch.run(config, str(tmp_path))
  seed = tmp_path / 'seed_0'
  stage1 = [r for r in metrics_lib.read_metrics(seed / 'desa' / 'stage1') if 'reward' in r]
  stage2 = [r for r in metrics_lib.read_metrics(seed / 'desa' / 'stage2') if 'reward' in r]
  assert [r['step'] for r in stage1] == [1, 2] and [r['step'] for r in stage2] == [3]
  for r in stage1:
    assert r['reward'] == pytest.approx(r['reward/recall'])
  assert stage2[0]['reward'] == pytest.approx(stage2[0]['reward/em'])
  for key in ('eval_em', 'eval_recall', 'eval_no_search', 'eval_redundant', 'eval_invalid'):
    assert key in stage2[0], key
  summary = results['summary']
  assert 0.0 <= summary['desa.test_em']['mean'] <= 1.0
  assert (seed / 'desa.png').exists() and (tmp_path / 'results.json').exists()
  assert np.isfinite(summary['start.test_recall']['mean'])
