"""DPO runner: the toy run raises held-out preference accuracy and margin; config checks name
the field; held-out prompts never occur in training."""
import json

import numpy as np
import pytest

from configs import dpo_toy
from jaxpapers.core import config as config_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import tasks
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
  assert first['step'] == 0 and last['step'] == 30
  # At step 0 the policy is the reference: every implicit reward is 0, no pair is won.
  assert first['rewards/accuracies'] == 0.0 and first['rewards/margins'] == 0.0
  assert last['rewards/accuracies'] > 0.6, last
  assert last['rewards/margins'] > 0.1, last
  assert last['rewards/chosen'] > last['rewards/rejected']
  assert last['loss'] < first['loss'] - 0.02
  assert json.loads((workdir / 'results.json').read_text())['last_eval'] == last


@pytest.mark.slow
def test_dpo_toy_writes_eval_rows_plot_checkpoints_and_reference_run(toy_run):
  workdir, _ = toy_run
  rows = metrics_lib.read_metrics(workdir)
  assert [r['step'] for r in rows if 'eval/rewards/accuracies' in r] == [0, 10, 20, 30]
  assert [r['step'] for r in rows if 'loss' in r] == [10, 20, 30]
  assert (workdir / 'dpo.png').stat().st_size > 1000
  assert {p.name for p in (workdir / 'checkpoints').iterdir()} >= {'20', '30'}
  warm = metrics_lib.read_metrics(workdir / 'reference')
  assert warm[-1]['step'] == 40 and warm[-1]['loss'] < warm[0]['loss']
  assert (workdir / 'reference' / 'checkpoints' / '40').is_dir()


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
])
def test_validate_names_the_bad_field(field, value, match):
  config = dpo_toy.get_config('test')
  node, _, leaf = field.rpartition('.')
  (config[node] if node else config)[leaf] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    dpo_runner.validate(config)
