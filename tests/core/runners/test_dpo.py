"""DPO runner: the toy run raises held-out preference accuracy and margin; config checks name
the field; held-out prompts never occur in training."""
import json
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from configs import dpo_toy
from jaxpapers.core import config as config_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import tasks
from jaxpapers.core.models import layers
from jaxpapers.core.models import qwen
from jaxpapers.core.rl import dpo as dpo_lib
from jaxpapers.core.runners import dpo as dpo_runner


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('dpo_toy')
  results = dpo_runner.run(dpo_toy.get_config('test'), str(workdir))
  return workdir, results


@pytest.mark.slow
def test_dpo_toy_raises_heldout_preference_accuracy_and_margin(toy_run):
  workdir, results = toy_run
  first, last = results['first_eval'], results['last_eval']
  assert first['step'] == 0 and last['step'] == 40
  # At step 0 the policy is the reference: every implicit reward is 0, no pair is won.
  assert first['rewards/accuracies'] == 0.0 and first['rewards/margins'] == 0.0
  # A random perturbation of the policy would give ~0.5 and ~0; DPO goes clearly above both.
  assert last['rewards/accuracies'] > 0.57, last
  assert last['rewards/margins'] > 0.08, last
  assert last['rewards/chosen'] > last['rewards/rejected']
  assert last['loss'] < first['loss'] - 0.02
  assert json.loads((workdir / 'results.json').read_text())['last_eval'] == last


@pytest.mark.slow
def test_dpo_toy_writes_eval_rows_plot_checkpoints_and_reference_run(toy_run):
  workdir, _ = toy_run
  rows = metrics_lib.read_metrics(workdir)
  assert [r['step'] for r in rows if 'eval/rewards/accuracies' in r] == [0, 10, 20, 30, 40]
  assert [r['step'] for r in rows if 'loss' in r] == [10, 20, 30, 40]
  assert (workdir / 'dpo.png').stat().st_size > 1000
  assert {p.name for p in (workdir / 'checkpoints').iterdir()} >= {'20', '40'}
  warm = metrics_lib.read_metrics(workdir / 'reference')
  assert warm[-1]['step'] == 150 and warm[-1]['loss'] < warm[0]['loss']
  assert (workdir / 'reference' / 'checkpoints' / '150').is_dir()


@pytest.mark.slow
def test_dpo_toy_resumes_from_its_checkpoint_and_restores_the_reference(toy_run, tmp_path,
                                                                        capsys):
  workdir, results = toy_run
  shutil.copytree(workdir, tmp_path / 'run')
  warm_rows = metrics_lib.read_metrics(workdir / 'reference')
  config = dpo_toy.get_config('test')
  config.steps = config.steps + 10
  resumed = dpo_runner.run(config, str(tmp_path / 'run'))
  assert 'resumed from step 40' in capsys.readouterr().out
  assert metrics_lib.read_metrics(tmp_path / 'run' / 'reference') == warm_rows  # not retrained
  assert resumed['first_eval'] == results['first_eval']
  evals = [r['step'] for r in metrics_lib.read_metrics(tmp_path / 'run')
           if 'eval/loss' in r]
  assert evals == [0, 10, 20, 30, 40, 50]


def test_heldout_metrics_over_chunks_equal_batch_loss_on_the_whole_set():
  cfg = qwen.preset('qwen3-tiny', vocab_size=len(tasks.CharTokenizer()))
  model = layers.Decoder(cfg, nnx.Rngs(params=0))
  graphdef, params = nnx.graphdef(model), nnx.to_pure_dict(nnx.state(model, nnx.Param))
  ref_params = nnx.to_pure_dict(nnx.state(layers.Decoder(cfg, nnx.Rngs(params=1)), nnx.Param))
  loss_cfg = dpo_lib.DPOLossConfig(beta=0.3)
  logps_fn = jax.jit(dpo_lib.make_reference_logps_fn(graphdef))
  whole = dpo_runner.stacked(tasks.preference_pairs(16, 3),
                             dpo_runner.EncodePair(tasks.CharTokenizer(), 12))
  whole.update(logps_fn(ref_params, whole))
  chunks = [{k: v[i:i + 8] for k, v in whole.items()} for i in (0, 8)]
  got = jax.jit(lambda p, c: dpo_runner.heldout_metrics(p, c, loss_cfg))(
      [logps_fn(params, b) for b in chunks], chunks)
  _, want = jax.jit(lambda p, b: dpo_lib.batch_loss(p, graphdef, b, loss_cfg))(params, whole)
  assert set(dpo_runner.EVAL_KEYS) <= set(got)
  for k in want:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=k)


def test_split_pairs_heldout_prompts_are_unseen_in_training():
  config = dpo_toy.get_config('test')
  train, heldout = dpo_runner.split_pairs(config.data, config.seed)
  assert len(train) == config.data.train_pairs and len(heldout) == config.data.eval_pairs
  assert not {p['prompt'] for p in heldout} & {p['prompt'] for p in train}
  assert all(p['chosen'] != p['rejected'] for p in heldout)


def test_encode_pair_masks_only_the_answer_and_eos():
  tok = tasks.CharTokenizer()
  ex = dpo_runner.EncodePair(tok, 12)({'prompt': '37+45=', 'chosen': '82', 'rejected': '81'})
  assert ex['chosen_tokens'].shape == (12,)
  np.testing.assert_array_equal(ex['chosen_loss_mask'][:7], 0)     # BOS + 6 prompt chars
  np.testing.assert_array_equal(ex['chosen_loss_mask'][7:10], 1)   # '8', '2', EOS
  assert ex['rejected_tokens'][8] == tok.encode('1')[0]
  assert ex['rejected_attention_mask'].sum() == 10


@pytest.mark.parametrize('field,value,match', [
    ('seq_len', 8, 'seq_len: 8 < 11'),
    ('dpo.beta', 0.0, 'config.dpo: beta must be > 0'),
    ('dpo.loss_type', 'kto', "config.dpo: unknown DPO loss_type 'kto'"),
    ('model.overrides', {'vocab_size': 8}, 'model.overrides: vocab_size 8 < 20'),
    ('warmup.steps', -1, 'warmup.steps: must be >= 0'),
    ('data.eval_pairs', 100, 'data.eval_pairs: 100 is not divisible by 64'),
])
def test_validate_names_the_bad_field(field, value, match):
  config = dpo_toy.get_config('test')
  node, _, leaf = field.rpartition('.')
  (config[node] if node else config)[leaf] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    dpo_runner.validate(config)
