"""WebAgent-R1 training data and the BC -> M-GRPO experiment on the sim backend."""
import importlib.util
import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from configs import webagent_r1 as config_lib
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import chromium
from jaxpapers.papers.webagent_r1 import env as env_lib
from jaxpapers.papers.webagent_r1 import expert
from jaxpapers.papers.webagent_r1 import prompts
from jaxpapers.papers.webagent_r1 import tasks as tasks_lib
from jaxpapers.papers.webagent_r1 import training


HAS_MINIWOB = chromium.browser_available() and importlib.util.find_spec('miniwob') is not None


def launch(config: str, workdir, *overrides: str) -> None:
  """Runs `python -m jaxpapers.launch` on one CPU device; fails with its stderr tail."""
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  proc = subprocess.run(
      [sys.executable, '-m', 'jaxpapers.launch', f'--config={config}', f'--workdir={workdir}',
       *overrides], env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope='module')
def task_config():
  return config_lib.get_config('tiny').base.task


@pytest.fixture(scope='module')
def train_set(task_config):
  return training.prompt_set(task_config, 6, 0, 'train')


def _decode(tok, ids, mask=None):
  ids = [int(i) for i in ids if i > 2]   # drop PAD / BOS / EOS
  return tok.decode(ids)


def test_demonstration_contexts_are_the_references_compressed_history(task_config):
  """Step k's context = the expert's chat up to user turn k through the reference's
  compression (earlier pages -> placeholder, answers kept); its target = answer k."""
  fmt = training.make_format(task_config)
  env = env_lib.WebEnv(ml_collections.ConfigDict(training.env_config(task_config)))
  task = training.split_tasks(task_config, 'train')[3]
  examples = training.demonstrations(env, task, fmt, seq_len=4096)
  with backend_lib.make('sim', env.app, '') as b:
    b.goto(tasks_lib.resolve_url(task['start_url'], b.base_url))
    chat = expert.demonstration(task, b)
  assert len(examples) == len(chat) // 2 >= 2
  tok = fmt.tokenizer
  for k, ex in enumerate(examples):
    tokens, loss = np.asarray(ex['tokens']), np.asarray(ex['loss_mask'])
    n = int(np.asarray(ex['attention_mask']).sum())
    assert len(tokens) % training.SFT_BUCKET == 0 and n <= len(tokens)
    trained = tokens[:n][loss[:n] > 0]
    assert trained[-1] == tok.eos_token_id
    assert _decode(tok, trained) == chat[2 * k + 1]['content']
    history = prompts.compress_history(chat[:2 * k + 1])
    expected = ''.join(m['content'] + '\n' for m in history)
    context = _decode(tok, tokens[:n][loss[:n] == 0])
    assert context == expected, (k, context[-200:], expected[-200:])


def test_prompt_set_prompts_and_briefs(train_set, task_config):
  tok = train_set.tokenizer
  assert len(train_set.prompt_ids) == len(train_set.brief_prompt_ids) == 6
  assert len(train_set.sft) >= 6 * 2
  for ids, brief, task in zip(train_set.prompt_ids, train_set.brief_prompt_ids,
                              train_set.tasks):
    intent = task.meta['webarena']['intent']
    assert ids[0] == tok.bos_token_id and tok.decode(ids[1:]) == task.prompt + '\n'
    assert tok.decode(brief[1:]) == prompts.first_turn(intent, prompts.PLACEHOLDER) + '\n'
  test = training.prompt_set(task_config, 0, 0, 'test')
  assert not test.sft and len(test.prompt_ids) == 201
  train_templates = {t.meta['webarena']['template'] for t in train_set.tasks}
  assert not train_templates & set(tasks_lib.TEST_TEMPLATES)


def test_check_env_names_what_is_wrong():
  c = config_lib.get_config('tiny').base
  training.check_env(c)
  for field, value, match in (('kv_reuse', True, 'compress_history'),
                              ('max_turns', 2, 'max_turns=2'),
                              ('env_template', 'chat:user', "'char' format appends")):
    bad = c.copy_and_resolve_references()
    bad.rollout[field] = value
    with pytest.raises(ValueError, match=match):
      training.check_env(bad)
  with pytest.raises(ValueError, match="task.format: 'bpe'"):
    training.make_format(ml_collections.ConfigDict(dict(format='bpe')))


@pytest.mark.slow
def test_bc_then_m_grpo_end_to_end(tmp_path):
  """BC, 2 M-GRPO steps from it and from scratch, held-out evaluation with 2 budgets, and
  (where a browser is installed) each policy on a MiniWoB++ task."""
  miniwob = (["--config.base.miniwob.tasks=('click-button',)",
              "--config.base.miniwob.policies=('bc', 'r1')"] if HAS_MINIWOB else [])
  launch('configs/webagent_r1.py:tiny', tmp_path, *miniwob)
  results = json.loads((tmp_path / 'results.json').read_text())
  seed = results['per_seed']['0']
  for name in ('bc', 'r1', 'r1_zero'):
    assert 0.0 <= seed[f'{name}_success'] <= 1.0
  assert set(seed['success_by_max_steps']['r1']) == {'2', '3'}
  rows = [json.loads(line) for line in (tmp_path / 'seed_0' / 'r1' / 'metrics.jsonl')
          .read_text().splitlines()]
  steps = [r for r in rows if r.get('step', 0) > 0 and 'reward' in r]
  assert len(steps) == 2 and all(r['completion_tokens'] > 0 for r in steps)
  assert all('reward/success' in r and r['turns'] >= 1 for r in steps)
  if HAS_MINIWOB:
    assert set(seed['miniwob_success']) == {'bc', 'r1'}
    assert all(set(v) == {'click-button'} for v in seed['miniwob_success'].values())
    assert 0.0 <= results['summary']['r1_miniwob_success']['mean'] <= 1.0


def test_chat_demonstrations_close_each_earlier_turn_with_end_of_turn():
  """In chat format an earlier answer ends with '<|im_end|>' (as sampled) before the next
  user message; the trained answer ends with EOS."""
  c = config_lib.get_config('tiny').base.task.copy_and_resolve_references()
  c.format, c.tokenizer = 'chat', 'qwen'
  fmt = training.make_format(c)
  assert fmt.turn_end == '<|im_end|>' and fmt.env_template == 'chat:user'
  env = env_lib.WebEnv(ml_collections.ConfigDict(training.env_config(c)))
  task = training.split_tasks(c, 'train')[0]
  examples = training.demonstrations(env, task, fmt, seq_len=8192)
  tok = fmt.tokenizer
  ex = examples[1]
  n = int(np.asarray(ex['attention_mask']).sum())
  text = tok.decode(np.asarray(ex['tokens'])[:n].tolist())
  assert text.startswith('<|im_start|>system\n' + prompts.SYSTEM_PROMPT[:40])
  assert '</answer><|im_end|>\n<|im_start|>user\nRound 1\n\n' in text
  assert prompts.PLACEHOLDER in text and text.endswith('</answer><|im_end|>')


@pytest.mark.slow
def test_qwen_recipe_runs_on_a_tiny_random_model(tmp_path):
  launch('configs/webagent_qwen.py:test', tmp_path)
  seed = json.loads((tmp_path / 'results.json').read_text())['per_seed']['0']
  assert set(seed['success_by_max_steps']['r1']) == {'1', '2'}
  assert set(seed['success_by_max_steps']['bc']) == {'2'}


def test_turn_budget_must_hold_the_experts_longest_step():
  c = config_lib.get_config('tiny').base
  training.check_turn_budget(c, num_tasks=20)
  c.rollout.max_turn_tokens = 64
  with pytest.raises(ValueError, match='max_turn_tokens=64'):
    training.check_turn_budget(c, num_tasks=20)


def test_char_format_reads_characters_outside_ascii_as_question_marks(task_config):
  tok = training.make_format(task_config).tokenizer
  assert tok.decode(tok.encode('Ünïcode ✓ ok')) == '?n?code ? ok'
  strict = training.core_tasks.CharTokenizer(chars=training.CHARS)
  with pytest.raises(ValueError, match='not in the task vocabulary'):
    strict.encode('✓')
