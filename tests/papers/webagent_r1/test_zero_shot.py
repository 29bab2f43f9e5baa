"""Zero-shot reference rows: batching and per-task bookkeeping, and the real run end to end."""
import json

import numpy as np
import pytest

from configs import webagent_zero_shot
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.papers.webagent_r1 import training
from jaxpapers.papers.webagent_r1 import zero_shot
from tests.papers.webagent_r1 import test_training

HAS_MINIWOB = test_training.HAS_MINIWOB


def _fake_rollout(succeeds):
  """An agent_rollout stand-in: episode i succeeds iff `succeeds(prompts, i)`; it reports
  `turns` = the batch size, so a wrongly weighted mean shows."""
  calls = []

  def rollout(params, graphdef, prompts, idx, config, rng, mesh, temperature=None):
    assert config.grpo.num_generations == 1 and temperature == 0.0
    calls.append(list(idx))
    rewards = np.array([float(succeeds(prompts, i)) for i in idx], np.float32)
    stats = {'reward': float(rewards.mean()), 'turns': float(len(idx)), 'invalid_actions': 0.0,
             'env_errors': 1.0, 'truncated': 0.0, 'policy_tokens': 10.0}
    return {'rewards': rewards}, stats, f'batch {idx[0]}'
  return rollout, calls


def test_sites_rows_weight_every_episode_once(monkeypatch):
  c = webagent_zero_shot.get_config('test')
  c.base.task.num_eval, c.batch_size = 5, 2
  rollout, calls = _fake_rollout(lambda prompts, i: i % 2 == 0)
  monkeypatch.setattr(zero_shot.grpo_runner, 'agent_rollout', rollout)
  stats, samples = zero_shot.sites_rows((None, None), tok_lib.load('qwen'), c.base,
                                        c.batch_size, None)
  assert calls == [[0, 1], [2, 3], [4]]
  assert stats['n'] == 5 and stats['success'] == pytest.approx(3 / 5)
  assert stats['rewards'] == [1.0, 0.0, 1.0, 0.0, 1.0]
  assert stats['turns'] == pytest.approx((2 * 2 + 2 * 2 + 1 * 1) / 5)   # per episode
  assert stats['env_errors'] == 3.0                                      # a count, summed
  assert samples == ['batch 0', 'batch 2', 'batch 4']


def test_sites_prompts_use_the_given_tokenizer():
  c = webagent_zero_shot.get_config('test').base.task
  tok = tok_lib.load('qwen')
  prompts = training.prompt_set(c, 2, 0, 'test', tok=tok)
  assert prompts.tokenizer is tok
  text = tok.decode(prompts.prompt_ids[0])
  assert text.startswith('<|im_start|>system\n') and 'Task Instruction: ' in text
  assert 'Round 0' in tok.decode(prompts.brief_prompt_ids[0])


@pytest.mark.skipif(not HAS_MINIWOB, reason='needs chromium, chromium-driver and miniwob')
def test_miniwob_rows_are_per_task(monkeypatch):
  c = webagent_zero_shot.get_config('test')
  c.base.miniwob.seeds, c.batch_size = (0, 1), 3
  rollout, _ = _fake_rollout(lambda prompts, i: prompts.answers[i] == 'enter-text' and i == 3)
  monkeypatch.setattr(zero_shot.grpo_runner, 'agent_rollout', rollout)
  stats, _ = zero_shot.miniwob_rows((None, None), tok_lib.load('qwen'), c.base, c.base.miniwob,
                                     c.batch_size, None)
  # episodes: click-button seeds 0, 1, then enter-text seeds 0, 1 (only seed 1 succeeds)
  assert stats['miniwob_success'] == {'click-button': 0.0, 'enter-text': 0.5}
  assert stats['miniwob_mean'] == pytest.approx(0.25)


@pytest.mark.skipif(not HAS_MINIWOB, reason='needs chromium, chromium-driver and miniwob')
def test_zero_shot_runs_a_tiny_random_model_on_both_benchmarks(tmp_path):
  test_training.launch('configs/webagent_zero_shot.py:test', tmp_path)
  row = json.loads((tmp_path / 'results.json').read_text())['qwen3-tiny']
  assert row['sites']['n'] == 2 and 0.0 <= row['sites']['success'] <= 1.0
  assert 1.0 <= row['sites']['turns'] <= 2.0
  assert set(row['miniwob']['miniwob_success']) == {'click-button', 'enter-text'}
  assert (tmp_path / 'qwen3-tiny' / 'sites_samples.jsonl').read_text().count('\n') == 1
