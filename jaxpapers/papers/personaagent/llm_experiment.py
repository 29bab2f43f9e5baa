"""Experiment 'personaagent': PersonaAgent and its ablations on the MovieLens LaMP tasks.

  python -m jaxpapers.launch --config=configs/personaagent_movielens.py --workdir=W

Stages (each caches its outputs under W, so rerunning the same command resumes):
  1. tasks: both LaMP tasks (`tasks.build`); the LLM rows answer each evaluated user's
     first `data.rating_queries` rating and `data.tag_queries` tagging queries (LaMP files of
     that subset under W/lamp_llm/); the non-LLM rows are scored on the same subset.
  2. episodic memory: every user's history items, per task, in `EpisodicMemory`.
  3. semantic memory: one LLM summary per user -> W/semantic.jsonl.
  4. personas: initialised from the summaries, aligned for E iterations on the latest n
     history interactions -> W/personas.jsonl (reloaded for evaluation) and
     W/personas_log.json (simulations, feedback, rewrites per iteration).
  5. answers: every method in `methods` on both tasks -> W/answers/<method>_<task>.jsonl
     and LaMP prediction files W/predictions/<method>_<task>.json, scored by LaMP's rules
     with user-bootstrap intervals (`experiment.score`).
  6. alignment curve: the first `curve.users` users, personas at E = 0..`curve.iterations`,
     answered by `curve.method` -> `alignment_by_iteration`.
Every generation is cached in W/generations.jsonl (`llm.LocalLLM`). results.json holds per
method mae, rmse, tag_accuracy, tag_f1 (with `_ci`), parse failures, invalid tags, tool
calls; results.md the README table.
"""
from __future__ import annotations

import dataclasses
import pathlib
import time

import ml_collections

from jaxpapers.core import agent as agent_core
from jaxpapers.core import config as config_lib
from jaxpapers.core import metrics as metrics_core
from jaxpapers.core import registry
from jaxpapers.core.runners import generate as generate_runner
from jaxpapers.papers.personaagent import actions
from jaxpapers.papers.personaagent import agent as agent_lib
from jaxpapers.papers.personaagent import alignment
from jaxpapers.papers.personaagent import experiment as base
from jaxpapers.papers.personaagent import llm as llm_lib
from jaxpapers.papers.personaagent import memory as memory_lib
from jaxpapers.papers.personaagent import prompts
from jaxpapers.papers.personaagent import semantic as semantic_lib
from jaxpapers.papers.personaagent import tasks as tasks_lib

require = config_lib.require


def validate(c) -> None:
  config_lib.check_positive(c, 'data.num_users', 'data.queries_per_user', 'memory.k',
                            'memory.recency_half_life', 'eval.level', 'alignment.n',
                            'llm.batch_size', 'llm.answer_tokens', 'agent.max_turns',
                            'agent.max_turn_tokens', 'agent.max_total_tokens',
                            'semantic.max_new_tokens')
  require(c.data.num_users <= 943, 'data.num_users',
          f'MovieLens-100K has 943 users, got {c.data.num_users}')
  require(c.data.rating_queries >= 0 and c.data.tag_queries >= 0, 'data.rating_queries',
          'rating_queries and tag_queries must be >= 0')
  require(c.alignment.iterations >= 0, 'alignment.iterations',
          f'must be >= 0, got {c.alignment.iterations}')
  require(0 <= c.curve.users <= c.data.num_users, 'curve.users',
          f'must lie in [0, data.num_users], got {c.curve.users}')
  config_lib.check_choice(c, 'alignment.task', (tasks_lib.LAMP_3,))
  config_lib.check_choice(c, 'curve.method', sorted(agent_lib.METHODS))
  config_lib.check_choice(c, 'memory.encoder', sorted(memory_lib.EMBEDDERS))
  config_lib.check_choice(c, 'eval.unit', ('user', 'query'))
  for name in c.methods:
    require(name in agent_lib.METHODS, 'methods',
            f'{name!r} is not one of {sorted(agent_lib.METHODS)}')
  for name in c.baselines:
    require(name in base.METHODS, 'baselines', f'{name!r} is not one of {list(base.METHODS)}')
  generate_runner.validate_model(c.model)


# ----------------------------------------------------------------------------- stages


def subset(task: tasks_lib.LampTask, per_user: int) -> tasks_lib.LampTask:
  """Each user's first `per_user` queries of a task (inputs are grouped by user)."""
  seen: dict[int, int] = {}
  keep = []
  for n, q in enumerate(task.queries):
    seen[q.user] = seen.get(q.user, 0) + 1
    if seen[q.user] <= per_user:
      keep.append(n)
  return dataclasses.replace(task, inputs=[task.inputs[n] for n in keep],
                             golds=[task.golds[n] for n in keep],
                             queries=[task.queries[n] for n in keep])


def build_memory(c, lamp_tasks) -> memory_lib.EpisodicMemory:
  mem = memory_lib.EpisodicMemory(memory_lib.EMBEDDERS[c.memory.encoder](c.memory),
                                  c.memory.recency_weight, c.memory.recency_half_life)
  for task in lamp_tasks:
    for ex, q in zip(task.inputs, task.queries):
      if (task.name, q.user) not in mem.records:
        mem.add((task.name, q.user), memory_lib.from_lamp(ex, task.name))
  return mem


def targets(t: tasks_lib.Tasks, users, n: int) -> dict[int, list[alignment.Target]]:
  """Each user's latest n history interactions, as rating questions."""
  out = {}
  for u in users:
    out[u] = [alignment.Target(x.id, t.movies[x.item].text,
                               tasks_lib.RATING_PROMPT.format(text=t.movies[x.item].text),
                               str(x.rating)) for x in t.splits[u].history[-n:]]
  return out


def queries_of(task: tasks_lib.LampTask) -> list[agent_lib.Query]:
  return [agent_lib.Query(g['id'], q.user, task.name, ex['input'])
          for ex, g, q in zip(task.inputs, task.golds, task.queries)]


class Study:
  """The LLM, memories, tools and caches every method shares."""

  def __init__(self, c, work: pathlib.Path, t: tasks_lib.Tasks, lamp_tasks):
    self.c, self.work, self.t, self.tasks = c, work, t, lamp_tasks
    self.llm = llm_lib.LocalLLM(c.model, work / 'generations.jsonl', c.llm.batch_size,
                                c.llm.bucket, c.llm.max_prompt_tokens)
    self.memory = build_memory(c, lamp_tasks)
    self.movie_search = actions.movie_search(t.movies, c.memory.k)
    a = c.agent
    self.agent_cfg = agent_core.AgentConfig(
        max_turns=a.max_turns, max_turn_tokens=a.max_turn_tokens,
        max_total_tokens=a.max_total_tokens, stop=actions.STOP, temperature=0.0,
        prompt_bucket=c.llm.bucket)

  def semantic(self) -> dict[int, str]:
    s = self.c.semantic
    mem = semantic_lib.SemanticMemory(s.max_items, s.with_stats, s.refresh_every,
                                      s.max_new_tokens)
    path = self.work / 'semantic.jsonl'
    if path.exists():
      mem.load(path)
    if mem.update(self.llm, {u: self.t.splits[u].history for u in self.t.users}, self.t.movies):
      mem.save(path)
    return {u: mem.summary(u) for u in self.t.users}

  def align(self, initial, users, iterations: int, name: str):
    a = self.c.alignment
    cfg = alignment.AlignConfig(iterations, a.sim_tokens, a.feedback_tokens, a.persona_tokens)
    path = self.work / f'{name}.jsonl'
    _, logs = alignment.align(self.llm, {u: initial[u] for u in users},
                              targets(self.t, users, a.n), cfg, path)
    metrics_core.write_json(self.work / f'{name}_log.json', logs)
    return alignment.load_personas(path) if iterations else {0: dict(initial)}, logs

  def answers(self, method: str, comp, ctx, task: tasks_lib.LampTask, tag: str = ''):
    env = actions.PersonaEnv(self.movie_search, ctx.memory if comp.episodic else None,
                             self.c.memory.k)
    return agent_lib.answer(queries_of(task), comp, ctx, self.llm,
                            self.work / 'answers' / f'{method}{tag}_{task.name}.jsonl',
                            answer_tokens=self.c.llm.answer_tokens,
                            batch_size=self.c.llm.batch_size, agent_cfg=self.agent_cfg, env=env)


def score_rows(c, work, task, gold_path, method: str, rows) -> dict:
  outputs = {r['id']: r['answer'] for r in rows}
  path = tasks_lib.write_outputs(work / 'predictions' / f'{method}_{task.name}.json',
                                 task.name, outputs)
  return {**base.score(c, task, gold_path, path),
          f'tool_calls_{task.name}': sum(r['tool_calls'] for r in rows),
          f'invalid_actions_{task.name}': sum(r['invalid_actions'] for r in rows)}


def curve(study: Study, ctx, by_it, logs) -> list[dict]:
  c = study.c
  users = set(study.t.users[:c.curve.users])
  comp = agent_lib.METHODS[c.curve.method]
  rating = study.tasks[0]
  keep = [n for n, q in enumerate(rating.queries) if q.user in users]
  rating = dataclasses.replace(rating, inputs=[rating.inputs[n] for n in keep],
                               golds=[rating.golds[n] for n in keep],
                               queries=[rating.queries[n] for n in keep])
  gold = tasks_lib.write_task(study.work / 'lamp_curve', rating)['outputs']
  sim = {row['iteration']: row['sim_mae'] for row in logs}
  out = []
  for e in sorted(by_it):
    ctx_e = dataclasses.replace(ctx, personas={**ctx.personas, **by_it[e]})
    rows = study.answers(c.curve.method, comp, ctx_e, rating, tag=f'_E{e}')
    r = score_rows(c, study.work / 'curve', rating, gold, f'E{e}', rows)
    out.append({'iteration': e, 'mae': r['mae'], 'mae_ci': r['mae_ci'], 'rmse': r['rmse'],
                'parse_failures': r['parse_failures'], 'sim_mae': sim.get(e + 1)})
  return out


def baseline_rows(c, work, t: tasks_lib.Tasks, lamp, gold) -> dict:
  """The non-LLM rows (experiment.predict) scored on the LLM rows' queries."""
  sub = tasks_lib.Tasks(t.movies, t.splits, t.users, lamp[0], lamp[1])
  bc = ml_collections.ConfigDict({'methods': tuple(c.baselines), 'mf': c.mf,
                                  'memory': c.memory, 'seed': c.seed, 'eval': c.eval})
  preds, _ = base.predict(bc, sub)
  rows = {}
  for task in lamp:
    for method, outputs in preds[task.name].items():
      got = [{'id': g['id'], 'answer': o, 'tool_calls': 0, 'invalid_actions': 0}
             for g, o in zip(task.golds, outputs)]
      rows.setdefault(method, base.empty_row()).update(
          score_rows(c, work, task, gold[task.name], method, got))
  return rows


@registry.experiment('personaagent')
def run(c, workdir: str) -> dict:
  validate(c)
  start = time.perf_counter()
  work = pathlib.Path(workdir)
  d = c.data
  t = tasks_lib.build_from_config(d, c.seed)
  lamp = [subset(t.rating, d.rating_queries), subset(t.tagging, d.tag_queries)]
  gold = {task.name: tasks_lib.write_task(work / 'lamp_llm', task)['outputs'] for task in lamp}
  study = Study(c, work, t, lamp)
  timings = {}

  def stage(name, fn):
    t0 = time.perf_counter()
    out = fn()
    timings[name] = round(time.perf_counter() - t0, 1)
    print(f'[personaagent] {name}: {timings[name]} s; llm {study.llm.stats}', flush=True)
    return out

  summaries = stage('semantic', study.semantic)
  initial = {u: prompts.initial_persona(summaries[u]) for u in t.users}
  by_it, logs = stage('alignment', lambda: study.align(initial, t.users,
                                                        c.alignment.iterations, 'personas'))
  ctx = agent_lib.Context(by_it[c.alignment.iterations], initial, summaries, study.memory,
                          c.memory.k)
  rows = {}
  for method in c.methods:
    for task in lamp:
      got = stage(f'{method}/{task.name}',
                  lambda: study.answers(method, agent_lib.METHODS[method], ctx, task))
      rows.setdefault(method, base.empty_row()).update(
          score_rows(c, work, task, gold[task.name], method, got))
  if c.baselines:
    rows.update(stage('baselines', lambda: baseline_rows(c, work, t, lamp, gold)))
  curve_rows = []
  if c.curve.users:
    curve_by_it, curve_logs = stage('curve_alignment', lambda: study.align(
        initial, t.users[:c.curve.users], c.curve.iterations, 'personas_curve'))
    curve_rows = stage('curve', lambda: curve(study, ctx, curve_by_it, curve_logs))
  results = {'methods': rows, 'alignment_by_iteration': curve_rows,
             'alignment_sim_mae': [row['sim_mae'] for row in logs],
             'data': {**base.data_stats(t), 'llm_rating_queries': len(lamp[0].inputs),
                      'llm_tag_queries': len(lamp[1].inputs)},
             'llm': study.llm.stats, 'timings': timings, 'wall_s': time.perf_counter() - start}
  metrics_core.write_json(work / 'results.json', results)
  (work / 'results.md').write_text(table(results))
  return results


def _fmt(row: dict, key: str) -> str:
  v, ci = row.get(key), row.get(f'{key}_ci')
  if v is None:
    return '-'
  return f'{v:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]' if ci else f'{v:.3f}'


def _calls(row: dict) -> str:
  n = [row.get(f'tool_calls_{t}') for t in (tasks_lib.LAMP_3, tasks_lib.LAMP_2)]
  return '-' if n[0] is None and n[1] is None else ' / '.join(str(x or 0) for x in n)


def table(results: dict) -> str:
  lines = ['| method | MAE | RMSE | tag acc | tag F1 | parse fail / invalid tags '
           '| tool calls (rating / tag) |',
           '|---|---|---|---|---|---|---|']
  for name, row in results['methods'].items():
    lines.append(f'| {name} | {_fmt(row, "mae")} | {_fmt(row, "rmse")} | '
                 f'{_fmt(row, "tag_accuracy")} | {_fmt(row, "tag_f1")} | '
                 f'{row.get("parse_failures", "-")} / {row.get("invalid_tags", "-")} | '
                 f'{_calls(row)} |')
  if results['alignment_by_iteration']:
    lines += ['', '| E | MAE | sim MAE (train) |', '|---|---|---|']
    for r in results['alignment_by_iteration']:
      sim = '-' if r['sim_mae'] is None else f'{r["sim_mae"]:.3f}'
      lines.append(f'| {r["iteration"]} | {_fmt(r, "mae")} | {sim} |')
  return '\n'.join(lines) + '\n'

