"""GRPO runs end to end: the toy task and the GSM8K recipe (tiny random model)."""
import pytest

from configs import grpo_gsm8k
from configs import grpo_toy
from jaxpapers import launch
from jaxpapers.core import metrics as metrics_lib


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
