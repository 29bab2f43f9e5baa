"""DeSA's search environment and rewards, on core's Search-R1 env and episode protocol.

Rollout format (Search-R1): the policy writes `<search>query</search>` and the env appends
`\\n\\n<information>Doc 1(Title: ...) ...</information>\\n\\n` with the top-k passages, or
`<answer>...</answer>` ends the episode; anything else gets Search-R1's invalid-action
message. Observation tokens are outside the loss (core's agent loop masks every env token).

Rewards (`config.reward`), all computed from the episode at its end:
  recall   stage 1: 1 when a normalised gold answer is a substring of the concatenated
           <information> blocks (qa_metrics.retrieval_recall);
  em       stage 2 / Search-R1's outcome reward: exact match of the last <answer> of the
           policy's turns (SQuAD normalisation). Search-R1 parses the decoded prompt+response
           and needs two <answer> matches because its prompt holds an example; we parse the
           response only, which is the same answer without that coupling;
  mixed    (recall + em) / 2 from step 0, the single-stage baseline (DeSA's
           qa_searchandem.py weights; under GRPO's per-group std scaling any positive
           weighting of the sum gives the same advantages).
Every episode reports all of them as components, plus f1 and the search behaviour in info
(definitions as DeSA's qa_searchbehavior.py where it has one): searches, no_search (no query
at all), invalid (a turn with no well-formed action, or a query that is empty, 'and',
punctuation only or under 2 characters), redundant (a query repeated within the episode, or
one that retrieved the same passages as an earlier query; DeSA counts exact repeats only).
"""
from __future__ import annotations

import dataclasses

from jaxpapers.core import env as env_lib
from jaxpapers.core import qa_metrics
from jaxpapers.core import rewards
from jaxpapers.core.retrieval import env as search_env
from jaxpapers.core.retrieval import http_client
from jaxpapers.papers.desa import qa
from jaxpapers.papers.desa import world as world_lib

REWARD_NAMES = ('recall', 'em', 'mixed')


def valid_query(query: str) -> bool:
  """DeSA's is_valid_search_query: not empty, not 'and', not only punctuation, >= 2 chars."""
  q = query.strip()
  return len(q) >= 2 and q.lower() != 'and' and any(c.isalnum() for c in q)


def search_stats(log: list[tuple[str, str]]) -> dict[str, float]:
  """Search behaviour of one episode from its (query, observation text) log."""
  queries, blocks = [q for q, _ in log], [b for _, b in log]
  redundant = sum(q in queries[:i] or b in blocks[:i]
                  for i, (q, b) in enumerate(zip(queries, blocks)))
  return {'searches': float(len(log)), 'no_search': float(not log),
          'redundant': float(redundant),
          'invalid_queries': float(sum(not valid_query(q) for q in queries))}


def score_episode(task: env_lib.Task, episode, reward: str,
                  log: list[tuple[str, str]]) -> env_lib.Outcome:
  answer = rewards.last_tag(episode.policy_text())
  # only what the environment returned: an <information> tag the policy writes itself
  # (DeSA reads prompt + response) would otherwise earn recall
  env_text = ''.join(t['text'] for t in episode.turns if t['role'] != 'policy')
  recall = qa_metrics.retrieval_recall(env_text, task.answer)
  em = qa_metrics.exact_match(answer, task.answer) if answer is not None else 0.0
  f1 = qa_metrics.f1(answer, task.answer) if answer is not None else 0.0
  value = {'recall': recall, 'em': em, 'mixed': 0.5 * (recall + em)}[reward]
  info = search_stats(log)
  info['invalid'] = float(episode.invalid_actions + info['invalid_queries'] > 0)
  return env_lib.Outcome(value, {'recall': recall, 'em': em, 'f1': f1,
                                 'answered': float(answer is not None), **info}, info)


@env_lib.ENVS.register('desa_search')
class DesaSearchEnv(env_lib.Environment):
  """Search-R1 env over BM25 on `config.corpus` ('world': the fact world of
  `config.world`; 'hotpotqa': the shipped HotpotQA paragraphs), or over any Search-R1
  retrieval server when `config.server_url` is set (ours: configs/retrieval_server.py)."""

  def __init__(self, config):
    super().__init__()
    if config.reward not in REWARD_NAMES:
      raise ValueError(f'env.reward: {config.reward!r} is not one of {list(REWARD_NAMES)}')
    self.reward = config.reward
    url, corpus = config.get('server_url', ''), config.get('corpus', 'world')
    if url:
      retriever = http_client.HttpRetriever(url)
    elif corpus == 'world':
      retriever = world_lib.cached(world_lib.world_config(config))[1]
    else:
      retriever = qa.corpus_retriever(corpus)
    self.search = search_env.SearchEnv(retriever, config.get('top_k', 3))
    self.max_obs_chars = int(config.get('max_obs_chars', 0))
    self.logs: list[list[tuple[str, str]]] = []

  def reset(self, tasks, seed: int = 0) -> None:
    super().reset(tasks, seed)
    self.logs = [[] for _ in self.tasks]

  def step(self, rows, turns):
    out = self.search.step(turns)
    if self.max_obs_chars:   # Search-R1 cuts observations at max_obs_length (tokens there)
      out = [dataclasses.replace(o, text=o.text[:self.max_obs_chars]) for o in out]
    for row, obs in zip(rows, out):
      if obs.is_search:
        self.logs[row].append((obs.query, obs.text))
    return out

  def score(self, row: int, episode) -> env_lib.Outcome:
    return score_episode(self.tasks[row], episode, self.reward, self.logs[row])
