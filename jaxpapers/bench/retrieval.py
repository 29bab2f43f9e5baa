"""Retrieval benchmark: our jitted MiniLM encoder vs sentence-transformers, top-k vs FAISS.

  python -m jaxpapers.bench.retrieval                       # full run (see below)
  python -m jaxpapers.bench.retrieval --passages=500 --corpus_rows=20000   # quicker

Encoding: the same passages (the pooled HotpotQA sample corpus, 2,966 passages; --passages
caps it) are encoded in the same process by
  ours  `retrieval.dense.Encoder` (all-MiniLM-L6-v2 in JAX, length-bucketed, jitted), and
  st    sentence-transformers `SentenceTransformer.encode` (torch CPU, from the [parity]
        extra), same batch size, normalize_embeddings=True.
Ours is timed twice: cold (includes one XLA compile per length bucket) and warm (the
steady state an index build or a long rollout sees); st gets one untimed warm-up batch.
Both report passages/s; `ratio` = ours warm / st. The min cosine between the two
embeddings of each passage is printed as a parity check.

Top-k: exact inner-product top-k of Q random unit queries over --corpus_rows random unit
vectors (dim 384), median latency of --repeats calls, for `dense.sharded_topk` on all local
devices (host->device transfer of the queries and the fetch of the results included) and
FAISS IndexFlatIP.search (faiss-cpu). Results must agree exactly.
Sides whose packages are missing (torch/sentence-transformers, faiss) are skipped with the
install line. Numbers depend on the machine's load; rerun the baseline in the same run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

import jax
import numpy as np

from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import paths
from jaxpapers.core.models import bert
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import dense

ST_INSTALL = 'pip install torch sentence-transformers  (the [parity] extra)'


def _timed(fn, *args):
  start = time.perf_counter()
  out = fn(*args)
  return out, time.perf_counter() - start


def bench_encode(texts: list[str], batch_size: int) -> dict:
  """passages/s of ours (cold, warm) and of sentence-transformers on `texts`."""
  out = {'passages': len(texts), 'batch_size': batch_size}
  encoder = dense.Encoder.from_pretrained(batch_size=batch_size)
  ours, out['ours_cold_s'] = _timed(encoder.encode, texts)
  ours, out['ours_warm_s'] = _timed(encoder.encode, texts)
  out['ours_pps'] = len(texts) / out['ours_warm_s']
  out['ours_cold_pps'] = len(texts) / out['ours_cold_s']
  if importlib.util.find_spec('sentence_transformers') is None:
    print(f'skip sentence-transformers side: not installed ({ST_INSTALL})')
    return out
  import sentence_transformers  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  model = sentence_transformers.SentenceTransformer(str(bert.minilm_dir()), device='cpu')
  encode = lambda t: model.encode(t, batch_size=batch_size, normalize_embeddings=True,  # noqa
                                  convert_to_numpy=True, show_progress_bar=False)
  encode(texts[:batch_size])                                   # warm-up
  theirs, out['st_s'] = _timed(encode, texts)
  out['st_pps'] = len(texts) / out['st_s']
  out['ratio'] = out['ours_pps'] / out['st_pps']
  out['min_cosine'] = float(np.min(np.sum(ours * theirs, axis=1)))
  out['torch_threads'] = torch.get_num_threads()
  return out


def _median_s(fn, repeats: int) -> float:
  fn()                                                         # warm-up / compile
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def bench_topk(rows: int, dim: int, queries: int, k: int, repeats: int) -> dict:
  """Median query latency (ms) of our sharded top-k and of FAISS flat."""
  rng = np.random.default_rng(0)
  emb = rng.normal(size=(rows, dim)).astype(np.float32)
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  q = rng.normal(size=(queries, dim)).astype(np.float32)
  q /= np.linalg.norm(q, axis=1, keepdims=True)
  mesh = mesh_lib.make_mesh({'data': -1})
  corpus_emb = dense.shard_corpus(emb, mesh)
  replicated = mesh_lib.replicated(mesh)

  def ours():
    scores, idx = dense.sharded_topk(corpus_emb, jax.device_put(q, replicated), k=k,
                                     n_valid=rows, mesh=mesh)
    return np.asarray(idx), np.asarray(scores)
  out = {'rows': rows, 'queries': queries, 'k': k, 'devices': mesh.size,
         'ours_ms': 1e3 * _median_s(ours, repeats)}
  if importlib.util.find_spec('faiss') is None:
    print(f'skip FAISS side: not installed ({dense.FAISS_INSTALL})')
    return out
  import faiss  # pylint: disable=import-outside-toplevel
  flat = dense.FaissFlat(emb)
  out['faiss_ms'] = 1e3 * _median_s(lambda: flat.topk(q, k), repeats)
  out['ratio'] = out['ours_ms'] / out['faiss_ms']
  out['agree'] = bool(np.array_equal(ours()[0], flat.topk(q, k)[1]))
  out['faiss_threads'] = faiss.omp_get_max_threads()
  return out


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--passages', type=int, default=3000, help='cap on passages to encode')
  p.add_argument('--batch_size', type=int, default=64)
  p.add_argument('--corpus_rows', type=int, default=100_000, help='top-k corpus size')
  p.add_argument('--queries', default='1,32', help='query batch sizes for top-k')
  p.add_argument('--k', type=int, default=10)
  p.add_argument('--repeats', type=int, default=20)
  p.add_argument('--skip_encode', action='store_true')
  p.add_argument('--json', default='', help='also write the results here')
  args = p.parse_args(argv)
  print(f'jax {jax.__version__}: {jax.device_count()} {jax.devices()[0].platform} device(s), '
        f'{os.cpu_count()} CPU cores', flush=True)
  results = {}
  if not args.skip_encode:
    corpus, _ = corpus_lib.hotpotqa(paths.data_file('hotpotqa/dev_sample300.jsonl.gz'))
    texts = corpus.contents()[:args.passages]
    results['encode'] = r = bench_encode(texts, args.batch_size)
    print(f"encode {r['passages']} passages (batch {r['batch_size']}): ours "
          f"{r['ours_pps']:.1f} passages/s warm ({r['ours_cold_pps']:.1f} cold, incl. "
          f"compile); sentence-transformers {r.get('st_pps', float('nan')):.1f} passages/s; "
          f"ratio {r.get('ratio', float('nan')):.2f}x; min cosine "
          f"{r.get('min_cosine', float('nan')):.6f}", flush=True)
  results['topk'] = []
  for queries in (int(x) for x in args.queries.split(',')):
    r = bench_topk(args.corpus_rows, 384, queries, args.k, args.repeats)
    results['topk'].append(r)
    print(f"top-{r['k']} over {r['rows']} x 384, {queries} queries: ours {r['ours_ms']:.2f} ms "
          f"({r['devices']} device(s)); FAISS flat {r.get('faiss_ms', float('nan')):.2f} ms; "
          f"ratio {r.get('ratio', float('nan')):.2f}x; agree {r.get('agree')}", flush=True)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(results, f, indent=2)
  return results


if __name__ == '__main__':
  main()
