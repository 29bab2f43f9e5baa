"""The one local LLM that plays PersonaAgent's agent, feedback ("gradient") and update LLM.

An `LLMFn` is any `fn(chats, max_new_tokens) -> texts`, a chat being (system, user): the
semantic memory, the alignment loop and the single-shot agent only need that, so tests pass
a recording fake. `LocalLLM` is the real one: the model and tokenizer load exactly as core's
`generate` runner loads them (`runners.generate.load_model` / `tokenizer_for`: a named GGUF
checkpoint such as `qwen2.5-coder-0.5b-instruct`, an HF dir, or a random preset), lazily,
so a rerun whose every answer is cached never loads it.

Generation is greedy, batched and length-sorted (`sampler.generate_batched`). Every answer
is cached in `<workdir>/generations.jsonl`, keyed by a hash of the prompt ids and the token
budget and appended after each batch, so any stage of a killed run resumes where it stopped
and identical prompts (the same persona asked the same question by two stages) cost once.
Prompts longer than `max_prompt_tokens` lose the start of their user message (the persona
and the question are kept).
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import time
from typing import Callable, Sequence

from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.runners import generate as generate_runner

Chat = tuple[str, str]                          # (system prompt, user message)
LLMFn = Callable[[Sequence[Chat], int], list[str]]


def prompt_key(ids: Sequence[int], max_new_tokens: int) -> str:
  return hashlib.sha1(json.dumps([list(ids), max_new_tokens]).encode()).hexdigest()


class LocalLLM:
  """Greedy chat completions from a local checkpoint, cached per prompt (see module doc)."""

  def __init__(self, model_cfg, cache_path: str | pathlib.Path, batch_size: int = 8,
               bucket: int = 64, max_prompt_tokens: int = 1024, mesh=None):
    self.model_cfg, self.mesh = model_cfg, mesh
    self.batch_size, self.bucket, self.max_prompt_tokens = batch_size, bucket, max_prompt_tokens
    self.tok = generate_runner.tokenizer_for(model_cfg)
    self.cache_path = pathlib.Path(cache_path)
    self.cache: dict[str, str] = {}
    if self.cache_path.exists():
      for line in self.cache_path.read_text().splitlines():
        if line.strip():
          row = json.loads(line)
          self.cache[row['key']] = row['output']
    self._pair = None
    self.stats = {'generated': 0, 'cached': 0, 'prompt_tokens': 0, 'generate_s': 0.0,
                  'load_s': 0.0}

  @property
  def pair(self):
    """(graphdef, params), loaded on first use."""
    if self._pair is None:
      t0 = time.perf_counter()
      self._pair = generate_runner.load_model(self.model_cfg, self.mesh)
      self.stats['load_s'] = time.perf_counter() - t0
    return self._pair

  def encode(self, system: str, user: str) -> list[int]:
    """Chat-template ids; an over-long user message is cut from its start."""
    ids = tok_lib.encode(self.tok, tok_lib.chat_prompt(self.tok, user, system=system or None))
    excess = len(ids) - self.max_prompt_tokens
    if excess > 0:
      words = tok_lib.encode(self.tok, user)
      user = self.tok.decode(words[min(len(words), excess + 8):])
      ids = tok_lib.encode(self.tok, tok_lib.chat_prompt(self.tok, user, system=system or None))
    return ids

  def decode(self, ids: Sequence[int]) -> str:
    return self.tok.decode(list(ids), skip_special_tokens=True)

  def __call__(self, chats: Sequence[Chat], max_new_tokens: int) -> list[str]:
    ids = [self.encode(s, u) for s, u in chats]
    keys = [prompt_key(x, max_new_tokens) for x in ids]
    todo = sorted({k: i for i, k in enumerate(keys) if k not in self.cache}.values())
    self.stats['cached'] += len(keys) - len(todo)
    for start in range(0, len(todo), self.batch_size * 4):   # append to the cache as we go
      part = todo[start:start + self.batch_size * 4]
      t0 = time.perf_counter()
      texts = sampler.generate_batched(
          self.pair, [ids[i] for i in part], max_new_tokens=max_new_tokens,
          batch_size=self.batch_size, decode=self.decode,
          eos_ids=tok_lib.stop_token_ids(self.tok), pad_id=self.tok.pad_token_id,
          mesh=self.mesh, prompt_bucket=self.bucket)
      self.stats['generate_s'] += time.perf_counter() - t0
      self.stats['generated'] += len(part)
      self.stats['prompt_tokens'] += sum(len(ids[i]) for i in part)
      self.cache_path.parent.mkdir(parents=True, exist_ok=True)
      with open(self.cache_path, 'a') as f:
        for i, text in zip(part, texts):
          self.cache[keys[i]] = text
          f.write(json.dumps({'key': keys[i], 'output': text}) + '\n')
    return [self.cache[k] for k in keys]
