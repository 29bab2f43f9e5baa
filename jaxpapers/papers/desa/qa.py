"""Real QA for the search agent: Search-R1's prompt, NQ-open / HotpotQA questions, a corpus.

The prompt is Search-R1's (scripts/data_process/nq_search.py `make_prefix`, identical in
DeSA), sent as the single user turn of the model's chat template; the question is stripped
and gets a '?' when it has none. `NO_SEARCH_TEMPLATE` is the same instruction without the
search engine, for the "model's own knowledge" row of the evaluation.

Benchmarks (`BENCHMARKS`): 'nq' (NQ-open dev, data/nq_open) and 'hotpotqa' (the HotpotQA dev
sample, data/hotpotqa). Questions are split into train / test by a hash of the question, so
the split does not depend on order or on which benchmarks are loaded together.
Corpus (`CORPORA`): 'hotpotqa' = the 2,966 pooled HotpotQA context paragraphs, the only
passages we ship; NQ answers are mostly not in it, which bounds NQ recall (reported).
"""
from __future__ import annotations

import functools
import hashlib

from jaxpapers.core import data as data_lib
from jaxpapers.core import env as env_lib
from jaxpapers.core import paths
from jaxpapers.core import tasks as tasks_lib
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.retrieval import bm25
from jaxpapers.core.retrieval import corpus as corpus_lib

SEARCH_R1_TEMPLATE = (
    'Answer the given question. You must conduct reasoning inside <think> and </think> first '
    'every time you get new information. After reasoning, if you find you lack some '
    'knowledge, you can call a search engine by <search> query </search> and it will return '
    'the top searched results between <information> and </information>. You can search as '
    'many times as your want. If you find no further external knowledge needed, you can '
    'directly provide the answer inside <answer> and </answer>, without detailed '
    'illustrations. For example, <answer> Beijing </answer>. Question: {question}\n')
NO_SEARCH_TEMPLATE = (
    'Answer the given question. You must conduct reasoning inside <think> and </think> '
    'first. Then provide the answer inside <answer> and </answer>, without detailed '
    'illustrations. For example, <answer> Beijing </answer>. Question: {question}\n')
TEMPLATES = {'search_r1': SEARCH_R1_TEMPLATE, 'no_search': NO_SEARCH_TEMPLATE}
HOTPOTQA_FILE = 'hotpotqa/dev_sample300.jsonl.gz'


def normalise_question(question: str) -> str:
  q = question.strip()
  return q if q.endswith('?') else q + '?'


def _nq() -> list[tuple[str, tuple[str, ...]]]:
  rows = data_lib.read_jsonl(paths.data_file('nq_open/NQ-open.dev.jsonl'),
                             required=('question', 'answer'))
  return [(r['question'], tuple(r['answer'])) for r in rows]


def _hotpotqa() -> list[tuple[str, tuple[str, ...]]]:
  _, examples = corpus_lib.hotpotqa(paths.data_file(HOTPOTQA_FILE))
  return [(e.question, e.answers) for e in examples]


BENCHMARKS = {'nq': _nq, 'hotpotqa': _hotpotqa}


@functools.lru_cache(maxsize=2)
def corpus_retriever(name: str) -> bm25.BM25Retriever:
  if name != 'hotpotqa':
    raise ValueError(f'corpus {name!r} unknown; valid: hotpotqa (or set env.server_url)')
  corpus, _ = corpus_lib.hotpotqa(paths.data_file(HOTPOTQA_FILE))
  return bm25.BM25Retriever(corpus)


def in_test_split(question: str, test_fraction: float) -> bool:
  digest = hashlib.sha256(question.strip().lower().encode()).digest()
  return int.from_bytes(digest[:4], 'big') / 2**32 < test_fraction


def questions(benchmark: str, split: str, test_fraction: float = 0.5
              ) -> list[tuple[str, tuple[str, ...]]]:
  if benchmark not in BENCHMARKS:
    raise ValueError(f'benchmark {benchmark!r} unknown; valid: {sorted(BENCHMARKS)}')
  return [(q, a) for q, a in BENCHMARKS[benchmark]()
          if in_test_split(q, test_fraction) == (split == 'test')]


def prompt_set(c, n: int, seed: int, split: str, tok=None) -> tasks_lib.PromptSet:
  """n questions from `c.benchmarks` (round robin), each as a chat prompt (`c.template`)."""
  del seed   # the split and the order are fixed by the data
  tok = tok or tok_lib.load(c.tokenizer or 'qwen')
  pools = [questions(b, split, c.test_fraction) for b in c.benchmarks]
  rows = [pool[i] for i in range(max(map(len, pools))) for pool in pools if i < len(pool)][:n]
  template = TEMPLATES[c.template]
  prompts = [tok_lib.encode(tok, tok_lib.chat_prompt(
      tok, template.format(question=normalise_question(q)))) for q, _ in rows]
  tasks = [env_lib.Task(prompt=q, answer=list(a)) for q, a in rows]
  return tasks_lib.PromptSet(prompts, [list(a) for _, a in rows], tok, None, [], tasks)
