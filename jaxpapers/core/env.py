"""Environments for multi-turn episodes: the one protocol every paper's env implements.

An environment runs a batch of episodes at a time, row i on `tasks[i]`:

  env.reset(tasks, seed)           new episodes (seed: the env's own randomness, per step)
  env.step(rows, turns) -> [obs]   the policy turns of the rows awaiting an answer, batched
  env.score(row, episode) -> Outcome | float   at episode end: reward, named components, info

An observation is an `Observation` (text, done, tool_call, invalid, brief), or any object
with `.text` and `.done`, a `(text, done)` pair, a string (not done) or None (done).
`tool_call` and `invalid` feed the per-step counts (Search-R1's `retrieval.env.Observation`
is read via its `is_search` / `valid` fields). `brief`, when not None, is the text that
replaces the observation in the context once a newer one arrives (history compression, as
WebAgent-R1 keeps only the current page; `AgentConfig.compress_history`).

Faults never crash a run: `call_step` retries a failing batch row by row and turns an
exception, a malformed observation or a call that runs past `timeout_s` into an error for
that row; `call_score` turns the same into reward 0 with `info['score_error'] = 1`. A hung
call is abandoned on its daemon thread (Python cannot kill it) and the run goes on.

Rewards by name: `REWARDS` maps a name to `fn(task, episode) -> Outcome | float`;
`RewardEnv` scores with one of them, so a paper's env only implements `step`.
"""
from __future__ import annotations

import dataclasses
import math
import threading
from typing import Any, Callable, Mapping, Sequence

from absl import logging

from jaxpapers.core import qa_metrics
from jaxpapers.core import rewards
from jaxpapers.core.registry import Registry

ENVS = Registry('environment')          # name -> factory(config) -> Environment
REWARDS = Registry('episode reward')    # name -> fn(task, episode) -> Outcome | float


@dataclasses.dataclass
class Task:
  """One episode's task: what the policy sees and what the checker needs."""
  prompt: Any                          # text, token ids, or chat messages
  answer: Any = None                   # gold answer(s) for the checker
  meta: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Observation:
  text: str = ''          # appended to the context
  done: bool = False      # the episode ends after this turn
  tool_call: bool = False  # the turn called a tool
  invalid: bool = False    # the turn held no well-formed action
  brief: str | None = None  # replaces `text` in the context once a newer observation exists


@dataclasses.dataclass(frozen=True)
class Outcome:
  reward: float
  components: Mapping[str, float] = dataclasses.field(default_factory=dict)
  info: Mapping[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class StepResult:
  text: str
  done: bool
  error: str = ''          # '' unless the env failed on this row
  tool_call: bool = False
  invalid: bool = False
  brief: str | None = None


class Environment:
  """Base class: keeps the batch's tasks; subclasses implement `step` (and `score`)."""

  def __init__(self):
    self.tasks: list[Task] = []
    self.seed = 0

  def reset(self, tasks: Sequence[Task], seed: int = 0) -> None:
    self.tasks, self.seed = list(tasks), seed

  def step(self, rows: Sequence[int], turns: Sequence[str]) -> list:
    raise NotImplementedError

  def score(self, row: int, episode) -> Outcome | float:
    raise NotImplementedError


class RewardEnv(Environment):
  """An environment scored by a registered reward (`REWARDS`): `config.reward`, else
  `default_reward`. Registered envs are built as `factory(config)`."""
  default_reward = 'answer_em'

  def __init__(self, config=None):
    super().__init__()
    self.reward_name = getattr(config, 'reward', None) or self.default_reward
    self.reward_fn = REWARDS.get(self.reward_name)

  def score(self, row: int, episode) -> Outcome | float:
    return self.reward_fn(self.tasks[row], episode)


# ----------------------------------------------------------------------------- fault-tolerant calls


def run_with_timeout(fn: Callable[[], Any], timeout_s: float) -> Any:
  """fn() or TimeoutError after `timeout_s` (<= 0: no limit). The call runs on a daemon
  thread so a hung env cannot hold the run."""
  if timeout_s <= 0:
    return fn()
  box: dict[str, Any] = {}

  def target():
    try:
      box['value'] = fn()
    except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
      box['error'] = e
  thread = threading.Thread(target=target, daemon=True)
  thread.start()
  thread.join(timeout_s)
  if thread.is_alive():
    raise TimeoutError(f'no answer within {timeout_s:g} s')
  if 'error' in box:
    raise box['error']
  return box['value']


def error_text(e: BaseException) -> str:
  return f'{type(e).__name__}: {e}'


def normalise(obs) -> StepResult:
  """Any accepted observation form -> StepResult; raises TypeError when malformed."""
  if obs is None:
    return StepResult('', True)
  if isinstance(obs, str):
    return StepResult(obs, False)
  if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[0], str):
    return StepResult(obs[0], bool(obs[1]))
  if isinstance(getattr(obs, 'text', None), str) and hasattr(obs, 'done'):
    tool = getattr(obs, 'tool_call', getattr(obs, 'is_search', False))
    invalid = getattr(obs, 'invalid', not getattr(obs, 'valid', True))
    brief = getattr(obs, 'brief', None)
    if brief is not None and not isinstance(brief, str):
      raise TypeError(f'malformed observation: brief must be str or None, got {brief!r:.80}')
    return StepResult(obs.text, bool(obs.done), '', bool(tool), bool(invalid), brief)
  raise TypeError(f'malformed observation {obs!r:.80}; expected (text, done), str, None or '
                  'an object with .text and .done')


def as_step_fn(env) -> Callable[[Sequence[int], Sequence[str]], list]:
  """An Environment's `step`, or a plain `fn(rows, turns)` as it is."""
  return env.step if hasattr(env, 'step') else env


def call_step(env, rows: Sequence[int], turns: Sequence[str],
              timeout_s: float = 0.0) -> list[StepResult]:
  """One StepResult per row; one failing row never takes the others down."""
  step = as_step_fn(env)
  try:
    out = list(run_with_timeout(lambda: step(list(rows), list(turns)), timeout_s))
    if len(out) != len(rows):
      raise ValueError(f'env returned {len(out)} observations for {len(rows)} turns')
  except Exception as e:  # noqa: BLE001 - an env bug becomes a message, not a crash
    if len(rows) > 1 and not isinstance(e, TimeoutError):  # find the failing rows
      return [r for row, turn in zip(rows, turns)
              for r in call_step(env, [row], [turn], timeout_s)]
    logging.warning('env failed on rows %s: %s', list(rows), error_text(e))
    return [StepResult('', False, error_text(e)) for _ in rows]
  results = []
  for obs in out:
    try:
      results.append(normalise(obs))
    except TypeError as e:
      results.append(StepResult('', False, error_text(e)))
  return results


def as_outcome(value) -> Outcome:
  """Outcome, a float, or a {'reward', 'components', 'info'} mapping -> Outcome."""
  if isinstance(value, Outcome):
    return value
  if isinstance(value, Mapping):
    return Outcome(float(value['reward']), dict(value.get('components', {})),
                   dict(value.get('info', {})))
  return Outcome(float(value))


def call_score(env, row: int, episode, timeout_s: float = 0.0) -> Outcome:
  """env.score, with any failure (or a non-finite reward) scored 0 and counted."""
  try:
    outcome = as_outcome(run_with_timeout(lambda: env.score(row, episode), timeout_s))
    if not math.isfinite(outcome.reward):
      raise ValueError(f'non-finite reward {outcome.reward}')
    return outcome
  except Exception as e:  # noqa: BLE001
    logging.warning('env score failed on row %d: %s', row, error_text(e))
    return Outcome(0.0, {}, {'score_error': 1.0})


# ----------------------------------------------------------------------------- shared rewards

@REWARDS.register('answer_em')
def answer_em(task: Task, episode) -> Outcome:
  """EM (SQuAD normalisation) of the last <answer> in the policy's turns; format = one
  was given."""
  answer = rewards.last_tag(episode.policy_text())
  em = 0.0 if answer is None else float(qa_metrics.exact_match(answer, task.answer))
  return Outcome(em, {'em': em, 'format': float(answer is not None)})


@REWARDS.register('none')
def no_reward(task: Task, episode) -> Outcome:
  del task, episode
  return Outcome(0.0)


@ENVS.register('noop')
class NoOpEnv(RewardEnv):
  """Answers nothing and ends every episode after the first turn (single-turn RL)."""

  def step(self, rows, turns):
    return [None for _ in rows]
