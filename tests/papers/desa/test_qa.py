"""DeSA on real QA: Search-R1's prompt pinned, question normalisation and split, the
observation cap, the evaluation harness and the Qwen recipe on tiny random models."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from configs import desa_qa_eval
from configs import desa_qwen
from jaxpapers import launch
from jaxpapers.core import env as env_lib
from jaxpapers.papers.desa import env as desa_env  # noqa: F401 - registers 'desa_search'
from jaxpapers.papers.desa import qa

REPO = pathlib.Path(__file__).resolve().parents[3]

# scripts/data_process/nq_search.py make_prefix (Search-R1; DeSA's is identical), one line.
REFERENCE_PREFIX = (
    "Answer the given question. You must conduct reasoning inside <think> and </think> first "
    "every time you get new information. After reasoning, if you find you lack some knowledge, "
    "you can call a search engine by <search> query </search> and it will return the top "
    "searched results between <information> and </information>. You can search as many times "
    "as your want. If you find no further external knowledge needed, you can directly provide "
    "the answer inside <answer> and </answer>, without detailed illustrations. For example, "
    "<answer> Beijing </answer>. Question: who wrote hamlet?\n")


def test_search_r1_prompt_is_the_reference_string():
  question = qa.normalise_question('  who wrote hamlet ')
  assert qa.SEARCH_R1_TEMPLATE.format(question=question) == REFERENCE_PREFIX
  assert qa.normalise_question('is it?') == 'is it?'


def test_split_is_by_question_and_disjoint():
  train, test = qa.questions('nq', 'train'), qa.questions('nq', 'test')
  assert len(train) + len(test) == 3610 and abs(len(train) - len(test)) < 200
  assert not {q for q, _ in train} & {q for q, _ in test}
  assert qa.questions('hotpotqa', 'test')[0][1]      # answers present
  with pytest.raises(ValueError, match='benchmark'):
    qa.questions('trivia', 'test')


def test_prompt_set_uses_the_chat_template_and_keeps_all_answers():
  c = desa_qwen.get_config('test').base.task
  ps = qa.prompt_set(c, 4, 0, 'test')
  text = ps.tokenizer.decode(ps.prompt_ids[0])
  assert '<|im_start|>user\nAnswer the given question.' in text
  assert text.rstrip().endswith('<|im_start|>assistant')
  assert [t.answer for t in ps.tasks] == ps.answers and isinstance(ps.answers[0], list)


def test_observation_cap_cuts_information_blocks():
  config = desa_qa_eval.get_config('test').env
  config.max_obs_chars = 50
  env = env_lib.ENVS.get('desa_search')(config)
  env.reset([env_lib.Task('q', ['x'])])
  obs = env.step([0], ['<search>Scott Derrickson</search>'])[0]
  assert len(obs.text) == 50 and obs.text.startswith('\n\n<information>Doc 1(Title: ')


def test_qa_eval_harness_writes_results_and_episodes(tmp_path):
  results = launch.run(desa_qa_eval.get_config('test'), str(tmp_path))
  for bench in ('nq', 'hotpotqa'):
    for mode in ('search_r1', 'no_search'):
      m = results[bench][mode]
      assert m['n'] == 2 and all(0.0 <= m[k] <= 1.0 for k in ('em', 'recall', 'no_search'))
      rows = [json.loads(l) for l in open(tmp_path / f'episodes_{bench}_{mode}.jsonl')]
      assert len(rows) == 2 and {'question', 'answers', 'episode', 'em'} <= set(rows[0])
  assert json.loads((tmp_path / 'results.json').read_text()) == results


@pytest.mark.slow
def test_desa_qwen_recipe_runs_two_steps_with_kl_reference(tmp_path):
  # Its own process on one CPU device: with the 152k-token vocabulary on 8 fake devices
  # the run peaks at 18 GB (3.6 GB on one), too much beside the other test worker.
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  subprocess.run([sys.executable, '-m', 'jaxpapers.launch', '--config=configs/desa_qwen.py:test',
                  f'--workdir={tmp_path}'], cwd=REPO, env=env, check=True, capture_output=True,
                 timeout=900)
  results = json.loads((tmp_path / 'results.json').read_text())
  assert 'desa.test_em' in results['summary']
  for stage in ('stage1', 'stage2'):     # each stage keeps its KL reference apart
    assert (tmp_path / 'seed_0' / 'desa' / stage / 'reference').is_dir()
