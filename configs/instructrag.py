r"""InstructRAG (Wei et al., 2024, arxiv.org/abs/2406.13629): self-synthesised rationales
as ICL demonstrations and as SFT targets, against vanilla RAG, on NQ-open and HotpotQA.

The model explains the gold answers of the train questions from their noisy documents
(rationale synthesis, greedy); InstructRAG-ICL shows 2 such (question, rationale) pairs,
InstructRAG-FT fine-tunes on (documents + question -> rationale). Baselines: no retrieval,
vanilla RAG zero-shot and ICL (question -> answer demonstrations), vanilla SFT (-> answer).
Metric: the reference's accuracy (a normalised gold answer inside the normalised output)
with a 95% bootstrap interval, EM, and the documents' answer recall@5.
jaxpapers/papers/instructrag/experiment.py.

  python -m jaxpapers.launch --config=configs/instructrag.py --workdir=/tmp/instructrag

Variants (combinable, e.g. `:icl,vanilla_icl`): `:icl`, `:ft`, `:vanilla_zeroshot`,
`:vanilla_icl`, `:vanilla_sft`, `:no_retrieval` run one method each (default: all six);
`:model=smollm2-135m-instruct` (or `qwen2.5-coder-1.5b-instruct`, any .gguf / HF dir);
`:docs=dense|hybrid|distractors` (default bm25); `:tiny` a random tiny Qwen3 on 8 questions
(tests). Expected cost on a 2-core CPU with the 0.5B model: ~6 s per generated answer of
256 tokens (so ~1 h per 500-question method), FT several hours per seed; every file is
cached, so rerun the same command to resume. Result: results.json, results.md.
"""
import ml_collections

from configs import common
from configs import retrieval_eval

METHODS = ('no_retrieval', 'vanilla_zeroshot', 'vanilla_icl', 'instructrag_icl', 'vanilla_sft',
           'instructrag_ft')
VARIANTS = {'icl': 'instructrag_icl', 'ft': 'instructrag_ft',
            'vanilla_zeroshot': 'vanilla_zeroshot', 'vanilla_icl': 'vanilla_icl',
            'vanilla_sft': 'vanilla_sft', 'no_retrieval': 'no_retrieval'}


def get_config(arg=None):
  arg = common.parse_arg(arg, tiny=False, model='qwen2.5-coder-0.5b-instruct', docs='bm25',
                         **{v: False for v in VARIANTS})
  c = ml_collections.ConfigDict()
  c.experiment = 'instructrag'        # jaxpapers/papers/instructrag/experiment.py
  c.seed = 0                          # bootstrap resampling
  c.bootstrap = 1000                  # bootstrap draws for accuracy_ci
  picked = tuple(m for v, m in VARIANTS.items() if arg[v])
  c.methods = tuple(m for m in METHODS if m in picked) or METHODS

  # Model: named checkpoint, .gguf or HF dir (a GGUF is dequantised, then fine-tuned as is).
  c.model = ml_collections.ConfigDict(dict(
      model_dir=arg.model, preset='', dtype='float32', tokenizer='', seed=0))
  c.prompt_style = 'chat'             # 'chat' (model's template) | 'reference' (raw Llama-3)

  # Data: questions split by hash, top-n_docs noisy documents per question.
  c.datasets = ('nq', 'hotpotqa')
  c.data = ml_collections.ConfigDict(dict(
      test_fraction=0.5,              # share of questions in the test split
      num_train=256,                  # train questions (rationale synthesis, SFT, demos)
      num_test=500,                   # test questions (HotpotQA has 150 in its test split)
      n_docs=5,                       # documents per question (paper: 5; 10 for 2Wiki)
      docs=arg.docs,                  # 'bm25' | 'dense' | 'hybrid' | 'distractors'
      max_doc_words=0,                # cut each document to N words (0 = whole, as the paper)
      postfix={'nq': 'NaturalQuestions', 'hotpotqa': '2WikiMultiHopQA'},  # rag.json hint
  ))
  c.retriever = retrieval_eval.retriever_config()
  c.index_dir = ''                    # where indexes persist; '' = workdir/index

  # Generation (greedy, as the reference's temperature 0).
  c.generation = ml_collections.ConfigDict(dict(
      max_new_tokens=256,             # every method's test answers (same budget for all)
      rationale_tokens=320,           # rationale synthesis budget
      max_prompt_tokens=3584,         # longer prompts lose the start of their documents
      batch_size=8,                   # rows per sampler call
      bucket=128,                     # prompt lengths padded to multiples of this
      shared_prefix=64,               # a batch's common prefix (ICL demos) prefilled once
      chunk=64,                       # prompts per cached part file (resume granularity)
  ))
  c.icl = ml_collections.ConfigDict(dict(num_demos=2))   # N (paper: 2)

  # Fine-tuning (reference train.sh): AdamW 2.5e-5, cosine, warm-up ratio 0.03, 2 epochs.
  c.ft = ml_collections.ConfigDict(dict(
      seeds=(0, 1, 2),                # one fine-tuned model per seed (data order)
      epochs=2,
      max_steps=0,                    # > 0 overrides the epoch count
      batch_size=8,                   # paper: 128
      seq_len=2048,                   # prompt + target tokens (paper: 4096)
      trim_multiple=128,              # batches cut to their longest row, rounded up to this
      remat=True,                     # recompute blocks in the backward pass (memory)
      grad_accum_steps=8,             # the batch runs as this many slices (core.rl.sft: same
                                      # gradient, activations of one slice)
      warmup_ratio=0.03,
      train_query='formatted',        # 'formatted' | 'reference_literal' (prompts.py)
      log_every=1,
      optimizer=common.adamw(2.5e-5, schedule='cosine', weight_decay=0.0, max_grad_norm=1.0),
      checkpoint=common.checkpoint(every=25, keep=1),
  ))
  c.mesh = common.mesh(data=-1)

  if arg.tiny:
    c.model.model_dir, c.model.preset, c.model.tokenizer = '', 'qwen3-tiny', 'qwen'
    c.data.num_train, c.data.num_test, c.data.max_doc_words = 8, 8, 12
    c.generation.update(max_new_tokens=4, rationale_tokens=6, chunk=4)
    c.ft.update(seeds=(0,), max_steps=2, seq_len=384, batch_size=16, grad_accum_steps=2)
    c.bootstrap = 50
  return c
