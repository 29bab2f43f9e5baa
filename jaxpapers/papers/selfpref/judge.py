"""The judge harness: answers, then each pair judged in both orders, direct or with a CoT.

A `JudgeFormat` says how one model family is asked (chat models: prompts.py through the chat
template; the synthetic family: arith.py's compact strings). Everything else is shared:
  answer()       greedy (or sampled) answers, batched through core's sampler
  direct_scores  [p(A), p(T), p(B)] of the verdict token after the judge prompt: one forward
                 per batch (core.logprobs.next_token_choice_logprobs), no sampling; the three
                 probabilities are renormalised over the verdicts
  judge_rows     both games per item -> rows in the llm-sp artifact format (metrics.py)
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping, Sequence

import jax
import numpy as np
from flax import nnx

from jaxpapers.core import logprobs as logprobs_lib
from jaxpapers.core import sampler as sampler_lib
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.papers.selfpref import prompts

MODES = ('direct', 'cot')


@dataclasses.dataclass(frozen=True)
class JudgeFormat:
  answer_ids: Callable[[str], list[int]]                    # question -> prompt ids
  judge_ids: Callable[[str, str, str, bool], list[int]]     # (q, answer A, answer B, cot)
  verdict_ids: tuple[int, int, int]                         # token ids of A, T, B
  parse: Callable[[str], str | None]                        # CoT text -> 'A' | 'B' | 'T'
  decode: Callable[[Sequence[int]], str]
  eos_ids: tuple[int, ...]
  pad_id: int
  bucket: int = 128     # prompt lengths padded to multiples of this: few compiled shapes


def single_token_ids(encode: Callable[[str], list[int]], prefix: str,
                     options: Sequence[str]) -> tuple[int, ...]:
  """The token each option adds after `prefix`; raises if one is not a single token there."""
  base = encode(prefix)
  ids = []
  for option in options:
    full = encode(prefix + option)
    if full[:len(base)] != base or len(full) != len(base) + 1:
      raise ValueError(f'verdict {option!r} is not one token after {prefix!r} for this '
                       f'tokenizer ({full[len(base) - 1:]}); the direct judge needs it to be')
    ids.append(full[-1])
  return tuple(ids)


def chat_format(tokenizer, task: str = 'math') -> JudgeFormat:
  """Chat models: prompts.py through the tokenizer's chat template ('math' | 'code')."""
  prompts.answer_prompt('', task)     # an unknown task fails here, not mid-run
  encode = functools.partial(tok_lib.encode, tokenizer)

  def judge_ids(question, answer_a, answer_b, cot):
    text = tok_lib.chat_prompt(tokenizer, prompts.judge_messages(question, answer_a, answer_b,
                                                                 cot))
    return encode(text if cot else text + prompts.DIRECT_PREFIX)

  return JudgeFormat(
      answer_ids=lambda q: encode(tok_lib.chat_prompt(tokenizer, prompts.answer_prompt(q, task))),
      judge_ids=judge_ids,
      verdict_ids=single_token_ids(encode, prompts.DIRECT_PREFIX, prompts.VERDICTS),
      parse=prompts.parse_verdict,
      decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
      eos_ids=tuple(tok_lib.stop_token_ids(tokenizer)), pad_id=tokenizer.pad_token_id)


def generate(model, fmt: JudgeFormat, prompt_ids: Sequence[Sequence[int]], *,
             max_new_tokens: int, batch_size: int, temperature: float = 0.0, seed: int = 0,
             mesh=None) -> list[str]:
  """Completions of `prompt_ids` (greedy unless temperature > 0), in input order."""
  return sampler_lib.generate_batched(
      model, prompt_ids, max_new_tokens=max_new_tokens, batch_size=batch_size,
      decode=fmt.decode, temperature=temperature, seed=seed, eos_ids=fmt.eos_ids,
      pad_id=fmt.pad_id, mesh=mesh, prompt_bucket=fmt.bucket)


def answer(model, fmt: JudgeFormat, questions: Sequence[str], **kwargs) -> list[str]:
  return generate(model, fmt, [fmt.answer_ids(q) for q in questions], **kwargs)


@functools.partial(jax.jit, static_argnums=(0,))
def _choice_logps(graphdef, params, tokens, mask, choice_ids):
  return logprobs_lib.next_token_choice_logprobs(nnx.merge(graphdef, params), tokens, mask,
                                                 choice_ids)


def direct_scores(model, fmt: JudgeFormat, prompt_ids: Sequence[Sequence[int]], *,
                  batch_size: int) -> np.ndarray:
  """[N, 3] verdict probabilities [A, T, B] (renormalised over the three) per prompt."""
  graphdef, params = model if isinstance(model, tuple) else sampler_lib.split(model)
  choice = np.asarray(fmt.verdict_ids, np.int32)
  out = np.zeros((len(prompt_ids), 3), np.float64)
  for idx in sampler_lib.length_sorted_batches([len(p) for p in prompt_ids], batch_size):
    rows = [list(prompt_ids[i]) for i in idx] + [[fmt.pad_id]] * (batch_size - len(idx))
    tokens, mask = sampler_lib.pad_prompts(rows, fmt.pad_id, bucket=fmt.bucket)
    logps = np.asarray(_choice_logps(graphdef, params, tokens, mask, choice), np.float64)
    probs = np.exp(logps - logps.max(axis=1, keepdims=True))
    out[idx] = (probs / probs.sum(axis=1, keepdims=True))[:len(idx)]
  return out


def judge_rows(model, fmt: JudgeFormat, items: Sequence[Mapping], mode: str, *,
               batch_size: int, max_new_tokens: int = 512, temperature: float = 0.0,
               seed: int = 0, mesh=None) -> list[dict]:
  """Both games of every item, as llm-sp rows. Each item: unique_id, problem, self_answer,
  other_answer, self_correct, other_correct (game 1 shows self as A, game 2 as B). The CoT
  judge decodes greedily unless `temperature` > 0."""
  if mode not in MODES:
    raise ValueError(f'judge mode {mode!r} unknown; valid: {list(MODES)}')
  cot = mode == 'cot'
  games = [fmt.judge_ids(it['problem'], it['self_answer'], it['other_answer'], cot)
           for it in items] + [fmt.judge_ids(it['problem'], it['other_answer'],
                                             it['self_answer'], cot) for it in items]
  n = len(items)
  if cot:
    texts = generate(model, fmt, games, max_new_tokens=max_new_tokens, batch_size=batch_size,
                     temperature=temperature, seed=seed, mesh=mesh)
    verdicts = [fmt.parse(t) for t in texts]
    scores = [[float(v == x) for x in prompts.VERDICTS] for v in verdicts]
  else:
    probs = direct_scores(model, fmt, games, batch_size=batch_size)
    scores = probs.tolist()
    texts = [prompts.VERDICTS[int(np.argmax(p))] for p in probs]
  return [{'unique_id': it['unique_id'], 'problem': it['problem'],
           'assistent_1_answer': it['self_answer'], 'assistent_2_answer': it['other_answer'],
           'assistent_1_is_correct': bool(it['self_correct']),
           'assistent_2_is_correct': bool(it['other_correct']),
           'game_1_spb_score': scores[i], 'game_2_spb_score': scores[n + i],
           'game_1_output': texts[i], 'game_2_output': texts[n + i]}
          for i, it in enumerate(items)]
