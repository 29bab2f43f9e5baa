"""Quickstart: supervised fine-tuning of a tiny Qwen3 on GSM8K train, CPU-sized.

Reproduces nothing from a paper; it exercises the whole stack (real Qwen3 tokenizer and
chat template, Grain data, sharded jitted train step, Orbax checkpoints with the data
iterator, metrics.jsonl, loss plot).

  python -m jaxpapers.launch --config=configs/quickstart.py --workdir=/tmp/qs

Variants: `--config=configs/quickstart.py:test` is a seconds-long version for tests.
Expected: about 3 minutes on a 2-core laptop CPU; loss falls from ~11.9 (ln of the
151,936-token vocabulary) to ~3 (see README for the measured numbers).
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'sft'            # registered in jaxpapers/core/runners/sft.py
  c.seed = 0                      # params init, data order, rng

  # Model: a tiny random Qwen3 (preset in jaxpapers/core/models/qwen.py).
  c.model = ml_collections.ConfigDict()
  c.model.preset = 'qwen3-tiny'   # named architecture; ignored when hf_dir is set
  c.model.hf_dir = ''             # HF checkpoint dir to start from (params only)
  c.model.dtype = 'float32'       # compute dtype
  c.model.param_dtype = 'float32' # storage dtype
  c.model.remat = False           # rematerialise blocks in the backward pass
  c.tokenizer = 'qwen'            # built-in name or an HF tokenizer dir

  # Data: GSM8K train, chat-formatted, loss on the answer only.
  c.data = ml_collections.ConfigDict()
  c.data.train_file = 'gsm8k/train.jsonl.gz'  # relative to data/ (or $JAXPAPERS_DATA)
  c.data.format = 'gsm8k'         # record -> (prompt messages, response); data.FORMATS
  c.data.system = ''              # optional system prompt
  c.data.limit = 0                # read only the first N rows (0 = all)
  c.seq_len = 128                 # tokens per example (right-padded / truncated)
  c.batch_size = 8                # global batch; divisible by data x fsdp
  c.grad_accum_steps = 1          # the batch runs as this many slices (core.rl.sft)

  # Optimizer: AdamW, warmup then cosine decay, global-norm clipping.
  c.steps = 60                    # optimizer steps
  c.optimizer = common.adamw(learning_rate=5e-3, warmup_steps=5, schedule='cosine',
                             weight_decay=0.0, max_grad_norm=1.0)

  # Mesh, logging, checkpoints.
  c.mesh = common.mesh(data=-1)   # axis sizes; -1 = remaining devices
  c.log_every = 10                # steps between metrics.jsonl rows
  c.checkpoint = common.checkpoint(every=20, keep=3)
  c.resume_from = ''              # another run's checkpoints dir to start from

  if arg.test:
    c.steps, c.seq_len, c.batch_size, c.log_every = 6, 96, 8, 2
    c.checkpoint.every = 2
    c.optimizer.warmup_steps, c.optimizer.learning_rate = 1, 1e-2
    c.data.limit = 256
  return c
