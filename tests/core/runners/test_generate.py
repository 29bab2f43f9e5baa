"""`generate` CLI: completions from a tiny Qwen3 checkpoint saved with the real tokenizer."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import generate as generate_config
from jaxpapers.core import config as config_lib
from jaxpapers.core import hf
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.models import qwen
from jaxpapers.core.runners import generate as generate_runner

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('tiny_qwen3')
  model = qwen.init(qwen.preset('qwen3-tiny'), seed=0)      # real vocabulary size
  qwen.save_pretrained(model, path)
  hf.copy_tokenizer_files(tok_lib.builtin_dir('qwen'), path)
  return path


def test_generate_cli_prints_greedy_completion_matching_sampler(model_dir, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=2')
  cmd = [sys.executable, '-m', 'jaxpapers.launch', '--config=configs/generate.py:greedy',
         f'--config.model_dir={model_dir}', '--config.prompt=What is 2 + 3?',
         '--config.max_new_tokens=6', f'--workdir={tmp_path}']
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [json.loads(line) for line in (tmp_path / 'completions.jsonl').read_text().splitlines()]
  assert len(rows) == 1 and rows[0]['prompt'] == 'What is 2 + 3?'
  assert f'--- [0] What is 2 + 3?\n{rows[0]["completion"]}' in proc.stdout
  tok = tok_lib.load(str(model_dir))
  expected = sampler.generate_text(qwen.from_pretrained(model_dir), tok, ['What is 2 + 3?'],
                                   max_new_tokens=6, rng=jax.random.key(0), temperature=0.0)
  assert rows[0]['completion'] == expected[0]


@pytest.mark.parametrize('field,value,match', [
    ('temperature', -1.0, 'config.temperature'),
    ('top_p', 0.0, 'config.top_p'),
    ('model_dir', '/nonexistent', 'config.model_dir'),
    ('prompt', '', 'config.prompt'),
])
def test_generate_validate_names_the_bad_field(model_dir, field, value, match):
  config = generate_config.get_config()
  config.model_dir, config.prompt = str(model_dir), 'hi'
  config[field] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    generate_runner.validate(config)


def test_generate_config_loads_with_greedy_variant():
  assert generate_config.get_config('greedy').temperature == 0.0
  assert generate_config.get_config().experiment == 'generate'
  assert np.isclose(generate_config.get_config().top_p, 1.0)


def test_chat_loop_keeps_the_conversation_and_streams_each_reply(capsys):
  lines = iter(['Hi', '', 'And then?', 'exit', 'never read'])
  calls = []

  def fake_sample(prompts, on_text):
    calls.append(prompts[0])
    reply = f'reply {len(calls)}'
    for n in range(1, len(reply) + 1):
      on_text(reply[:n] + '\ufffd')                  # partial character held back
    return [reply]

  prompts, texts = generate_runner.chat_loop(fake_sample, read=lambda _: next(lines))
  assert prompts == ['Hi', 'And then?'] and texts == ['reply 1', 'reply 2']
  assert calls[1] == [{'role': 'user', 'content': 'Hi'},
                      {'role': 'assistant', 'content': 'reply 1'},
                      {'role': 'user', 'content': 'And then?'}]
  assert capsys.readouterr().out == 'reply 1\nreply 2\n'
