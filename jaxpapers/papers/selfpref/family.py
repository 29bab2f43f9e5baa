"""A family of tiny generator-judges of graded skill judging each other
(experiment 'selfpref_family', one seed; configs/selfpref_family.py runs seeds).

In `workdir`:
  member_<k>/      core's GRPO runner on the 'selfpref_arith' task (arith.py): an SFT
                   warm-up of `family.sft_steps[k]` steps on answer and judge examples, then
                   `steps` GRPO steps on the same mix (exact sum / right verdict); the
                   budget is the only difference between members
  answers.jsonl    every member's greedy answers to the test problems (never trained on)
  judgments/<mode>/m<k>__m<j>.jsonl   member k judging its answer vs member j's, both orders
  results.json, selfpref_family.png
Claims checked: judge accuracy rises with generator accuracy across the family (Pearson r);
harmful self-preference (HSPP) persists where the judge erred as a generator; the CoT judge
(pairwise sums before the verdict) has lower HSPP than the direct one.
Finished members and judgment files are reused, so a killed run resumes.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from jaxpapers.core import data as data_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core.runners import grpo as grpo_runner
from jaxpapers.papers.selfpref import arith
from jaxpapers.papers.selfpref import judge as judge_lib
from jaxpapers.papers.selfpref import metrics as sp_metrics
from jaxpapers.papers.selfpref import models_study
from jaxpapers.papers.selfpref import plots

grpo_runner.TASKS.register('selfpref_arith')(arith.prompt_set)


def train_member(config, workdir: pathlib.Path, k: int):
  """Member k: warm-up of sft_steps[k], then the GRPO steps. Returns (graphdef, params)."""
  c = config.copy_and_resolve_references()
  c.warmup.steps = int(config.family.sft_steps[k])
  c.seed = config.seed * 100 + k
  out = workdir / f'member_{k}'
  grpo_runner.run(c, str(out))
  return grpo_runner.load_policy(c, out, mesh_lib.make_mesh(c.mesh))


def _pearson(x, y) -> float | None:
  x, y = np.asarray(x, float), np.asarray(y, float)
  ok = ~(np.isnan(x) | np.isnan(y))
  if ok.sum() < 3 or x[ok].std() == 0 or y[ok].std() == 0:
    return None
  return float(np.corrcoef(x[ok], y[ok])[0, 1])


def study(config, workdir: pathlib.Path, members: list, fmt) -> dict:
  """Answers, judgments and per-member metrics (pooled over the other members)."""
  test = arith.problems(config.family.num_test, config.seed + 10_000, 'test', config.task.terms,
                        config.task.digits, config.task.test_fraction)
  mesh = mesh_lib.make_mesh(config.mesh)
  path = workdir / 'answers.jsonl'
  if not path.exists():
    rows = []
    for k, model in enumerate(members):
      texts = judge_lib.answer(model, fmt, [p['question'] for p in test], max_new_tokens=8,
                               batch_size=config.family.batch_size, mesh=mesh)
      rows += [{'member': f'm{k}', 'unique_id': f'q{i}', 'problem': p['question'],
                'answer': t, 'correct': bool(arith.reward(t, p['answer']))}
               for i, (p, t) in enumerate(zip(test, texts))]
    data_lib.write_jsonl(path, rows)
  flat = data_lib.read_jsonl(path)
  answers = {f'm{k}': [r for r in flat if r['member'] == f'm{k}'] for k in range(len(members))}
  results = {}
  for mode in config.family.modes:
    for k, model in enumerate(members):
      pooled = models_study.judge_against_others(
          lambda model=model: (model, fmt), f'm{k}', answers, mode, workdir / 'judgments',
          batch_size=config.family.batch_size, max_new_tokens=config.family.cot_tokens,
          mesh=mesh)
      summary = sp_metrics.summarize(pooled, config.family.bootstrap, config.seed)
      if mode == 'cot':
        summary.update(cot_error_stats(pooled))
      summary['generator_accuracy'] = models_study.accuracy(answers[f'm{k}'])
      summary['sft_steps'] = int(config.family.sft_steps[k])
      results[f'{mode}/m{k}'] = summary
  return results


def cot_error_stats(rows: list[dict]) -> dict:
  """Where the judge's own answer is wrong and the other right: how often its CoT works
  out its own wrong total again (then the check can only confirm it) vs the right one."""
  hard = [r for r in rows if not r['assistent_1_is_correct'] and r['assistent_2_is_correct']]
  sums = [arith.cot_sum(r[f'game_{g}_output']) for r in hard for g in (1, 2)]
  own = [r['assistent_1_answer'] for r in hard for _ in (1, 2)]
  right = [r['assistent_2_answer'] for r in hard for _ in (1, 2)]
  n = len(sums)
  return {'cot_repeats_own_error': sum(s == o for s, o in zip(sums, own)) / n if n else None,
          'cot_finds_right_total': sum(s == t for s, t in zip(sums, right)) / n if n else None}


@registry.experiment('selfpref_family')
def run(config, workdir: str) -> dict:
  workdir = pathlib.Path(workdir)
  if len(config.family.sft_steps) < 2:
    raise ValueError(f'config.family.sft_steps: {list(config.family.sft_steps)} - the family '
                     'needs at least two members')
  for mode in config.family.modes:
    if mode not in judge_lib.MODES:
      raise ValueError(f'config.family.modes: {mode!r} unknown; valid: {list(judge_lib.MODES)}')
  members = [train_member(config, workdir, k) for k in range(len(config.family.sft_steps))]
  results = study(config, workdir, members, arith.judge_format())
  flat: dict = {}
  for key, s in results.items():
    mode, member = key.split('/')
    for m in ('generator_accuracy', 'accuracy', 'spr', 'lspr', 'hspp', 'hopp', 'n_diff',
              'n_self_wrong', 'unparsed', 'cot_repeats_own_error', 'cot_finds_right_total'):
      if m in s:
        flat[f'{mode}.{member}.{m}'] = s[m]
  for mode in config.family.modes:
    keys = [f'{mode}/m{k}' for k in range(len(members))]
    gen = [results[k]['generator_accuracy'] for k in keys]
    acc = [np.nan if results[k]['accuracy'] is None else results[k]['accuracy'] for k in keys]
    hspp = [results[k]['hspp'] for k in keys if results[k]['hspp'] is not None]
    flat[f'{mode}.corr_generator_judge'] = _pearson(gen, acc)
    flat[f'{mode}.hspp_mean'] = float(np.mean(hspp)) if hspp else None
    flat[f'{mode}.judge_accuracy_mean'] = (None if np.isnan(acc).all() else
                                           float(np.nanmean(acc)))
  plots.study_plot({k.replace('/m', '/member '): v for k, v in results.items()},
                   workdir / 'selfpref_family.png', title=f'tiny family, seed {config.seed}')
  metrics_lib.write_json(workdir / 'results.json', {'members': results, **flat})
  for key, s in results.items():
    print(f'{key:>10} (sft {s["sft_steps"]:>5}): {models_study.describe(s)}', flush=True)
  print(json.dumps({k: v for k, v in flat.items() if 'corr' in k or 'mean' in k}), flush=True)
  return flat
