"""Multi-turn episodes -> GRPO batches: loss masks from turn spans, per-trajectory group
advantages, optional turn-level credit, and the per-step episode statistics.

Sequences are [prompt (left-padded) | completion (policy and env turns, right-padded)], as
`grpo_learner` expects. The loss mask is the policy mask of `agent.collate` (1 exactly on the
sampled tokens, built from each turn's span, never by matching token ids), so observation
tokens condition the policy but never enter the loss.

Credit (`credit`):
  'trajectory': A_i from the episode reward, the same for every policy token (WebAgent-R1's
      M-GRPO, Search-R1's GRPO): the group is the G episodes of one task.
  'discounted': A_i * gamma**(policy turns after the token's turn): later turns, closer to the
      outcome, get more of it.
  'turn_group': step-wise group advantages: turn k of episode i has return
      gamma**(K_i - 1 - k) * R_i, normalised across the group's episodes that reached turn k
      (mean, and std unless scale_rewards == 'none').
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from jaxpapers.core import agent
from jaxpapers.core import env as env_lib
from jaxpapers.core.rl import advantages as adv_lib
from jaxpapers.core.rl import grpo_learner

CREDITS = ('trajectory', 'discounted', 'turn_group')


def policy_turn_index(out: agent.Rollout, episodes: Sequence[agent.Episode]) -> np.ndarray:
  """[N, C] int32: index k of the policy turn each policy token belongs to; -1 elsewhere."""
  seg = np.asarray(out.segment_ids)
  idx = np.full(seg.shape, -1, np.int32)
  for i, ep in enumerate(episodes):
    k = 0
    for s, turn in enumerate(ep.turns):
      if turn['role'] == 'policy':
        idx[i][seg[i] == s] = k
        k += 1
  return idx


def batch_arrays(out: agent.Rollout, episodes: Sequence[agent.Episode],
                 mask_truncated: bool = False) -> dict[str, np.ndarray]:
  """tokens / kv_mask [N, P + C], loss_mask / rollout_logps / turn [N, C]."""
  tokens, kv_mask = grpo_learner.assemble(np.asarray(out.prompt_tokens),
                                          np.asarray(out.prompt_mask), np.asarray(out.tokens),
                                          np.asarray(out.attention_mask))
  loss_mask = np.asarray(out.policy_mask).astype(np.int32)
  if mask_truncated:   # TRL mask_truncated_completions: cut episodes teach nothing
    loss_mask = loss_mask * np.array([[ep.end_reason != 'token_budget'] for ep in episodes],
                                     np.int32)
  return {'tokens': tokens, 'kv_mask': kv_mask, 'loss_mask': loss_mask,
          'rollout_logps': np.asarray(out.logprobs, np.float32),
          'turn': policy_turn_index(out, episodes),
          'num_turns': np.asarray(out.num_turns)}


def _turn_group(rewards, turn, num_turns, g, cfg: adv_lib.AdvantageConfig, gamma):
  adv = np.zeros(turn.shape, np.float32)
  for start in range(0, len(rewards), g):
    rows = np.arange(start, start + g)
    for k in range(int(num_turns[rows].max(initial=0))):
      have = rows[num_turns[rows] > k]
      ret = gamma ** (num_turns[have] - 1 - k) * rewards[have]
      centred = ret - ret.mean()
      if cfg.scale_rewards != 'none' and len(have) > 1:
        centred = centred / (ret.std(ddof=cfg.std_ddof) + cfg.eps)
      for i, a in zip(have, centred):
        adv[i][turn[i] == k] = a
  return adv


def advantages(rewards: np.ndarray, arrays: Mapping[str, np.ndarray], num_generations: int,
               cfg: adv_lib.AdvantageConfig, credit: str = 'trajectory',
               gamma: float = 1.0) -> np.ndarray:
  """[N] (trajectory credit) or [N, C] per-token advantages."""
  if credit not in CREDITS:
    raise ValueError(f'credit: {credit!r} not in {CREDITS}')
  if credit == 'turn_group':
    return _turn_group(np.asarray(rewards, np.float32), arrays['turn'], arrays['num_turns'],
                       num_generations, cfg, gamma)
  adv = grpo_learner.group_advantages(rewards, num_generations, cfg)
  if credit == 'trajectory':
    return adv
  turn, num_turns = arrays['turn'], arrays['num_turns'][:, None]
  after = np.where(turn >= 0, num_turns - 1 - turn, 0)
  return (adv[:, None] * gamma ** after).astype(np.float32)


def episode_stats(episodes: Sequence[agent.Episode],
                  outcomes: Sequence[env_lib.Outcome]) -> dict[str, float]:
  """Per-step means: reward and each component, turns, tool calls, faults, token counts."""
  rewards = np.array([o.reward for o in outcomes], np.float32)
  policy = np.array([sum(ep.mask) for ep in episodes], np.float32)
  total = np.array([len(ep.tokens) for ep in episodes], np.float32)
  stats = {
      'reward': float(rewards.mean()), 'reward_std': float(rewards.std()),
      'turns': float(np.mean([ep.num_policy_turns for ep in episodes])),
      'tool_calls': float(np.mean([ep.tool_calls for ep in episodes])),
      'tool_call_rate': float(np.mean([ep.tool_calls > 0 for ep in episodes])),
      'invalid_actions': float(np.mean([ep.invalid_actions for ep in episodes])),
      'env_errors': float(np.sum([ep.env_errors for ep in episodes])),
      'score_errors': float(np.sum([o.info.get('score_error', 0) for o in outcomes])),
      'truncated': float(np.mean([ep.end_reason == 'token_budget' for ep in episodes])),
      'policy_tokens': float(policy.mean()), 'env_tokens': float((total - policy).mean()),
      'completion_length': float(total.mean()),
  }
  for name in sorted({k for o in outcomes for k in o.components}):
    stats[f'reward/{name}'] = float(np.mean([o.components.get(name, 0.0) for o in outcomes]))
  return stats
