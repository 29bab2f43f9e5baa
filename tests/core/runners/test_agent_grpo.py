"""Multi-turn GRPO end to end: the agent toy runs (8-device mesh), counts env faults without
crashing, resumes bit-identically after kill -9, and several policies checkpoint together."""
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import agent_toy
from jaxpapers import launch
from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import env as env_lib
from jaxpapers.core import lookup_env
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import train as train_lib
from tests.core.runners.test_sft import REPO, _env, _flat, _params, kill9_when_exists

TOY = ['-m', 'jaxpapers.launch', '--config=configs/agent_toy.py:test',
       '--config.base.steps=4', '--config.base.checkpoint.every=2']


@pytest.mark.slow
def test_agent_toy_runs_and_reports_tool_use(tmp_path):
  results = launch.run(agent_toy.get_config('test'), str(tmp_path))
  seed = results['per_seed']['0']
  for key in ('success_first10', 'success_last10', 'tool_call_rate'):
    assert key in seed and 0.0 <= seed[key] <= 1.0, key
  rows = [r for r in metrics_lib.read_metrics(tmp_path / 'seed_0') if 'reward' in r]
  assert [r['step'] for r in rows] == [1, 2, 3]
  for key in ('reward', 'reward/em', 'reward/format', 'turns', 'tool_calls', 'tool_call_rate',
              'invalid_actions', 'env_errors', 'truncated', 'policy_tokens', 'env_tokens',
              'generate_s', 'update_s', 'eval_accuracy', 'eval_tool_call_rate', 'grad_norm'):
    assert key in rows[-1], key
  assert (tmp_path / 'results.json').exists() and (tmp_path / 'seed_0' / 'grpo.png').exists()


@env_lib.ENVS.register('test_faulty')
class FaultyEnv(lookup_env.LookupEnv):
  """Raises on rows 0 mod 4, returns garbage on 1 mod 4, hangs on 2 mod 4 (first call)."""

  def step(self, rows, turns):
    if any(r % 4 == 0 for r in rows):
      raise RuntimeError('tool crashed')
    if any(r % 4 == 2 for r in rows) and len(rows) == 1:
      time.sleep(3)
    return [42 if r % 4 == 1 else o for r, o in zip(rows, super().step(rows, turns))]

  def score(self, row, episode):
    if row % 8 == 3:
      raise ValueError('checker crashed')
    return super().score(row, episode)


@pytest.mark.slow
def test_env_faults_are_counted_and_the_run_goes_on(tmp_path):
  config = agent_toy.get_config('test')
  config.base.env.name = 'test_faulty'
  config.base.rollout.env_timeout_s = 0.5
  config.base.steps, config.base.warmup.steps = 2, 5
  launch.run(config, str(tmp_path))
  rows = [r for r in metrics_lib.read_metrics(tmp_path / 'seed_0') if 'reward' in r]
  assert len(rows) == 2
  assert all(r['env_errors'] > 0 for r in rows)
  assert all(r['score_errors'] > 0 for r in rows)


def _toy_cmd(workdir):
  return [sys.executable, *TOY, f'--workdir={workdir}']


@pytest.mark.slow
def test_agent_toy_kill9_then_rerun_is_bit_identical(tmp_path):
  full = subprocess.run(_toy_cmd(tmp_path / 'full'), cwd=REPO, env=_env(1), capture_output=True,
                        text=True, timeout=600)
  assert full.returncode == 0, full.stderr[-3000:]
  killed = tmp_path / 'killed'
  ckpts = killed / 'seed_0' / 'checkpoints'
  kill9_when_exists(_toy_cmd(killed), _env(1), ckpts / '2')
  assert (ckpts / '2').exists() and not (ckpts / '4').exists(), 'kill came too late'
  rerun = subprocess.run(_toy_cmd(killed), cwd=REPO, env=_env(1), capture_output=True,
                         text=True, timeout=600)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  assert 'resumed from step' in rerun.stdout
  ref = _flat(_params(tmp_path / 'full' / 'seed_0', 4))
  got = _flat(_params(killed / 'seed_0', 4))
  assert ref.keys() == got.keys()
  for k in ref:
    np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


def test_several_policies_save_and_restore_together(tmp_path):
  """Two policies (e.g. G-Zero's proposer and generator) with their optimiser states and a
  round counter are one checkpoint item, restored together."""
  opt = train_lib.make_optimizer({'learning_rate': 1e-2}, 10)
  states = {name: train_lib.state_from_params({'w': jnp.full((3,), float(i))}, opt, i)
            for i, name in enumerate(('proposer', 'generator'))}
  states['proposer'] = train_lib.apply_gradients(states['proposer'],
                                                 {'w': jnp.ones((3,))}, opt)[0]
  tree = {**states, 'round': jnp.asarray(3, jnp.int32)}
  ckpt = ckpt_lib.Checkpointer(tmp_path, every=1, keep=2, async_save=False)
  ckpt.save(5, tree)
  ckpt.close()
  restored = ckpt_lib.Checkpointer(tmp_path, every=1).restore_latest(
      ckpt_lib.abstract_like(tree))
  assert restored.step == 5 and int(restored.state['round']) == 3
  assert int(restored.state['proposer'].step) == 1 and int(restored.state['generator'].step) == 0
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
               restored.state, tree)


@env_lib.REWARDS.register('test_turn_length')
def _turn_length(task, episode):   # a signal even for an untrained policy
  del task
  return len(episode.policy_text()) / 24.0


@pytest.mark.slow
def test_lora_grpo_trains_only_adapters_and_exports_merged(tmp_path):
  config = agent_toy.get_config('test')
  b = config.base
  b.steps, b.warmup.steps, b.env.reward = 2, 0, 'test_turn_length'
  b.lora = {'rank': 4, 'alpha': 8.0, 'target_modules': ('q_proj', 'v_proj', 'up_proj')}
  launch.run(config, str(tmp_path))
  params = _flat(_params(tmp_path / 'seed_0', 2))
  assert params and all(k.endswith(('.a', '.b')) for k in params), sorted(params)[:4]
  assert {k.split('.')[-2] for k in params} == {'q_proj', 'v_proj', 'up_proj'}
  assert any(np.any(params[k] != 0) for k in params if k.endswith('.b'))   # B starts at 0
  from jaxpapers.core.models import families
  merged = families.from_pretrained(str(tmp_path / 'seed_0' / 'merged_hf'))
  assert merged.config.num_hidden_layers == 2
