"""Search environment: Search-R1 formatting, malformed tags, batched steps."""
import pytest

from jaxpapers.core.retrieval import bm25
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import env


def test_information_block_matches_search_r1_format():
  passages = [corpus_lib.Passage('a', 'Paris', 'Capital of France.'),
              corpus_lib.Passage('b', 'Rome', 'Capital of Italy.')]
  assert env.information_block(passages) == (
      '\n\n<information>Doc 1(Title: Paris) Capital of France.\n'
      'Doc 2(Title: Rome) Capital of Italy.</information>\n\n')
  assert env.format_passages(passages, 'instructrag') == (
      'Document 1 (Title: Paris): Capital of France.\n\n'
      'Document 2 (Title: Rome): Capital of Italy.')
  assert env.information_block([]) == '\n\n<information></information>\n\n'
  with pytest.raises(ValueError, match='unknown'):
    env.format_passages(passages, 'nope')


@pytest.mark.parametrize('turn,expected', [
    ('<think>hm</think><search> capital of France </search>', ('search', 'capital of France')),
    ('<answer>Paris</answer>', ('answer', 'Paris')),
    ('<search>first</search> then <answer>x</answer>', ('search', 'first')),
    ('<search>multi\nline</search>', ('search', 'multi\nline')),
    ('<search>unclosed query', (None, '')),
    ('<search></search>', (None, '')),
    ('<search>   </search>', (None, '')),
    ('<search>mismatched</answer>', (None, '')),
    ('</search>reversed<search>', (None, '')),
    ('no tags at all', (None, '')),
    ('', (None, '')),
    (None, (None, '')),
    (42, (None, '')),
])
def test_parse_action_malformed_tags(turn, expected):
  assert env.parse_action(turn) == expected


def test_search_env_step_batches_and_formats(toy_corpus):
  search_env = env.SearchEnv(bm25.BM25Retriever(toy_corpus), top_k=2)
  obs = search_env.step(['<search>capital of France</search>', '<answer>Paris</answer>',
                         'garbage <search>', '<search>zzqx</search>'])
  assert obs[0].is_search and obs[0].valid and not obs[0].done
  assert obs[0].text.startswith('\n\n<information>Doc 1(Title: Paris) Paris is the capital')
  assert obs[0].query == 'capital of France'
  assert obs[1].done and obs[1].text == ''
  assert not obs[2].valid and obs[2].text == env.INVALID_ACTION
  assert obs[3].is_search and obs[3].text == '\n\n<information></information>\n\n'
  assert search_env('<answer>x</answer>').done
  assert search_env.step([]) == []
