"""Stop strings matched exactly on device: a byte automaton lifted to tokens.

An Aho-Corasick automaton over the stop strings' UTF-8 bytes is lifted to a token table:
after state s, token t leads to `next[s, t]` and completes a stop string somewhere inside
its bytes iff `hit[s, t]`. The sampler carries one state per row and does two gathers per
step, so matching costs nothing on the host and never over-generates.

Why not the alternatives: matching stop strings as token sequences misses a string the model
spells with other tokens ("</search" + ">\\n" merged, where the stop string's own tokenisation
ends in ">"); decoding text on the host between decode chunks syncs every chunk and
over-generates up to a chunk per row. Token bytes come from the tokenizer's pieces
(`token_bytes`: byte-level BPE as Qwen / Llama 3 / SmolLM2, or SentencePiece pieces); the
tables are [states, V] (for "</search>" and "</answer>": 17 states x 152k tokens, 5 MB int16
plus 2.6 MB bool), built once per (tokenizer, strings) with numpy in about a second.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np


def _byte_automaton(patterns: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
  """Aho-Corasick DFA: (delta [S, 256] int32, accept [S] bool) over the patterns' bytes."""
  goto, accept = [{}], [False]
  for pat in patterns:
    s = 0
    for byte in pat:
      if byte not in goto[s]:
        goto[s][byte] = len(goto)
        goto.append({})
        accept.append(False)
      s = goto[s][byte]
    accept[s] = True
  delta, fail, queue = np.zeros((len(goto), 256), np.int32), [0] * len(goto), []
  for byte, s in goto[0].items():
    delta[0, byte] = s
    queue.append(s)
  while queue:                       # breadth first: fail[r] is final before r is visited
    r = queue.pop(0)
    accept[r] = accept[r] or accept[fail[r]]
    delta[r] = delta[fail[r]]
    for byte, s in goto[r].items():
      fail[s] = delta[fail[r], byte]
      delta[r, byte] = s
      queue.append(s)
  return delta, np.array(accept)


@dataclasses.dataclass(eq=False)
class StopMatcher:
  """The byte automaton lifted to tokens: after state s, token t leads to next[s, t] and
  completes a stop string inside its bytes iff hit[s, t]."""
  strings: tuple[str, ...]
  next: np.ndarray   # [S, V] int16 (int32 past 32k states)
  hit: np.ndarray    # [S, V] bool
  _device: Any = None

  @classmethod
  def build(cls, token_bytes: Sequence[bytes], strings: Sequence[str]) -> 'StopMatcher':
    """token_bytes[t] is token t's bytes (see `token_bytes`); strings are UTF-8 encoded."""
    delta, accept = _byte_automaton([s.encode() for s in strings if s])
    lens = np.array([len(b) for b in token_bytes])
    order = np.argsort(-lens, kind='stable')          # active tokens form a prefix at each j
    mat = np.zeros((len(order), int(lens.max(initial=0))), np.uint8)
    for i, t in enumerate(order):
      mat[i, :lens[t]] = np.frombuffer(token_bytes[t], np.uint8)
    cur = np.repeat(np.arange(len(delta), dtype=np.int32)[:, None], len(order), 1)
    hit = np.zeros(cur.shape, bool)
    for j in range(mat.shape[1]):
      m = int(np.sum(lens > j))
      cur[:, :m] = delta[cur[:, :m], mat[None, :m, j]]
      hit[:, :m] |= accept[cur[:, :m]]
    nxt, hits = np.empty_like(cur), np.empty_like(hit)
    nxt[:, order], hits[:, order] = cur, hit
    return cls(tuple(strings), nxt.astype(np.int16 if len(delta) < 2**15 else np.int32), hits)

  def device_tables(self):
    if self._device is None:
      self._device = (jnp.asarray(self.next), jnp.asarray(self.hit))
    return self._device


def _byte_table() -> dict[str, int]:
  """GPT-2 byte-level BPE: printable char -> byte (inverse of `bytes_to_unicode`)."""
  keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
  chars, n = list(keep), 0
  for b in range(256):
    if b not in keep:
      keep.append(b)
      chars.append(256 + n)
      n += 1
  return {chr(c): b for b, c in zip(keep, chars)}


@functools.lru_cache(maxsize=4)
def token_bytes(tokenizer, vocab_size: int) -> tuple[bytes, ...]:
  """Each token id's bytes: byte-level BPE pieces (Qwen, Llama 3) through the GPT-2 byte
  table, SentencePiece pieces with '▁' -> ' ' and <0xNN> byte tokens; b'' past the vocab."""
  table = _byte_table()
  pieces = tokenizer.convert_ids_to_tokens(list(range(min(vocab_size, len(tokenizer)))))
  vocab = tokenizer.get_vocab()
  byte_level = all(c in vocab for c in table)
  special = set(tokenizer.all_special_tokens)
  out = []
  for p in pieces:
    if p is None:
      out.append(b'')
    elif byte_level and p not in special and all(c in table for c in p):
      out.append(bytes(table[c] for c in p))
    elif len(p) == 6 and p.startswith('<0x') and p.endswith('>'):
      out.append(bytes([int(p[3:5], 16)]))
    else:
      out.append(p.replace('\u2581', ' ').encode())
  return tuple(out) + (b'',) * (vocab_size - len(out))


_MATCHERS: dict = {}


def matcher(stop, tokenizer, vocab_size: int) -> StopMatcher | None:
  """None, a StopMatcher, or stop strings (+ tokenizer) -> a cached StopMatcher or None."""
  if stop is None or isinstance(stop, StopMatcher):
    return stop
  strings = tuple([stop] if isinstance(stop, str) else stop)
  if not any(strings):
    return None
  if tokenizer is None:
    raise ValueError('stop: stop strings need `tokenizer=` (or pass a StopMatcher)')
  key = (id(tokenizer), vocab_size, strings)
  if key not in _MATCHERS:
    _MATCHERS[key] = StopMatcher.build(token_bytes(tokenizer, vocab_size), strings)
  return _MATCHERS[key]
