"""Search agents on real QA: Search-R1's prompt, BM25 over the shipped HotpotQA paragraphs.

Greedy episodes of a policy (named checkpoint, .gguf, HF dir) on the test half of NQ-open dev
and the HotpotQA dev sample (split by a hash of the question), with EM, F1, retrieval recall
and search behaviour, and a `no_search` row (the same model without a search engine).
jaxpapers/papers/desa/qa_eval.py.

  python -m jaxpapers.launch --config=configs/desa_qa_eval.py --workdir=/tmp/desa_qa \
      --config.model.model_dir=qwen2.5-coder-0.5b-instruct

Variants: `:test` (a tiny random Qwen, 2 questions). Result: README "DeSA".
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'desa_qa_eval'
  c.model = ml_collections.ConfigDict(dict(
      model_dir='qwen2.5-coder-0.5b-instruct',   # named checkpoint, .gguf or HF dir
      preset='', dtype='', tokenizer='', seed=0))
  c.task = ml_collections.ConfigDict(dict(
      benchmarks=['nq', 'hotpotqa'], template='search_r1', test_fraction=0.5, tokenizer=''))
  c.benchmarks = ['nq', 'hotpotqa']
  c.modes = ['search_r1', 'no_search']
  c.num_questions = 32            # per benchmark (test split)
  c.batch_size = 16
  c.max_turns = 4                 # Search-R1 / DeSA: at most 4 turns
  c.max_turn_tokens = 160
  c.max_new_tokens = 1536         # policy + observation tokens per episode
  c.env_timeout_s = 60.0
  c.env = ml_collections.ConfigDict(dict(
      name='desa_search', reward='em', corpus='hotpotqa', top_k=3, server_url='',
      max_obs_chars=2000))        # Search-R1 caps observations at 500 tokens
  c.mesh = common.mesh(data=-1)
  if arg.test:
    c.model.model_dir, c.model.preset, c.model.tokenizer = '', 'qwen3-tiny', 'qwen'
    c.num_questions, c.batch_size, c.max_turns, c.max_turn_tokens = 2, 2, 2, 8
    c.max_new_tokens = 600
  return c
