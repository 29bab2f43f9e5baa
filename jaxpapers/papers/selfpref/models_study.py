"""Real checkpoints judging each other (experiment 'selfpref_models').

For `config.models` (HF dirs, .gguf files or named checkpoints, loaded by core's generate
runner) on `config.dataset` (GSM8K test or MATH-500, graded by math-verify):
  answers/<model>.jsonl              each model's greedy answers and their correctness
  judgments/<mode>/<judge>__<other>.jsonl
                                     every judge on its own vs every other model's answer, both
                                     orders, in the llm-sp artifact format
  results.json, selfpref_models.png  per judge and mode: generator accuracy, SPR, judge
                                     accuracy, LSPR, HSPP (pooled over the other models) with
                                     bootstrap intervals
Finished files are reused, so a killed run resumes where it stopped.
"""
from __future__ import annotations

import functools
import pathlib
import time

import ml_collections
import numpy as np

from jaxpapers.core import code_exec
from jaxpapers.core import data as data_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import paths
from jaxpapers.core import registry
from jaxpapers.core import rewards
from jaxpapers.core.runners import generate as generate_runner
from jaxpapers.papers.selfpref import judge as judge_lib
from jaxpapers.papers.selfpref import metrics as sp_metrics
from jaxpapers.papers.selfpref import plots

DATASETS = ('gsm8k', 'math500', 'humaneval')


def task_of(dataset: str) -> str:
  return 'code' if dataset == 'humaneval' else 'math'


def questions(dataset: str, n: int, seed: int) -> list[dict]:
  """n questions {unique_id, problem, gold}, a seeded sample of the test set (HumanEval:
  the function stub is the problem, the gold is the whole problem with its tests)."""
  if dataset == 'humaneval':
    items = [{'unique_id': p['task_id'], 'problem': p['prompt'], 'gold': p}
             for p in code_exec.humaneval_problems()]
  elif dataset == 'gsm8k':
    rows = data_lib.read_jsonl(paths.data_file('gsm8k/test.jsonl.gz'),
                               required=('question', 'answer'))
    items = [{'unique_id': f'gsm8k-{i}', 'problem': r['question'],
              'gold': data_lib.gsm8k_final_answer(r['answer'])} for i, r in enumerate(rows)]
  elif dataset == 'math500':
    rows = data_lib.read_jsonl(paths.data_file('math500/test.jsonl'),
                               required=('problem', 'answer', 'unique_id'))
    items = [{'unique_id': r['unique_id'], 'problem': r['problem'], 'gold': r['answer']}
             for r in rows]
  else:
    raise ValueError(f'dataset {dataset!r} unknown; valid: {list(DATASETS)}')
  order = np.random.default_rng(seed).permutation(len(items))[:n]
  return [items[i] for i in sorted(order)]


def grade(dataset: str, item: dict, completion: str) -> bool:
  """math-verify for math; HumanEval's tests in a sandboxed subprocess for code."""
  if task_of(dataset) == 'code':
    return code_exec.humaneval_passed(item['gold'], completion)
  return bool(rewards.math_reward(completion, item['gold']))


def model_name(spec: str) -> str:
  return pathlib.Path(str(spec)).name.removesuffix('.gguf')


def _load(spec: str, config, mesh):
  c = ml_collections.ConfigDict(dict(model_dir=spec, preset='', dtype=config.dtype, seed=0,
                                     tokenizer=''))
  generate_runner.validate_model(c)
  t0 = time.time()
  model = generate_runner.load_model(c, mesh)
  fmt = judge_lib.chat_format(generate_runner.tokenizer_for(c), task_of(config.dataset))
  print(f'{model_name(spec)}: loaded in {time.time() - t0:.1f} s', flush=True)
  return model, fmt


def answer_all(config, workdir: pathlib.Path, items, mesh) -> dict[str, list[dict]]:
  out = {}
  for spec in config.models:
    path = workdir / 'answers' / f'{model_name(spec)}.jsonl'
    if not path.exists():
      model, fmt = _load(spec, config, mesh)
      t0 = time.time()
      texts = judge_lib.answer(model, fmt, [it['problem'] for it in items],
                               max_new_tokens=config.answer_tokens, batch_size=config.batch_size,
                               mesh=mesh)
      rows = [{**it, 'answer': t, 'correct': grade(config.dataset, it, t)}
              for it, t in zip(items, texts)]
      data_lib.write_jsonl(path, rows)
      print(f'{model_name(spec)}: answered {len(rows)} in {time.time() - t0:.1f} s, accuracy '
            f'{accuracy(rows):.3f}', flush=True)
    out[model_name(spec)] = data_lib.read_jsonl(path)
  return out


def accuracy(answers: list[dict]) -> float:
  """A generator's accuracy over its graded answer rows."""
  return float(np.mean([a['correct'] for a in answers]))


def pair_items(own: list[dict], other: list[dict]) -> list[dict]:
  return [{'unique_id': a['unique_id'], 'problem': a['problem'], 'self_answer': a['answer'],
           'other_answer': b['answer'], 'self_correct': a['correct'],
           'other_correct': b['correct']} for a, b in zip(own, other)]


def judge_against_others(load, judge: str, answers: dict, mode: str, out_dir: pathlib.Path, *,
                         batch_size: int, max_new_tokens: int, mesh,
                         temperature: float = 0.0) -> list[dict]:
  """`judge` on its answers vs every other model's, pooled; each pair's rows are kept in
  `out_dir/<mode>/<judge>__<other>.jsonl` and reused. `load()` -> (model, format) is only
  called when a file is missing."""
  pooled, loaded = [], None
  for other in answers:
    if other == judge:
      continue
    path = out_dir / mode / f'{judge}__{other}.jsonl'
    if not path.exists():
      loaded = loaded or load()
      t0 = time.time()
      data_lib.write_jsonl(path, judge_lib.judge_rows(
          *loaded, pair_items(answers[judge], answers[other]), mode, batch_size=batch_size,
          max_new_tokens=max_new_tokens, temperature=temperature, mesh=mesh))
      print(f'{judge} judged {other} ({mode}) in {time.time() - t0:.1f} s', flush=True)
    pooled += data_lib.read_jsonl(path)
  return pooled


def judge_all(config, workdir: pathlib.Path, answers, mesh) -> dict[str, dict[str, list]]:
  """rows[mode][judge] pooled over the other models."""
  rows = {mode: {} for mode in config.modes}
  for spec in config.models:
    # the judge is loaded at most once, and only if one of its files is missing
    load = functools.lru_cache(maxsize=1)(functools.partial(_load, spec, config, mesh))
    for mode in config.modes:
      rows[mode][model_name(spec)] = judge_against_others(
          load, model_name(spec), answers, mode, workdir / 'judgments',
          batch_size=config.batch_size, max_new_tokens=config.cot_tokens, mesh=mesh,
          temperature=config.cot_temperature)
  return rows


@registry.experiment('selfpref_models')
def run(config, workdir: str) -> dict:
  workdir = pathlib.Path(workdir)
  if len(config.models) < 2:
    raise ValueError(f'config.models: {list(config.models)} - a judge needs at least one '
                     'other model to compare with')
  for mode in config.modes:
    if mode not in judge_lib.MODES:
      raise ValueError(f'config.modes: {mode!r} unknown; valid: {list(judge_lib.MODES)}')
  items = questions(config.dataset, config.num_questions, config.seed)
  mesh = mesh_lib.make_mesh(config.mesh)
  answers = answer_all(config, workdir, items, mesh)
  judged = judge_all(config, workdir, answers, mesh)
  results = {}
  for mode, per_judge in judged.items():
    for name, rows in per_judge.items():
      summary = sp_metrics.summarize(rows, config.bootstrap, config.seed)
      summary['generator_accuracy'] = accuracy(answers[name])
      results[f'{mode}/{name}'] = summary
      print(f'{mode:>6} {name:>30}: {describe(summary)}', flush=True)
  plots.study_plot(results, workdir / 'selfpref_models.png',
                   title=f'{config.dataset}: {config.num_questions} questions')
  metrics_lib.write_json(workdir / 'results.json', results)
  return results


def fmt_metric(v) -> str:
  return 'n/a' if v is None else f'{v:.3f}'


def describe(s: dict) -> str:
  """One line of a judge's summary (metrics.summarize + generator_accuracy)."""
  parts = [f'generator {s["generator_accuracy"]:.3f}'] + [
      f'{label} {fmt_metric(s[key])}' for label, key in (
          ('judge acc', 'accuracy'), ('SPR', 'spr'), ('LSPR', 'lspr'), ('HSPP', 'hspp'),
          ('HOPP', 'hopp'))]
  return ' '.join(parts) + (f' (D_diff {s["n_diff"]}, self wrong {s["n_self_wrong"]}, '
                            f'unparsed {s["unparsed"]})')
