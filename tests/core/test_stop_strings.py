"""Stop-string automaton: equals substring search on decoded bytes, across token boundaries;
token bytes of the real Qwen tokenizer round-trip; a stop string inside a merged token."""
import numpy as np

from jaxpapers.core import stop_strings
from jaxpapers.core import tokenizer as tok_lib


def _first_hit(matcher, seq):
  state = 0
  for i, t in enumerate(seq):
    if matcher.hit[state, t]:
      return i
    state = matcher.next[state, t]
  return None


def _first_hit_reference(token_bytes, seq, strings):
  text = b''
  for i, t in enumerate(seq):
    text += token_bytes[t]
    if any(s.encode() in text for s in strings):
      return i
  return None


def test_stop_matcher_matches_substring_search_across_token_boundaries():
  rng = np.random.default_rng(0)
  pieces = (b'a', b'b', b'ab', b'ba', b'c', b'bab', b'')
  strings = ['abab', 'bac', 'cc']
  matcher = stop_strings.StopMatcher.build(pieces, strings)
  for _ in range(300):
    seq = rng.integers(0, len(pieces), 12).tolist()
    assert _first_hit(matcher, seq) == _first_hit_reference(pieces, seq, strings), seq


def test_token_bytes_qwen_tokenizer_roundtrip_and_merged_stop():
  tok = tok_lib.load('qwen')
  table = stop_strings.token_bytes(tok, 151936)
  text = 'Zürich 東京 <search>q</search>\n\n  x\t'
  ids = tok_lib.encode(tok, text)
  assert b''.join(table[i] for i in ids) == text.encode()
  ids = tok_lib.encode(tok, 'find it</search>\nmore text')
  matcher = stop_strings.matcher(['</search>'], tok, 151936)
  i = _first_hit(matcher, ids)
  assert tok.decode([ids[i]]) == '>\n'       # token-sequence matching of '</','search','>'
  assert tok.decode(ids[:i + 1]).startswith('find it</search>')   # would miss this
  assert '</search>' not in tok.decode(ids[:i])
