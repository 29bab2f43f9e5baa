"""DPO toy: a tiny Qwen3 learns to prefer right sums over near misses on held-out pairs.

DPO: Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly
a Reward Model" (https://arxiv.org/abs/2305.18290); loss and metric names follow TRL's
DPOTrainer. Pairs are synthetic (jaxpapers/core/tasks.py): prompt "37+45=", chosen "82",
rejected a near miss ("81", "92", ...). A short SFT warm-up on the chosen answers makes the
reference; DPO then raises the held-out preference accuracy (implicit reward margin > 0) and
margin on pairs whose prompts never occur in training.

  python -m jaxpapers.launch --config=configs/dpo_toy.py --workdir=/tmp/dpo_toy

Variants: `:test` is a seconds-long version for tests; `:rpo` adds the chosen-answer NLL
(RPO, Pang et al. 2024, https://arxiv.org/abs/2404.19733; TRL rpo_alpha=1.0).
Expected: ~1-2.5 minutes on a 2-core CPU (compiles take about half); held-out preference
accuracy 0 -> ~0.8 and mean margin 0 -> ~0.95 (README has the measured numbers); the
policy's own ranking log p(chosen) > log p(rejected) stays near the reference's ~0.84,
`:rpo` lifts it to ~0.98 (accuracy ~0.97). Outputs: metrics.jsonl (eval/* rows), dpo.png,
results.json, checkpoints/, reference/ (the warm-up run: its own checkpoints and metrics).
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False, rpo=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'dpo'            # registered in jaxpapers/core/runners/dpo.py
  c.seed = 0                      # params init, data order, pair generation

  # Model: a tiny random Qwen3 over the 20-token character vocabulary of core/tasks.py.
  c.model = ml_collections.ConfigDict()
  c.model.preset = 'qwen3-tiny'   # named architecture (jaxpapers/core/models/qwen.py)
  c.model.overrides = {'vocab_size': 20}  # = len(tasks.CharTokenizer())
  c.model.dtype = 'float32'       # compute dtype
  c.model.param_dtype = 'float32' # storage dtype
  c.model.remat = False           # rematerialise blocks in the backward pass

  # Data: synthetic addition preference pairs (tasks.preference_pairs).
  c.data = ml_collections.ConfigDict()
  c.data.train_pairs = 4096       # training pairs
  c.data.eval_pairs = 512         # held-out pairs (prompts unseen in training)
  c.data.digits = 2               # operands below 10**digits
  c.seq_len = 12                  # tokens per sequence; >= 3*digits + 5
  c.batch_size = 64               # pairs per global batch; divisible by data x fsdp
  c.logits_chunk = 128            # positions per chunk of the log-prob head (core/logprobs.py)

  # Reference: SFT warm-up on the chosen answers (0 = the random init is the reference).
  c.warmup = ml_collections.ConfigDict()
  c.warmup.steps = 400            # SFT steps before DPO
  c.warmup.optimizer = common.adamw(learning_rate=3e-3, warmup_steps=10, schedule='cosine')

  # DPO loss (TRL DPOConfig names and defaults).
  c.dpo = ml_collections.ConfigDict()
  c.dpo.loss_type = 'sigmoid'     # sigmoid | hinge | ipo | robust | sigmoid_norm | simpo
  c.dpo.beta = 0.1                # beta, DPO paper Eq. 7
  c.dpo.label_smoothing = 0.0     # cDPO flip probability
  c.dpo.sft_weight = 0.0          # chosen-NLL weight (TRL rpo_alpha)
  c.dpo.simpo_gamma = 0.5         # SimPO margin gamma (loss_type='simpo' only)

  # Optimizer: AdamW; a tiny model needs a far larger lr than TRL's 1e-6 default.
  c.steps = 500                   # DPO optimizer steps
  c.optimizer = common.adamw(learning_rate=5e-4, warmup_steps=10, schedule='constant')

  # Mesh, eval, logging, checkpoints.
  c.mesh = common.mesh(data=-1)   # axis sizes; -1 = remaining devices
  c.eval_every = 50               # steps between held-out evals (also at step 0 and the end)
  c.log_every = 50                # steps between metrics.jsonl train rows
  c.checkpoint = common.checkpoint(every=100, keep=3)
  c.resume_from = ''              # another run's checkpoints dir to start from

  if arg.rpo:                     # DPO + chosen NLL: the policy itself also ranks better
    c.dpo.sft_weight, c.optimizer.learning_rate = 1.0, 1e-3
  if arg.test:
    c.steps, c.eval_every, c.log_every, c.checkpoint.every = 40, 10, 10, 20
    c.optimizer.learning_rate = 1e-3
    c.warmup.steps, c.warmup.optimizer.learning_rate = 150, 1e-2
    c.data.eval_pairs = 256
  return c
