"""How the two roles are prompted for one model family.

A `Format` turns the Proposer's instruction and the Generator's (question, hint) turn into
prompt ids; chat models go through the tokenizer's chat template (one user turn, no system
prompt, as the reference), the synthetic world through its character strings (world.py).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.papers.gzero import prompts


@dataclasses.dataclass(frozen=True)
class Format:
  proposer_ids: list[int]                                 # the Proposer's prompt
  solver_ids: Callable[[str, str | None], list[int]]      # (question, hint) -> prompt ids
  decode: Callable[[Sequence[int]], str]
  eos_ids: tuple[int, ...]
  pad_id: int
  bucket: int = 64     # prompt lengths padded to multiples of this: few compiled shapes


def chat_format(tokenizer, instruction: str = prompts.CHALLENGER_INSTRUCTION) -> Format:
  """Chat models: the reference's prompts through the tokenizer's chat template."""
  encode = lambda text: tok_lib.encode(tokenizer, tok_lib.chat_prompt(tokenizer, text))  # noqa: E731
  return Format(
      proposer_ids=encode(instruction),
      solver_ids=lambda question, hint=None: encode(prompts.solver_user(question, hint)),
      decode=lambda ids: tokenizer.decode(list(ids), skip_special_tokens=True),
      eos_ids=tuple(tok_lib.stop_token_ids(tokenizer)), pad_id=tokenizer.pad_token_id)
