"""End to end: the tiny STS-B config trains all three stages on the 8-device CPU mesh."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers import launch
from jaxpapers.core import config as config_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core.models import bert
from jaxpapers.papers.disbert import data as pairs
from jaxpapers.papers.disbert import experiment
from jaxpapers.papers.disbert import model as model_lib


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  from configs import disbert_stsb
  c = disbert_stsb.get_config('tiny')
  c.stages.joint.eval_every = 0             # one dev evaluation: fewer host round trips
  workdir = tmp_path_factory.mktemp('disbert')
  results = launch.run(c, str(workdir))
  return workdir, results


def test_tiny_run_writes_results_and_losses_decrease(tiny_run):
  workdir, results = tiny_run
  on_disk = json.loads((workdir / 'results.json').read_text())
  assert on_disk['system'] == 'disbert' and on_disk['task'] == 'stsb'
  run = on_disk['seeds'][0]
  assert set(run['test']) >= {'pearson', 'spearman', 'code_perplexity', 'codes_used'}
  assert len(run['topics']) == 4 and (workdir / 'topics.txt').exists()
  assert 0.0 < run['topic_diversity'] <= 1.0
  assert set(on_disk['zero_shot_bi_encoder']) == {'dev', 'test'}
  rows = metrics_lib.read_metrics(workdir)
  ntm_nll = [r['ntm_nll'] for r in rows if 'ntm_nll' in r and 'task_loss' not in r]
  task = [r['task_loss'] for r in rows if 'task_loss' in r]
  assert np.mean(ntm_nll[-3:]) < np.mean(ntm_nll[:3])
  assert np.mean(task[-3:]) < np.mean(task[:3])
  assert all(np.isfinite(r['loss']) for r in rows if 'loss' in r)


def test_stage_validation_names_bad_group(tiny_config):
  tiny_config.stages.vq.train = 'proj,decoder'
  with pytest.raises(config_lib.ConfigError, match=r"stages.vq.train: unknown groups \['decoder'\]"):
    experiment.validate(tiny_config)


def test_baseline_keeps_only_task_stages_bert_and_head(tiny_config):
  tiny_config.baseline = True
  stages = experiment.stages_from(tiny_config)
  assert [s.name for s in stages] == ['joint']
  assert stages[0].train == ('bert', 'head') and stages[0].vq == stages[0].topic == 0


def test_semantic_attention_changes_only_the_last_layer_input():
  cfg = bert.BertConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                        num_attention_heads=2, add_pooling_layer=False)
  ids = jnp.array([[1, 5, 7, 2, 0], [1, 9, 2, 0, 0]])
  mask = (ids > 0).astype(jnp.int32)
  outs = {}
  for sem in (False, True):
    m = model_lib.build(model_lib.DisBertConfig(bow_vocab=10, num_topics=3, sem_attention=sem,
                                                sem_scale=1e3), bert.init(cfg, 0), 0)
    outs[sem] = jax.jit(lambda m=m: m.encode(ids, jnp.zeros_like(ids), mask))()
  np.testing.assert_allclose(outs[True]['z_e'], outs[False]['z_e'])
  assert not np.allclose(outs[True]['logits'], outs[False]['logits'])
  plain = model_lib.build(model_lib.DisBertConfig(use_vq=False), bert.init(cfg, 0), 0)
  assert not hasattr(plain, 'ntm') or plain.__dict__.get('ntm') is None
  out = jax.jit(lambda: plain.encode(ids, jnp.zeros_like(ids), mask))()
  assert set(out) == {'logits'} and out['logits'].shape == (2, 1)


def test_zero_shot_minilm_matches_published_stsb_score():
  """all-MiniLM-L6-v2 as a bi-encoder scores 82.03 Spearman x 100 on the STS-B test split
  (sentence-transformers' model card); our BERT, tokenizer and pooling must reproduce it."""
  from configs import disbert_stsb
  c = disbert_stsb.get_config()
  task = pairs.TASKS.get('stsb')
  rows, _ = pairs.load_split(task, 'test')
  out = experiment.zero_shot(c, bert.load_tokenizer(), {'test': rows}, splits=('test',))
  assert abs(out['test']['spearman'] - 0.8203) < 2e-3, out
