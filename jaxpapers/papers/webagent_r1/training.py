"""WebAgent-R1's training data: prompts, their compressed forms and behaviour-cloning steps.

Registered as the GRPO task 'webagent_sites' (`core.runners.grpo.TASKS`): `prompt_set(c, n,
seed, split)` gives the generated sites' tasks of one split (`tasks.split`: held-out templates
and entities), each prompt the reference's first user turn (task + Round 0 page), its brief
form (the page replaced by `prompts.PLACEHOLDER`, what stays in the context once answered)
and, for the train split, behaviour-cloning examples from the scripted expert.

Demonstrations are one SFT example per step, as the policy sees that step in a rollout with
history compression: the prompt (brief after step 0), earlier turns with their pages briefed,
the newest page in full, then the trained step `<think> ... </think>\n<answer> ... </answer>`
(the reference's format; the think text is the expert's "# Element: ..." note). The expert's
steps are replayed through `WebEnv` itself, so every observation is the env's own text.

Formats: 'char' (a character tokenizer over printable ASCII for a tiny policy trained from
scratch: BOS + turn, observations appended as `\\n{text}\\n`; other characters, e.g. on
MiniWoB++ pages, read as '?') and 'chat' (an HF chat model:
the reference's system prompt and turns through the tokenizer's chat template, observations
as user messages; an earlier turn ends with the template's end-of-turn token, as sampled).
"""
from __future__ import annotations

import dataclasses
import random
from typing import Callable

import ml_collections

from jaxpapers.core import agent as agent_lib
from jaxpapers.core import tasks as core_tasks
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import env as env_lib
from jaxpapers.papers.webagent_r1 import expert
from jaxpapers.papers.webagent_r1 import prompts
from jaxpapers.papers.webagent_r1 import tasks as tasks_lib

CHARS = ''.join(chr(i) for i in range(32, 127)) + '\n'   # the generated sites are ASCII
CHAR_TEMPLATE = '\n{text}\n'
FORMATS = ('char', 'chat')
SFT_BUCKET = 256   # demonstration lengths round up to multiples of this


@dataclasses.dataclass(frozen=True)
class Format:
  tokenizer: object
  prompt_ids: Callable[[str], list[int]]   # first user turn -> prompt token ids
  env_template: str                        # AgentConfig.env_template for observations
  turn_end: str = ''                       # what closes a policy turn before the next
                                           # observation (chat: the end-of-turn token)


def make_format(c, tok=None) -> Format:
  """c.format 'char' | 'chat' (c.tokenizer: an HF name or dir for 'chat', unless a loaded
  `tok` is given, e.g. a GGUF checkpoint's own)."""
  if c.format == 'char':
    tok = core_tasks.CharTokenizer(chars=CHARS, unknown='?')   # MiniWoB++ pages: unicode
    return Format(tok, lambda text: [tok.bos_token_id] + tok.encode(text + '\n'), CHAR_TEMPLATE)
  if c.format == 'chat':
    tok = tok if tok is not None else tok_lib.load(c.tokenizer)
    return Format(tok, lambda text: tok_lib.encode(
        tok, tok_lib.chat_prompt(tok, text, system=prompts.SYSTEM_PROMPT)), 'chat:user',
                  tok_lib.end_of_turn(tok))
  raise ValueError(f'task.format: {c.format!r} is not one of {list(FORMATS)}')


def env_config(c) -> dict:
  """The WebEnv fields a task config shares with `config.env`."""
  return dict(backend='sim', world_seed=c.world_seed, items_per_page=c.items_per_page,
              max_steps=c.max_steps)


def split_tasks(c, split: str) -> list[dict]:
  train, test = tasks_lib.split(tasks_lib.generate(c.world_seed, c.task_seed))
  return train if split == 'train' else test


def expert_steps(env: env_lib.WebEnv, task: dict) -> list[tuple[str, object]]:
  """(policy turn, env observation) per expert step, replayed through `env` (row 0)."""
  with backend_lib.make('sim', env.app, '') as b:
    b.goto(tasks_lib.resolve_url(task['start_url'], b.base_url))
    steps = expert.solve(task, b)
  env.reset([env.make_task(task)])
  out = []
  for think, action in steps:
    turn = expert.response(think, action)
    out.append((turn, env.step([0], [turn])[0]))
  return out


def demonstrations(env: env_lib.WebEnv, task: dict, fmt: Format, seq_len: int) -> list[dict]:
  """One SFT example per expert step, in the compressed context that step is taken in,
  padded to a multiple of SFT_BUCKET (at most `seq_len`): the warm-up batches by length."""
  full, brief = fmt.prompt_ids(env.prompt(task)), fmt.prompt_ids(env.brief_prompt(task))
  steps = expert_steps(env, task)
  shown = lambda text: agent_lib.observation_text(fmt.tokenizer, fmt.env_template, text)  # noqa: E731
  examples = []
  for k, (turn, _) in enumerate(steps):
    segments = []
    for j, (prev_turn, obs) in enumerate(steps[:k]):
      page = obs.text if j == k - 1 else (obs.brief if obs.brief is not None else obs.text)
      segments += [(prev_turn + fmt.turn_end, 0), (shown(page), 0)]
    prompt, segments = brief if k else full, segments + [(turn, 1)]
    need = len(prompt) + sum(len(fmt.tokenizer.encode(t)) for t, _ in segments) + 1
    examples.append(core_tasks.segments_example(
        fmt.tokenizer, prompt, segments, min(seq_len, -(-need // SFT_BUCKET) * SFT_BUCKET)))
  return examples


def prompt_set(c, n: int, seed: int, split: str, tok=None) -> core_tasks.PromptSet:
  """`n` tasks of `split` (all when n <= 0 or more than there are), seeded order; `tok` as
  in `make_format`."""
  fmt = make_format(c, tok)
  env = env_lib.WebEnv(ml_collections.ConfigDict(env_config(c)))
  pool = split_tasks(c, split)
  random.Random(seed).shuffle(pool)
  chosen = pool[:n] if 0 < n < len(pool) else pool
  tasks = [env.make_task(d) for d in chosen]
  want_demos = split == 'train' and c.get('demonstrations', True)   # off: RL-only stages
  demos = ([ex for d in chosen for ex in demonstrations(env, d, fmt, c.sft_seq_len)]
           if want_demos else [])
  env.close()
  return task_prompts(fmt, tasks, [d['intent'] for d in chosen], demos)


def task_prompts(fmt: Format, tasks: list, answers: list, sft=()) -> core_tasks.PromptSet:
  """Env tasks (each with its `meta['brief_prompt']`) as a PromptSet in `fmt`."""
  return core_tasks.PromptSet(
      prompt_ids=[fmt.prompt_ids(t.prompt) for t in tasks], answers=list(answers),
      tokenizer=fmt.tokenizer, reward=None, sft=list(sft), tasks=tasks,
      brief_prompt_ids=[fmt.prompt_ids(t.meta['brief_prompt']) for t in tasks])


def check_env(config) -> None:
  """The rollout and env settings a run depends on, with what is wrong named."""
  if config.env.name != 'webagent':
    raise ValueError(f"config.env.name: {config.env.name!r}; WebAgent-R1 runs 'webagent'")
  if not config.rollout.compress_history or config.rollout.kv_reuse:
    raise ValueError('config.rollout: WebAgent-R1 compresses history (compress_history=True, '
                     'kv_reuse=False)')
  template = make_format(config.task).env_template
  if config.rollout.env_template != template:
    raise ValueError(f'config.rollout.env_template={config.rollout.env_template!r}: the '
                     f'{config.task.format!r} format appends observations as {template!r}')
  if config.rollout.max_turns < config.env.max_steps:
    raise ValueError(f'config.rollout.max_turns={config.rollout.max_turns} < '
                     f'env.max_steps={config.env.max_steps}: episodes would stop early')


def check_turn_budget(config, num_tasks: int = 100) -> None:
  """The expert's steps (of the first `num_tasks` train tasks) fit one policy turn: a
  demonstration longer than `rollout.max_turn_tokens` teaches answers a rollout cuts off."""
  fmt = make_format(config.task)
  env = env_lib.WebEnv(ml_collections.ConfigDict(env_config(config.task)))
  longest = max(len(tok_lib.encode(fmt.tokenizer, turn) if config.task.format == 'chat'
                    else fmt.tokenizer.encode(turn))
                for d in split_tasks(config.task, 'train')[:num_tasks]
                for turn, _ in expert_steps(env, d))
  env.close()
  if longest > config.rollout.max_turn_tokens:
    raise ValueError(f'config.rollout.max_turn_tokens={config.rollout.max_turn_tokens}: the '
                     f"expert's steps take up to {longest} tokens; rollouts would cut them")
