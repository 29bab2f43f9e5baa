"""Questions, their train/test split and the noisy documents each reader sees.

Datasets (`DATASETS`): 'nq' (NQ-open dev, data/nq_open: question + answer aliases) and
'hotpotqa' (the HotpotQA distractor dev sample, data/hotpotqa: one answer and ten context
paragraphs per question). The split is by a hash of the normalised question (the same
question never lands on both sides, whatever else is loaded); the first `num_train` /
`num_test` questions of each side in file order are used.

Documents (`config.docs`), as reference rows `ctxs = [{id, title, text, score}]`, best first:
  'bm25' | 'dense' | 'hybrid'  top-n_docs from our retriever over the corpus (the 2,966
      pooled HotpotQA paragraphs: the only passages we ship; NQ answers are rarely in them,
      which the reported answer recall shows);
  'distractors'  HotpotQA's own ten paragraphs (two gold + eight distractors), ranked by the
      BM25 scores of the pooled index; a paragraph BM25 does not return scores 0.
Scores descend, so `prompts.build_contexts` reverses them (most relevant last), as the
reference does for its retrievers' output. Rows are written to
`workdir/docs/<dataset>-<docs>-<split>.jsonl` and reused.
"""
from __future__ import annotations

import hashlib
import pathlib
from typing import Any, Sequence

import numpy as np

from jaxpapers.core import data as data_lib
from jaxpapers.core import paths
from jaxpapers.core import qa_metrics
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import retriever as retriever_lib

NQ_FILE = 'nq_open/NQ-open.dev.jsonl'
HOTPOTQA_FILE = 'hotpotqa/dev_sample300.jsonl.gz'
DOC_SOURCES = ('bm25', 'dense', 'hybrid', 'distractors')


def _nq() -> list[dict]:
  rows = data_lib.read_jsonl(paths.data_file(NQ_FILE), required=('question', 'answer'))
  return [{'id': f'nq-{i}', 'question': r['question'], 'answers': list(r['answer'])}
          for i, r in enumerate(rows)]


def _hotpotqa() -> list[dict]:
  rows = data_lib.read_jsonl(paths.data_file(HOTPOTQA_FILE), required=('question', 'answer'))
  return [{'id': r['id'], 'question': r['question'], 'answers': [r['answer']],
           'context': [[t, ''.join(s).strip()] for t, s in zip(r['context']['title'],
                                                               r['context']['sentences'])]}
          for r in rows]


DATASETS = {'nq': _nq, 'hotpotqa': _hotpotqa}


def hotpotqa_corpus() -> corpus_lib.Corpus:
  return corpus_lib.hotpotqa(paths.data_file(HOTPOTQA_FILE))[0]


def is_test(question: str, test_fraction: float) -> bool:
  key = ' '.join(question.lower().split()).encode()
  return int.from_bytes(hashlib.sha256(key).digest()[:4], 'big') / 2**32 < test_fraction


def questions(dataset: str, split: str, n: int, test_fraction: float) -> list[dict]:
  """The first n questions of the split (n <= 0: all)."""
  if dataset not in DATASETS:
    raise ValueError(f'dataset {dataset!r} unknown; valid: {sorted(DATASETS)}')
  rows = [r for r in DATASETS[dataset]() if is_test(r['question'], test_fraction) ==
          (split == 'test')]
  return rows[:n] if n > 0 else rows


def _ctx(p: corpus_lib.Passage, score: float, max_words: int) -> dict:
  text = ' '.join(p.text.split()[:max_words]) if max_words else p.text
  return {'id': p.id, 'title': p.title, 'text': text, 'score': float(score)}


def retrieved_ctxs(retriever, rows: Sequence[dict], k: int, max_words: int = 0,
                   batch: int = 64) -> list[list[dict]]:
  """Top-k passages of each question from the retriever, best first, with their scores."""
  out = []
  for i in range(0, len(rows), batch):
    ranked, scores = retriever.rank([r['question'] for r in rows[i:i + batch]], k)
    out += [[_ctx(retriever.corpus[int(j)], s, max_words) for j, s in zip(row, score) if j >= 0]
            for row, score in zip(ranked, scores)]
  return out


def distractor_ctxs(retriever, rows: Sequence[dict], k: int, max_words: int = 0
                    ) -> list[list[dict]]:
  """Each HotpotQA question's own paragraphs, ranked by the retriever's scores (0 if unranked)."""
  corpus = retriever.corpus
  out = []
  for row in rows:
    ranked, scores = retriever.rank([row['question']], len(corpus))
    by_id = {corpus[int(j)].id: float(s) for j, s in zip(ranked[0], scores[0]) if j >= 0}
    own = [corpus_lib.Passage(t, t, text) for t, text in row['context']]
    own.sort(key=lambda p: -by_id.get(p.id, 0.0))       # stable: ties keep the file order
    out.append([_ctx(p, by_id.get(p.id, 0.0), max_words) for p in own[:k]])
  return out


def build_retriever(config, mesh=None, directory: str | pathlib.Path | None = None):
  method = 'bm25' if config.data.docs == 'distractors' else config.data.docs
  return retriever_lib.build(method, config.retriever, hotpotqa_corpus(), directory, mesh)


def prepare(config, dataset: str, split: str, workdir: pathlib.Path, get_retriever) -> list[dict]:
  """Rows {id, question, answers, ctxs} of one split, read from its file when present."""
  d = config.data
  path = workdir / 'docs' / f'{dataset}-{d.docs}-{split}.jsonl'
  if path.exists():
    return data_lib.read_jsonl(path)
  n = d.num_test if split == 'test' else d.num_train
  rows = questions(dataset, split, n, d.test_fraction)
  if d.docs == 'distractors':
    if dataset != 'hotpotqa':
      raise ValueError(f"config.data.docs: 'distractors' exist for hotpotqa only, not "
                       f'{dataset!r}')
    ctxs = distractor_ctxs(get_retriever(), rows, d.n_docs, d.max_doc_words)
  else:
    ctxs = retrieved_ctxs(get_retriever(), rows, d.n_docs, d.max_doc_words)
  out = [{'id': r['id'], 'question': r['question'], 'answers': r['answers'], 'ctxs': c}
         for r, c in zip(rows, ctxs)]
  data_lib.write_jsonl(path, out)
  return out


def answer_recall(rows: Sequence[dict], k: int) -> float:
  """Answer recall@k: a gold answer inside the title or text of one of the top-k documents."""
  if not rows:
    return 0.0
  return float(np.mean([qa_metrics.answer_in_texts(
      [f"{c['title']} {c['text']}" for c in r['ctxs'][:k]], r['answers']) for r in rows]))


def doc_summary(rows: Sequence[dict], k: int = 5) -> dict[str, Any]:
  return {f'doc_recall_at_{k}': answer_recall(rows, k), 'n': len(rows)}
