"""Fixtures for the retrieval tests: a toy corpus and a tiny random BERT encoder.

The tiny encoder uses a word-hash tokenizer, so dense tests run without the MiniLM package;
tests of the real weights skip with the install line when missing.
"""
import zlib

import pytest

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import bert
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import dense

TOY = [
    ('paris', 'Paris', 'Paris is the capital and largest city of France.'),
    ('berlin', 'Berlin', 'Berlin is the capital of Germany, on the river Spree.'),
    ('jax', 'JAX', 'JAX compiles numerical Python programs with XLA for accelerators.'),
    ('guitar', 'Guitar', 'A guitar is a fretted musical instrument with six strings.'),
    ('tulsa', 'Tulsa', 'Tulsa is a city in Oklahoma on the Arkansas River.'),
    ('everest', 'Mount Everest', 'Everest is the highest mountain above sea level.'),
    ('python', 'Python', 'Python is a programming language created by Guido van Rossum.'),
    ('nile', 'Nile', 'The Nile is a major river in northeastern Africa.'),
    ('violin', 'Violin', 'The violin is a bowed string instrument.'),
    ('rome', 'Rome', 'Rome is the capital city of Italy.'),
]


class WordHashTokenizer:
  """[CLS] + crc32(word) buckets + [SEP], HF-call compatible (input_ids only)."""
  pad_token_id = 0

  def __init__(self, vocab_size: int):
    self.vocab_size = vocab_size

  def __call__(self, texts, truncation=True, max_length=64, add_special_tokens=True):
    del truncation, add_special_tokens
    ids = []
    for t in texts:
      words = [3 + zlib.crc32(w.lower().encode()) % (self.vocab_size - 3) for w in t.split()]
      ids.append(([1] + words)[:max_length - 1] + [2])
    return {'input_ids': ids}


@pytest.fixture()
def toy_corpus():
  return corpus_lib.Corpus(corpus_lib.Passage(*row) for row in TOY)


@pytest.fixture(scope='session')
def mesh8():
  return mesh_lib.make_mesh({'data': -1})


@pytest.fixture(scope='session')
def tiny_encoder(mesh8):
  cfg = bert.preset('bert-tiny', vocab_size=512, add_pooling_layer=False)
  return dense.Encoder(bert.init(cfg, seed=0), WordHashTokenizer(512), mesh=mesh8,
                       batch_size=16, max_seq_len=32, buckets=(16, 32), name='tiny')
