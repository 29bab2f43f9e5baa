"""Advantage estimators over groups of G completions per prompt, chosen by name.

Rewards arrive flat, [N] with N = num_prompts * G, the G completions of one prompt adjacent
(TRL's RepeatSampler order). Every estimator is `fn(rewards, num_generations, cfg) -> [N]`.

- 'grpo': TRL 1.x `GRPOTrainer._generate_and_score_completions`:
    A = r - mean_group(r); unless scale_rewards == 'none', A /= (std + 1e-4), where std is the
    per-group std ('group') or the std of the whole batch ('batch'; the mean stays per group).
    TRL's std is torch's unbiased one (Bessel, ddof=1) and is 0 when G == 1; both the ddof and
    the 1e-4 are config here (`std_ddof`, `eps`). TRL 1.x uses nanmean/nanstd to skip reward
    functions that returned None; we take dense rewards, so NaN handling is the caller's.
- 'dr_grpo': Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training", Sec. 3.1):
    A = r - mean_group(r), no std division (TRL: scale_rewards='none').
- 'rloo': TRL `RLOOTrainer._generate_and_score_completions`: leave-one-out baseline
    A_i = r_i - (sum_group(r) - r_i) / (G - 1); 0 when G == 1; with `normalize`, the
    advantages are then whitened over the batch: (A - mean(A)) / (std(A, ddof=1) + eps)
    (TRL `normalize_advantages`, default False).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxpapers.core.registry import Registry

ADVANTAGES = Registry('advantage estimator')
register = ADVANTAGES.register

SCALE_REWARDS = ('group', 'batch', 'none')


@dataclasses.dataclass(frozen=True)
class AdvantageConfig:
  """Knobs of the estimators; defaults are TRL 1.x's."""
  estimator: str = 'grpo'        # key into ADVANTAGES
  scale_rewards: str = 'group'   # 'group' | 'batch' | 'none' (TRL GRPOConfig.scale_rewards)
  std_ddof: int = 1              # torch.std is unbiased (ddof=1)
  eps: float = 1e-4              # added to the std before dividing (TRL hard-codes 1e-4)
  normalize: bool = False        # rloo only: whiten over the batch (TRL normalize_advantages)

  def __post_init__(self):
    if self.scale_rewards not in SCALE_REWARDS:
      raise ValueError(f'scale_rewards: {self.scale_rewards!r}; valid: {SCALE_REWARDS}')
    if self.std_ddof not in (0, 1):
      raise ValueError(f'std_ddof: {self.std_ddof!r}; valid: 0, 1')


def _grouped(rewards: jax.Array, num_generations: int) -> jax.Array:
  """[N] -> [N / G, G], checking divisibility."""
  if rewards.ndim != 1 or rewards.shape[0] % num_generations:
    raise ValueError(f'rewards must be [N] with N divisible by num_generations='
                     f'{num_generations}; got shape {rewards.shape}')
  return rewards.astype(jnp.float32).reshape(-1, num_generations)


def _std(x: jax.Array, ddof: int, axis=None, keepdims=False) -> jax.Array:
  """Standard deviation that is 0 (not NaN) when there are <= ddof samples, as TRL does."""
  n = x.size if axis is None else x.shape[axis]
  if n <= ddof:
    return jnp.zeros_like(jnp.mean(x, axis=axis, keepdims=keepdims))
  return jnp.std(x, axis=axis, ddof=ddof, keepdims=keepdims)


def group_stats(rewards: jax.Array, num_generations: int, std_ddof: int = 1) -> dict:
  """Logging stats TRL reports: reward mean, mean group std, fraction of zero-std groups.

  Args:
    rewards: [N] rewards, G adjacent per prompt.
  Returns:
    dict of scalars: reward, reward_std, frac_reward_zero_std.
  """
  g = _grouped(rewards, num_generations)
  std = _std(g, std_ddof, axis=1)
  return {'reward': jnp.mean(g), 'reward_std': jnp.mean(std),
          'frac_reward_zero_std': jnp.mean(jnp.isclose(std, 0.0).astype(jnp.float32))}


@register('grpo')
def grpo(rewards: jax.Array, num_generations: int, cfg: AdvantageConfig) -> jax.Array:
  """Group-relative advantages (r - group mean) / (std + eps). rewards [N] -> [N]."""
  g = _grouped(rewards, num_generations)
  centred = g - jnp.mean(g, axis=1, keepdims=True)
  if cfg.scale_rewards == 'group':
    centred = centred / (_std(g, cfg.std_ddof, axis=1, keepdims=True) + cfg.eps)
  elif cfg.scale_rewards == 'batch':
    centred = centred / (_std(g, cfg.std_ddof) + cfg.eps)
  return centred.reshape(-1)


@register('dr_grpo')
def dr_grpo(rewards: jax.Array, num_generations: int, cfg: AdvantageConfig) -> jax.Array:
  """Dr. GRPO: r - group mean, never divided by a std. rewards [N] -> [N]."""
  del cfg
  g = _grouped(rewards, num_generations)
  return (g - jnp.mean(g, axis=1, keepdims=True)).reshape(-1)


@register('rloo')
def rloo(rewards: jax.Array, num_generations: int, cfg: AdvantageConfig) -> jax.Array:
  """REINFORCE leave-one-out: r_i - mean of the other G-1 rewards. rewards [N] -> [N]."""
  g = _grouped(rewards, num_generations)
  if num_generations == 1:
    adv = jnp.zeros_like(g).reshape(-1)
  else:
    baseline = (jnp.sum(g, axis=1, keepdims=True) - g) / (num_generations - 1)
    adv = (g - baseline).reshape(-1)
  if cfg.normalize:
    adv = (adv - jnp.mean(adv)) / (_std(adv, cfg.std_ddof) + cfg.eps)
  return adv


def compute_advantages(rewards: jax.Array, num_generations: int,
                       cfg: AdvantageConfig = AdvantageConfig()) -> jax.Array:
  """Dispatch to the estimator named by `cfg.estimator`. rewards [N] -> advantages [N]."""
  return ADVANTAGES.get(cfg.estimator)(rewards, num_generations, cfg)
