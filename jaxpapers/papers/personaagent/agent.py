"""PersonaAgent answering a LaMP query, and its ablations.

The agent's prompt: system = the user's persona (or a generic assistant prompt without
persona); user message = the semantic summary, the episodic top-K records for this query
(dense similarity of the query movie to the user's history items, `memory.py`), the tool
instructions, then the LaMP input (`prompts.agent_message`). With actions the episode runs
through core's multi-turn loop (`core.agent.rollout`, `actions.PersonaEnv`); without, one
greedy answer (`LLMFn`). Both extract the answer with `actions.final_answer`.

Ablations (the paper removes one module each; how, where it is silent, is ours):
  w/o alignment  the initial persona (E = 0) instead of the aligned one;
  w/o persona    the generic system prompt (and so no alignment);
  w/o episodic   no retrieved records and no search_history tool;
  w/o semantic   no summary block in the prompt (the persona, initialised from the summary
                 and aligned, stays: it is the persona component, not the memory);
  w/o actions    one greedy answer, no tools.
Answers are cached per method and task as jsonl rows {id, key, output, policy, answer, ...}
(appended per batch; a row is reused when its prompt key matches, its answer re-extracted
from the policy text so a change of the extraction rule needs no new generation).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Mapping, Sequence

import jax

from jaxpapers.core import agent as agent_core
from jaxpapers.core import env as env_lib
from jaxpapers.papers.personaagent import actions
from jaxpapers.papers.personaagent import llm as llm_lib
from jaxpapers.papers.personaagent import memory as memory_lib
from jaxpapers.papers.personaagent import prompts


@dataclasses.dataclass(frozen=True)
class Components:
  persona: bool = True
  aligned: bool = True
  episodic: bool = True
  semantic: bool = True
  actions: bool = True


METHODS = {
    'personaagent': Components(),
    'wo_alignment': Components(aligned=False),
    'wo_persona': Components(persona=False, aligned=False),
    'wo_episodic': Components(episodic=False),
    'wo_semantic': Components(semantic=False),
    'wo_actions': Components(actions=False),
}


@dataclasses.dataclass(frozen=True)
class Query:
  id: str
  user: int
  task: str          # LaMP task name
  input: str         # the LaMP input


@dataclasses.dataclass(frozen=True)
class Context:
  """What the agent may draw on, per user."""
  personas: Mapping[int, str]            # aligned personas
  initial: Mapping[int, str]             # personas at E = 0
  summaries: Mapping[int, str]           # semantic memory
  memory: memory_lib.EpisodicMemory      # keyed by (task, user)
  k: int                                 # episodic records in the prompt


def chat_for(q: Query, comp: Components, ctx: Context) -> tuple[str, str]:
  """(system, user message) of a query under a method's components."""
  if comp.persona:
    system = (ctx.personas if comp.aligned else ctx.initial)[q.user]
  else:
    system = prompts.GENERIC_SYSTEM
  records = None
  if comp.episodic:
    records = ctx.memory.top_k((q.task, q.user), [memory_lib.query_text(q.input, q.task)],
                               ctx.k)[0]
  summary = ctx.summaries.get(q.user, '') if comp.semantic else None
  return system, prompts.agent_message(q.input, summary, records, comp.actions)


def _load(path: pathlib.Path, task: dict[str, str]) -> dict[str, dict]:
  """Cached rows by id (task: id -> LaMP task name), answers re-extracted."""
  if not path.exists():
    return {}
  rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
  return {r['id']: {**r, 'answer': actions.final_answer(r.get('policy', r['output']),
                                                        task.get(r['id'], ''))} for r in rows}


def _append(path: pathlib.Path, rows: Sequence[dict]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, 'a') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)


def answer(queries: Sequence[Query], comp: Components, ctx: Context, llm: llm_lib.LLMFn,
           cache: pathlib.Path, *, answer_tokens: int, batch_size: int = 8,
           agent_cfg: agent_core.AgentConfig | None = None,
           env: actions.PersonaEnv | None = None) -> list[dict]:
  """One row per query ({id, output, answer, turns, tool_calls, invalid_actions}), cached.

  With `comp.actions`, `llm` must be a `LocalLLM` (the rollout needs its model and
  tokenizer) and `agent_cfg` / `env` are required."""
  chats = [chat_for(q, comp, ctx) for q in queries]
  keys = [llm_lib.prompt_key([s, u], answer_tokens) for s, u in chats]
  done = _load(cache, {q.id: q.task for q in queries})
  todo = [i for i, q in enumerate(queries) if done.get(q.id, {}).get('key') != keys[i]]
  for start in range(0, len(todo), batch_size):
    part = todo[start:start + batch_size]
    if comp.actions:
      rows = _rollout([queries[i] for i in part], [chats[i] for i in part], llm, agent_cfg, env)
    else:
      texts = llm([chats[i] for i in part], answer_tokens)
      rows = [{'output': t, 'policy': t, 'answer': actions.final_answer(t, queries[i].task),
               'turns': 1, 'tool_calls': 0, 'invalid_actions': 0}
              for i, t in zip(part, texts)]
    rows = [{'id': queries[i].id, 'key': keys[i], **r} for i, r in zip(part, rows)]
    _append(cache, rows)
    done.update({r['id']: r for r in rows})
  return [done[q.id] for q in queries]


def _rollout(queries, chats, llm, cfg: agent_core.AgentConfig, env: actions.PersonaEnv
             ) -> list[dict]:
  ids = [llm.encode(s, u) for s, u in chats]
  tasks = [env_lib.Task(prompt=x, meta={'memory_key': (q.task, q.user)})
           for x, q in zip(ids, queries)]
  env.reset(tasks)
  _, episodes = agent_core.rollout(llm.pair, llm.tok, ids, env, cfg, rng=jax.random.key(0))
  return [{'output': ep.text(), 'policy': ep.policy_text(),
           'answer': actions.final_answer(ep.policy_text(), q.task),
           'turns': ep.num_policy_turns, 'tool_calls': ep.tool_calls,
           'invalid_actions': ep.invalid_actions, 'end': ep.end_reason}
          for q, ep in zip(queries, episodes)]
