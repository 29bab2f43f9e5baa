"""GRPO runs end to end: the toy task and the GSM8K recipe (tiny random model)."""
import types

import numpy as np
import pytest

from configs import grpo_gsm8k
from configs import grpo_toy
from jaxpapers import launch
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core.rl import sft as sft_lib
from jaxpapers.core.runners import grpo as grpo_runner


@pytest.mark.slow
def test_grpo_toy_runs_and_keeps_trajectory_checkpoints(tmp_path):
  results = launch.run(grpo_toy.get_config('test'), str(tmp_path))
  rows = [r for r in metrics_lib.read_metrics(tmp_path) if 'reward' in r]
  assert [r['step'] for r in rows] == [1, 2, 3, 4]
  for key in ('reward', 'clip_ratio/region_mean', 'entropy', 'completion_length',
              'tokens_per_s', 'grad_norm'):
    assert key in rows[-1], key
  assert 0.0 <= results['reward_last10'] <= 1.0
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir() if p.name.isdigit())
  assert steps == [0, 2, 4]           # step 0 = RL start, then every 2 steps
  assert (tmp_path / 'grpo.png').exists()


@pytest.mark.slow
def test_grpo_gsm8k_recipe_runs_on_tiny_qwen(tmp_path):
  results = launch.run(grpo_gsm8k.get_config('test'), str(tmp_path))
  rows = [r for r in metrics_lib.read_metrics(tmp_path) if 'reward' in r]
  assert len(rows) == 2 and 'eval_accuracy' in rows[-1]
  assert results['steps'] == 2


def test_sft_warm_up_draws_each_batch_from_one_length(monkeypatch):
  """Demonstrations padded to several lengths: every batch has one length, and each length
  is drawn about in proportion to its count."""
  seen = []

  def fake_step(graphdef, opt):
    def step(state, batch, rng):
      seen.append(batch['tokens'].shape)
      return state, {'loss': 0.0}
    return step
  monkeypatch.setattr(sft_lib, 'make_train_step', fake_step)
  monkeypatch.setattr(grpo_runner.jax, 'jit', lambda f, **kw: f)
  monkeypatch.setattr(grpo_runner.train_lib, 'state_from_params',
                      lambda p, opt, seed: types.SimpleNamespace(params=p, rng=None))
  examples = [{'tokens': np.zeros(n, np.int32), 'loss_mask': np.ones(n, np.int32)}
              for n in [8] * 30 + [16] * 10]
  w = types.SimpleNamespace(steps=400, batch_size=4, log_every=0, optimizer={
      'learning_rate': 1e-3, 'warmup_steps': 0, 'schedule': 'constant', 'weight_decay': 0.0,
      'b1': 0.9, 'b2': 0.999, 'eps': 1e-8, 'max_grad_norm': 1.0})
  writer = types.SimpleNamespace(write=lambda *a: None)
  assert grpo_runner.sft_warm_up('params', None, examples, w, 0, writer) == 'params'
  assert set(seen) == {(4, 8), (4, 16)}
  assert 0.65 < sum(s == (4, 8) for s in seen) / len(seen) < 0.85
