"""Hint-δ: how far a hint moves the Generator away from its own unassisted answer.

  δ(q, h, a) = mean_t log π(a_t | q, a_<t) − mean_t log π(a_t | q, h, a_<t)

with a the Generator's unassisted answer to q (sampled at T = 0.7 by the loop, as the
reference's a_hard). Both terms come from one forward over 2N rows, [context | answer] with
the contexts left-padded and the answers right-padded; the means run over the answer's
tokens as sampled, the end-of-turn token included when the answer ended on one (the
reference scores the sampled token list, which holds its stop token).
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxpapers.core import sampler as sampler_lib
from jaxpapers.core.rl import grpo_learner


@functools.partial(jax.jit, static_argnums=(0,))
def _mean_answer_logps(graphdef, params, tokens, kv_mask, answer_mask):
  model = nnx.merge(graphdef, params)
  logps = grpo_learner.completion_logps(model, tokens, kv_mask, answer_mask.shape[1])
  mask = answer_mask.astype(jnp.float32)
  return jnp.sum(logps * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)


def answer_rows(contexts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]],
                pad_id: int, answer_len: int, bucket: int = 0, rows: int = 0,
                multiple: int = 8):
  """[context (left-padded) | answer (right-padded to answer_len)] rows.

  Returns (tokens, kv_mask, answer_mask), numpy, with copies of the first row appended up to
  max(N, rows) rounded up to `multiple` (fixed shapes, fewer compiles; the caller drops them).
  """
  if any(not a for a in answers):
    raise ValueError('every answer needs at least one token')
  if max(len(a) for a in answers) > answer_len:
    raise ValueError(f'an answer is longer than answer_len={answer_len}')
  ctx, ctx_mask = sampler_lib.pad_prompts(list(contexts), pad_id, bucket=bucket)
  ans = np.full((len(answers), answer_len), pad_id, np.int32)
  ans_mask = np.zeros((len(answers), answer_len), np.int32)
  for i, a in enumerate(answers):
    ans[i, :len(a)], ans_mask[i, :len(a)] = a, 1
  tokens, kv_mask = grpo_learner.assemble(ctx, ctx_mask, ans, ans_mask)
  extra = -(-max(len(answers), rows) // multiple) * multiple - len(answers)
  if extra:
    pad = lambda x: np.concatenate([x, np.repeat(x[:1], extra, 0)])  # noqa: E731
    tokens, kv_mask, ans_mask = pad(tokens), pad(kv_mask), pad(ans_mask)
  return tokens, kv_mask, ans_mask


def mean_answer_logps(model, contexts, answers, *, pad_id: int, answer_len: int,
                      bucket: int = 0, rows: int = 0) -> np.ndarray:
  """[N] mean token log-prob of answers[i] after contexts[i]; model = (graphdef, params)."""
  graphdef, params = model
  tokens, kv_mask, ans_mask = answer_rows(contexts, answers, pad_id, answer_len, bucket, rows)
  out = _mean_answer_logps(graphdef, params, tokens, kv_mask, ans_mask)
  return np.asarray(out)[:len(answers)]


def hint_delta(model, question_ctx: Sequence[Sequence[int]], hinted_ctx: Sequence[Sequence[int]],
               answers: Sequence[Sequence[int]], *, pad_id: int, answer_len: int,
               bucket: int = 0, rows: int = 0) -> dict[str, np.ndarray]:
  """δ per (question, hint) of the unassisted `answers`, in one batched forward.

  Args:
    model: (graphdef, params) of the Generator.
    question_ctx: prompt ids of the question alone, per pair.
    hinted_ctx: prompt ids of "question\\n\\nHint: hint", per pair.
    answers: the Generator's unassisted answer ids (as sampled), per pair.
    rows: pad the 2N forward rows up to this many (fixed shapes across calls).
  Returns:
    {'logp_q': [N], 'logp_qh': [N], 'delta': [N]}.
  """
  n = len(answers)
  both = mean_answer_logps(model, list(question_ctx) + list(hinted_ctx), list(answers) * 2,
                           pad_id=pad_id, answer_len=answer_len, bucket=bucket, rows=rows)
  logp_q, logp_qh = both[:n], both[n:]
  return {'logp_q': logp_q, 'logp_qh': logp_qh, 'delta': logp_q - logp_qh}
