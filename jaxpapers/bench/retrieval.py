"""Retrieval benchmark: our jitted MiniLM encoder vs sentence-transformers, top-k vs FAISS.

  python -m jaxpapers.bench.retrieval                       # full run (see below)
  python -m jaxpapers.bench.retrieval --passages=500 --corpus_rows=20000   # quicker

Encoding: the same passages (the pooled HotpotQA sample corpus, 2,966 passages; --passages
caps it) are encoded in the same process by
  ours  `retrieval.dense.Encoder` (all-MiniLM-L6-v2 in JAX, length-bucketed, jitted), and
  st    sentence-transformers `SentenceTransformer.encode` (torch CPU, from the [parity]
        extra), same batch size, normalize_embeddings=True.
The passages are cut into chunks (--chunk) that the two sides encode in turn (ours, st,
ours, st, ...), so load changes on a shared machine hit both alike. Our XLA compiles (one
per padded batch shape) run first, untimed, and are reported apart; st gets one untimed
warm-up batch. `ratio` = ours passages/s / st passages/s (> 1: ours faster). The min
cosine between the two embeddings of each passage is printed as a parity check.

Top-k: exact inner-product top-k of Q random unit queries over --corpus_rows random unit
vectors (dim 384), median latency of --repeats interleaved calls, for `dense.sharded_topk` on all local
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


def _st_encoder(batch_size: int):
  """sentence-transformers' encode on all-MiniLM-L6-v2 (CPU), or None when not installed."""
  if importlib.util.find_spec('sentence_transformers') is None:
    print(f'skip sentence-transformers side: not installed ({ST_INSTALL})')
    return None
  import sentence_transformers  # pylint: disable=import-outside-toplevel
  model = sentence_transformers.SentenceTransformer(str(bert.minilm_dir()), device='cpu')
  return lambda t: model.encode(t, batch_size=batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)


def bench_encode(texts: list[str], batch_size: int, chunk: int) -> dict:
  """passages/s of ours and of sentence-transformers, interleaved chunk by chunk.

  Both sides encode the same chunks of `texts` in turn (ours, st, ours, st, ...), so a
  change in machine load during the run hits both alike. Our compiles happen first, untimed
  (`Encoder.precompile`), and are reported apart as `compile_s`.
  """
  out = {'passages': len(texts), 'batch_size': batch_size, 'chunk': chunk}
  encoder = dense.Encoder.from_pretrained(batch_size=batch_size)
  chunks = [texts[i:i + chunk] for i in range(0, len(texts), chunk)]
  shapes, out['compile_s'] = _timed(lambda: sum(encoder.precompile(c) for c in chunks))
  out['compiled_shapes'] = shapes
  st = _st_encoder(batch_size)
  if st is not None:
    st(texts[:batch_size])                                     # warm-up
  ours, theirs, out['ours_s'], out['st_s'] = [], [], 0.0, 0.0
  for c in chunks:
    emb, sec = _timed(encoder.encode, c)
    ours.append(emb)
    out['ours_s'] += sec
    if st is not None:
      emb, sec = _timed(st, c)
      theirs.append(emb)
      out['st_s'] += sec
  out['ours_pps'] = len(texts) / out['ours_s']
  out['ours_cold_pps'] = len(texts) / (out['ours_s'] + out['compile_s'])
  if st is not None:
    out['st_pps'] = len(texts) / out['st_s']
    out['ratio'] = out['ours_pps'] / out['st_pps']
    cos = np.sum(np.concatenate(ours) * np.concatenate(theirs), axis=1)
    out['min_cosine'] = float(np.min(cos))
    import torch  # pylint: disable=import-outside-toplevel
    out['torch_threads'] = torch.get_num_threads()
  return out


def _interleaved_median_ms(fns: dict, repeats: int) -> dict:
  """Median ms per call of each fn, calls interleaved (one of each per repeat)."""
  for fn in fns.values():
    fn()                                                       # warm-up / compile
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


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
  fns = {'ours': ours}
  out = {'rows': rows, 'queries': queries, 'k': k, 'devices': mesh.size}
  if importlib.util.find_spec('faiss') is None:
    print(f'skip FAISS side: not installed ({dense.FAISS_INSTALL})')
  else:
    import faiss  # pylint: disable=import-outside-toplevel
    flat = dense.FaissFlat(emb)
    fns['faiss'] = lambda: flat.topk(q, k)
    out['agree'] = bool(np.array_equal(ours()[0], flat.topk(q, k)[1]))
    out['faiss_threads'] = faiss.omp_get_max_threads()
  ms = _interleaved_median_ms(fns, repeats)
  out['ours_ms'] = ms['ours']
  if 'faiss' in ms:
    out['faiss_ms'] = ms['faiss']
    out['ratio'] = out['ours_ms'] / out['faiss_ms']
  return out


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--passages', type=int, default=3000, help='cap on passages to encode')
  p.add_argument('--batch_size', type=int, default=64)
  p.add_argument('--chunk', type=int, default=960, help='passages per interleaved round')
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
    results['encode'] = r = bench_encode(texts, args.batch_size, args.chunk)
    print(f"encode {r['passages']} passages (batch {r['batch_size']}): ours "
          f"{r['ours_pps']:.1f} passages/s ({r['ours_cold_pps']:.1f} counting "
          f"{r['compile_s']:.0f} s of compiles); sentence-transformers {r.get('st_pps', float('nan')):.1f} passages/s; "
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
