"""Dense retrieval: sharded top-k vs numpy, FAISS, encoder bucketing, persistence, MiniLM."""
import importlib.util

import jax
import numpy as np
import pytest

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core.models import bert
from jaxpapers.core.retrieval import dense

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec(bert.MINILM_PACKAGE) is None,
    reason=f'real all-MiniLM-L6-v2 weights not installed ({bert.MINILM_INSTALL})')
needs_faiss = pytest.mark.skipif(importlib.util.find_spec('faiss') is None,
                                 reason=f'FAISS not installed ({dense.FAISS_INSTALL})')


def _unit(rng, n, d=24):
  x = rng.normal(size=(n, d)).astype(np.float32)
  return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize('n,k', [(1001, 1), (1001, 10), (1001, 300), (5, 5), (37, 20)])
def test_sharded_topk_equals_numpy_topk(mesh8, n, k):
  rng = np.random.default_rng(n + k)
  emb, queries = _unit(rng, n), _unit(rng, 6)
  sharded = dense.shard_corpus(emb, mesh8)
  assert len(sharded.sharding.device_set) == 8
  scores, rows = dense.sharded_topk(sharded, jax.numpy.asarray(queries), k=k, n_valid=n,
                                    mesh=mesh8)
  ref_scores, ref_rows = dense.numpy_topk(emb, queries, k)
  np.testing.assert_array_equal(np.asarray(rows), ref_rows)
  np.testing.assert_allclose(np.asarray(scores), ref_scores, atol=1e-5)


def test_sharded_topk_on_one_device_mesh():
  mesh1 = mesh_lib.make_mesh({'data': 1}, devices=jax.devices()[:1])
  rng = np.random.default_rng(0)
  emb, queries = _unit(rng, 50), _unit(rng, 3)
  _, rows = dense.sharded_topk(dense.shard_corpus(emb, mesh1), jax.numpy.asarray(queries),
                               k=7, n_valid=50, mesh=mesh1)
  np.testing.assert_array_equal(np.asarray(rows), dense.numpy_topk(emb, queries, 7)[1])


@needs_faiss
def test_faiss_flat_equals_numpy_topk():
  rng = np.random.default_rng(1)
  emb, queries = _unit(rng, 200), _unit(rng, 4)
  scores, rows = dense.FaissFlat(emb).topk(queries, 9)
  ref_scores, ref_rows = dense.numpy_topk(emb, queries, 9)
  np.testing.assert_array_equal(rows, ref_rows)
  np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_encoder_batch_order_and_padding_do_not_change_embeddings(tiny_encoder):
  texts = ['short', 'a much longer text ' * 3, 'mid length text here', 'x']
  together = tiny_encoder.encode(texts)
  alone = np.concatenate([tiny_encoder.encode([t]) for t in texts])
  np.testing.assert_allclose(together, alone, atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
  assert tiny_encoder.encode([]).shape == (0, tiny_encoder.dim)


def test_encoder_batches_use_bucketed_shapes(tiny_encoder):
  ids = tiny_encoder.tokenize(['w ' * n for n in range(1, 40)])
  shapes = {tokens.shape for _, tokens, _ in tiny_encoder.batches(ids)}
  assert shapes <= {(r, length) for r in (8, 16) for length in (16, 32)}


def test_dense_retriever_bad_input(toy_corpus, tiny_encoder, mesh8):
  r = dense.DenseRetriever.open_or_build(toy_corpus, tiny_encoder, mesh=mesh8)
  assert r.search(['', None, '  '], 3) == [[], [], []]
  hits = r.search(['capital of France'], 50)
  assert len(hits[0]) == len(toy_corpus)
  assert sorted(p.id for p in hits[0]) == sorted(toy_corpus.ids)
  with pytest.raises(ValueError, match='k must be'):
    r.search(['x'], 0)


def test_dense_persisted_embeddings_reopen_without_encoding(tmp_path, toy_corpus, tiny_encoder,
                                                            mesh8, monkeypatch):
  first = dense.DenseRetriever.open_or_build(toy_corpus, tiny_encoder, tmp_path, mesh8)
  expected = first.rank(['river in Africa', 'capital of Italy'], 4)
  monkeypatch.setattr(tiny_encoder, 'encode', _fail_on_corpus(tiny_encoder.encode))
  again = dense.DenseRetriever.open_or_build(toy_corpus, tiny_encoder, tmp_path, mesh8)
  assert again.reopened and not first.reopened
  assert isinstance(again.embeddings, np.memmap)
  got = again.rank(['river in Africa', 'capital of Italy'], 4)
  np.testing.assert_array_equal(got[0], expected[0])


def _fail_on_corpus(encode):
  def wrapped(texts):
    assert len(texts) <= 2, 'corpus was re-encoded'
    return encode(texts)
  return wrapped


@needs_faiss
def test_dense_faiss_backend_matches_jax_backend(toy_corpus, tiny_encoder, mesh8):
  ours = dense.DenseRetriever.open_or_build(toy_corpus, tiny_encoder, mesh=mesh8)
  flat = dense.DenseRetriever(toy_corpus, tiny_encoder, ours.embeddings, backend='faiss')
  queries = ['musical instrument', 'programming', '']
  np.testing.assert_array_equal(ours.rank(queries, 5)[0], flat.rank(queries, 5)[0])


@needs_minilm
def test_minilm_encoder_matches_sentence_transformers_golden(golden_dir):
  g = dict(np.load(golden_dir / 'bert' / 'minilm' / 'golden.npz'))
  encoder = dense.Encoder.from_pretrained(batch_size=8)
  ours = encoder.encode([str(s) for s in g['sentences']])
  cosine = np.sum(ours * g['embeddings'], axis=1) / np.linalg.norm(g['embeddings'], axis=1)
  assert np.all(cosine > 1 - 1e-4), cosine
  assert encoder.settings['max_seq_len'] == bert.MINILM_MAX_SEQ_LEN
