"""Passage corpora: builders (HotpotQA sample, any jsonl), persistence, cached embeddings.

A corpus is an ordered list of `Passage(id, title, text)`; row i of every index (BM25,
dense embeddings, FAISS) is passage i. Builders:
  - `hotpotqa`: the HotpotQA distractor dev sample with every question's ten context
    paragraphs pooled into one corpus (2,966 unique titles from the 300 questions). A
    paragraph is its sentences joined verbatim; its id is its Wikipedia title (unique in
    HotpotQA). Gold passages of a question are its `supporting_facts` titles (two per
    question). Choice: when a title repeats with different text (one case in the sample),
    the first occurrence is kept.
  - `from_jsonl`: one passage per line, fields `id`/`title`/`text` (names configurable);
    FlashRAG/Search-R1 rows with only `contents` ("title\\ntext") are accepted too. A missing
    id becomes the line number. Bad rows (non-UTF-8 bytes, broken JSON, non-string text)
    raise ValueError naming the file and line.

Persistence (`save` / `load`): `passages.jsonl` + `corpus.json` (count and a sha256
fingerprint of ids, titles and texts). `cached_array` stores an index's array as `.npy`
beside a `meta.json`; it is reopened memory-mapped, without recomputing, when the meta
(corpus fingerprint, model, settings) matches, and rebuilt atomically otherwise.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from jaxpapers.core import data as data_lib

PASSAGES_FILE = 'passages.jsonl'
CORPUS_META = 'corpus.json'


@dataclasses.dataclass(frozen=True)
class Passage:
  id: str
  title: str
  text: str

  @property
  def contents(self) -> str:
    """Title and text as one string (BEIR's title + ' ' + text), what the encoders see."""
    return f'{self.title} {self.text}'.strip()


@dataclasses.dataclass(frozen=True)
class QAExample:
  id: str
  question: str
  answers: tuple[str, ...]       # gold answer aliases
  gold_ids: tuple[str, ...]      # ids of the supporting passages


class Corpus:
  """Ordered passages with an id -> row lookup."""

  def __init__(self, passages: Iterable[Passage], source: str = '<memory>'):
    self.passages = list(passages)
    self.source = source
    if not self.passages:
      raise ValueError(f'corpus {source} is empty: a retriever needs at least one passage')
    self._rows: dict[str, int] = {}
    self._fingerprint: str | None = None
    for i, p in enumerate(self.passages):
      if not all(isinstance(f, str) for f in (p.id, p.title, p.text)):
        raise ValueError(f'corpus {source}: passage {i} has non-string fields {p!r}')
      if p.id in self._rows:
        raise ValueError(f'corpus {source}: duplicate passage id {p.id!r} (rows '
                         f'{self._rows[p.id]} and {i})')
      self._rows[p.id] = i

  def __len__(self) -> int:
    return len(self.passages)

  def __getitem__(self, row: int) -> Passage:
    return self.passages[row]

  def row(self, passage_id: str) -> int:
    return self._rows[passage_id]

  def __contains__(self, passage_id: str) -> bool:
    return passage_id in self._rows

  @property
  def ids(self) -> list[str]:
    return [p.id for p in self.passages]

  def contents(self) -> list[str]:
    return [p.contents for p in self.passages]

  def fingerprint(self) -> str:
    """sha256 over ids, titles and texts (computed once; a Corpus is not mutated)."""
    if self._fingerprint is None:
      self._fingerprint = self._hash()
    return self._fingerprint

  def _hash(self) -> str:
    h = hashlib.sha256()
    for p in self.passages:
      for field in (p.id, p.title, p.text):
        h.update(field.encode('utf-8', 'surrogatepass'))
        h.update(b'\x00')
    return h.hexdigest()

  def save(self, directory: str | os.PathLike) -> pathlib.Path:
    """Writes passages.jsonl and corpus.json under `directory` (atomically)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = ''.join(json.dumps(dataclasses.asdict(p), ensure_ascii=False) + '\n'
                    for p in self.passages)
    _atomic_write(directory / PASSAGES_FILE, lines.encode('utf-8', 'surrogatepass'))
    meta = {'count': len(self), 'fingerprint': self.fingerprint(), 'source': self.source}
    _atomic_write(directory / CORPUS_META, json.dumps(meta, indent=2).encode())
    return directory


def load(directory: str | os.PathLike) -> Corpus:
  """Reopens a corpus written by `Corpus.save`; checks it against corpus.json."""
  directory = pathlib.Path(directory)
  meta_path = directory / CORPUS_META
  if not meta_path.exists():
    raise FileNotFoundError(f'{directory}: no {CORPUS_META}; not a saved corpus')
  meta = json.loads(meta_path.read_text())
  rows = data_lib.read_jsonl(directory / PASSAGES_FILE, required=('id', 'title', 'text'))
  corpus = Corpus((Passage(r['id'], r['title'], r['text']) for r in rows),
                  source=meta.get('source', str(directory)))
  if corpus.fingerprint() != meta['fingerprint']:
    raise ValueError(f'{directory}: {PASSAGES_FILE} does not match {CORPUS_META} '
                     f'(fingerprint differs); rebuild the corpus')
  return corpus


# ----------------------------------------------------------------------------- builders


def _row_passage(row: Mapping[str, Any], lineno: int, fields: Sequence[str], where: str):
  id_field, title_field, text_field = fields
  text, title = row.get(text_field), row.get(title_field, '')
  if text is None and isinstance(row.get('contents'), str):   # FlashRAG "title\ntext"
    title, _, text = row['contents'].partition('\n')
  pid = row.get(id_field, str(lineno))
  if not isinstance(text, str) or not isinstance(title, str):
    raise ValueError(f'{where}:{lineno}: fields {title_field!r}/{text_field!r} must be '
                     f'strings, got {type(title).__name__}/{type(text).__name__}')
  if not isinstance(pid, (str, int)):
    raise ValueError(f'{where}:{lineno}: field {id_field!r} must be a string or an int')
  return Passage(str(pid), title.strip(), text.strip())


def from_jsonl(path: str | os.PathLike, id_field: str = 'id', title_field: str = 'title',
               text_field: str = 'text', limit: int | None = None) -> Corpus:
  """A corpus from a jsonl(.gz) file of passages (see the module docstring)."""
  rows = data_lib.read_jsonl(path, limit=limit)
  fields = (id_field, title_field, text_field)
  passages = [_row_passage(r, i, fields, os.fspath(path)) for i, r in enumerate(rows, 1)]
  return Corpus(passages, source=os.fspath(path))


def _hotpot_golds(row: Mapping[str, Any]) -> tuple[str, ...]:
  titles = row.get('supporting_facts', {}).get('title', [])
  return tuple(dict.fromkeys(titles))          # unique, in order


def hotpotqa(path: str | os.PathLike, limit: int | None = None
             ) -> tuple[Corpus, list[QAExample]]:
  """Pooled HotpotQA context paragraphs and the questions with their gold titles."""
  rows = data_lib.read_jsonl(path, required=('question', 'answer', 'context'), limit=limit)
  passages: dict[str, Passage] = {}
  examples = []
  for i, row in enumerate(rows):
    ctx = row['context']
    for title, sentences in zip(ctx['title'], ctx['sentences']):
      if title not in passages:
        passages[title] = Passage(title, title, ''.join(sentences).strip())
    answer = row['answer']
    answers = tuple(answer) if isinstance(answer, list) else (str(answer),)
    examples.append(QAExample(str(row.get('id', i)), row['question'], answers,
                              _hotpot_golds(row)))
  return Corpus(passages.values(), source=os.fspath(path)), examples


# ----------------------------------------------------------------------------- cached arrays


def _atomic_write(path: pathlib.Path, payload: bytes) -> None:
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_bytes(payload)
  os.replace(tmp, path)


def cached_array(directory: str | os.PathLike, meta: Mapping[str, Any],
                 build: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
  """Memory-maps `directory/array.npy` when its meta.json equals `meta`, else builds it.

  Returns:
    (array opened with mmap_mode='r', whether it was reopened rather than built).
  """
  directory = pathlib.Path(directory)
  array_path, meta_path = directory / 'array.npy', directory / 'meta.json'
  meta = json.loads(json.dumps(dict(meta)))     # normalise tuples etc. for the comparison
  if array_path.exists() and meta_path.exists():
    try:
      if json.loads(meta_path.read_text()) == meta:
        return np.load(array_path, mmap_mode='r'), True
    except (OSError, ValueError):
      pass                                       # unreadable: rebuild below
  array = np.ascontiguousarray(build())
  directory.mkdir(parents=True, exist_ok=True)
  tmp = directory / 'array.tmp.npy'
  np.save(tmp, array)
  os.replace(tmp, array_path)
  _atomic_write(meta_path, json.dumps(meta, indent=2, sort_keys=True).encode())
  return np.load(array_path, mmap_mode='r'), False
