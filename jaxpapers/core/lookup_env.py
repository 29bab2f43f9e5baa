"""Key-value lookup: a toy tool-use environment whose answer only the tool can give.

Task: "key abc?" -> the policy searches `<search>abc</search>`, the env answers
`<info>417</info>` (the task's value, random per task, so it cannot be memorised), the policy
answers `<answer>417</answer>` and ends with EOS. Reward: exact match of the last answer
(`answer_em`; components em, format). A query other than the key gets `<info>none</info>`;
a turn with neither action gets `<info>invalid</info>` (counted as an invalid action). Character
tokenizer, so a tiny decoder learns it from scratch on a CPU.

Demonstrations for a warm-up: with probability `skip_search` a demonstration answers at
once with a guessed value (wrong), so the warmed-up policy calls the tool only part of the
time and RL has something to improve: the tool-call rate and the success rate.
"""
from __future__ import annotations

import numpy as np

from jaxpapers.core import env as env_lib
from jaxpapers.core import tasks as tasks_lib
from jaxpapers.core.retrieval import env as search_env

CHARS = '0123456789abcdefghijklmnopqrstuvwxyz<>/?: '
LETTERS = 'abcdefghijklmnopqrstuvwxyz'
STOP = ('</search>',)


def tokenizer() -> tasks_lib.CharTokenizer:
  return tasks_lib.CharTokenizer(chars=CHARS)


def make_tasks(n: int, seed: int, key_len: int = 3, value_digits: int = 3) -> list[env_lib.Task]:
  rng = np.random.default_rng(seed)
  keys = [''.join(rng.choice(list(LETTERS), key_len)) for _ in range(n)]
  values = [''.join(rng.choice(list('0123456789'), value_digits)) for _ in range(n)]
  return [env_lib.Task(prompt=f'key {k}?', answer=v, meta={'key': k})
          for k, v in zip(keys, values)]


def observation(value: str) -> str:
  return f'<info>{value}</info>'


@env_lib.ENVS.register('kv_lookup')
class LookupEnv(env_lib.RewardEnv):
  """`<search>key</search>` -> `<info>value</info>`; `<answer>` ends the episode."""

  def step(self, rows, turns):
    out = []
    for row, turn in zip(rows, turns):
      action, content = search_env.parse_action(turn)
      task = self.tasks[row]
      if action == 'search':
        value = task.answer if content == task.meta['key'] else 'none'
        out.append(env_lib.Observation(observation(value), tool_call=True))
      elif action == 'answer':
        out.append(env_lib.Observation('', done=True))
      else:
        out.append(env_lib.Observation(observation('invalid'), invalid=True))
    return out


def demonstration(task: env_lib.Task, tok: tasks_lib.CharTokenizer, rng: np.random.Generator,
                  skip_search: float, seq_len: int) -> dict[str, np.ndarray]:
  """One SFT example: loss on the policy's turns (and EOS), not on the prompt or the env."""
  prompt = [tok.bos_token_id] + tok.encode(task.prompt)
  if rng.random() < skip_search:
    guess = ''.join(rng.choice(list('0123456789'), len(task.answer)))
    segments = [(f'<answer>{guess}</answer>', 1)]
  else:
    segments = [(f'<search>{task.meta["key"]}</search>', 1), (observation(task.answer), 0),
                (f'<answer>{task.answer}</answer>', 1)]
  return tasks_lib.segments_example(tok, prompt, segments, seq_len)


def prompt_set(n: int, seed: int, seq_len: int = 72, skip_search: float = 0.5
               ) -> tasks_lib.PromptSet:
  """Tasks, their prompts (BOS + prompt) and warm-up demonstrations, for the GRPO runner."""
  tok = tokenizer()
  tasks = make_tasks(n, seed)
  rng = np.random.default_rng(seed + 1)
  return tasks_lib.PromptSet(
      [[tok.bos_token_id] + tok.encode(t.prompt) for t in tasks], [t.answer for t in tasks],
      tok, None, [demonstration(t, tok, rng, skip_search, seq_len) for t in tasks], tasks)
