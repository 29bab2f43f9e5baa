"""Retrieval core: corpora, BM25 (bm25s), dense MiniLM with sharded top-k, FAISS, hybrid RRF.

  corpus.py     Passage/Corpus/QAExample, HotpotQA and jsonl builders, persistence
  retriever.py  the `rank`/`search` interface, shared input rules, the method registry
  bm25.py       BM25Retriever (bm25s)
  dense.py      Encoder (jitted MiniLM), sharded_topk, FaissFlat, DenseRetriever
  hybrid.py     rrf_fuse, HybridRetriever
  env.py        SearchEnv: <search>q</search> -> <information>...</information>

Importing the package registers the methods `bm25`, `dense` and `hybrid` for
`retriever.build(method, config, corpus, directory, mesh)`.
"""
from jaxpapers.core.retrieval import bm25  # noqa: F401  (registers 'bm25')
from jaxpapers.core.retrieval import dense  # noqa: F401  (registers 'dense')
from jaxpapers.core.retrieval import hybrid  # noqa: F401  (registers 'hybrid')
