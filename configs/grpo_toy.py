"""GRPO toy: a tiny Qwen3 learns two-digit addition on a CPU, reward rising under GRPO.

Not a paper result: the proof that the GRPO stack learns (sampler rollouts, verifiable
reward, group advantages, TRL-parity loss) and the trajectory RELEX experiments read
(checkpoints every `checkpoint.every` steps, step 0 = the RL starting point).
A short SFT warm-up on gold answers first makes some rewards non-zero.

  python -m jaxpapers.launch --config=configs/grpo_toy.py --workdir=/tmp/grpo_toy

Variants: `:test` (seconds, for tests). Expected runtime and result: README "RL core".
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'grpo'           # jaxpapers/core/runners/grpo.py
  c.seed = 0

  # Task: "a+b=" -> sum, graded by exact match (jaxpapers/core/tasks.py).
  c.task = ml_collections.ConfigDict(dict(
      name='addition',            # GRPO task registry: addition | gsm8k
      digits=2,                   # operands < 10**digits
      sft_seq_len=16,             # warm-up example length (BOS + prompt + answer + EOS)
      sft_noise=0.5,              # fraction of warm-up targets replaced by near misses
      num_prompts=4096,           # training prompts
      num_eval=256,               # held-out prompts for greedy accuracy
      split='train', system='', suffix=''))  # (gsm8k only)

  # Model: tiny Qwen3 over the 20-symbol task vocabulary.
  c.model = ml_collections.ConfigDict(dict(
      preset='qwen3-tiny', hf_dir='', dtype='float32', param_dtype='float32', remat=False,
      overrides=dict(vocab_size=20, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16)))

  # Warm-up SFT on gold answers (from scratch every reward would be 0).
  c.warmup = ml_collections.ConfigDict(dict(
      steps=1200, batch_size=64, log_every=100,
      optimizer=common.adamw(learning_rate=5e-3, warmup_steps=20, schedule='cosine')))

  # GRPO (names and defaults as TRL GRPOConfig unless noted).
  c.steps = 120                   # GRPO steps (one generation batch each)
  c.prompts_per_step = 16         # prompts per step
  c.grpo = ml_collections.ConfigDict(dict(
      num_generations=8,          # G completions per prompt
      num_iterations=1,           # updates per generation batch (mu)
      loss_type='dapo',           # grpo | bnpo | dr_grpo | dapo
      beta=0.0,                   # KL coefficient; 0 = no reference model
      epsilon=0.2,                # lower clip
      epsilon_high=0.28,          # upper clip (DAPO clip-higher; TRL default = epsilon)
      kl_estimator='k3'))
  c.advantages = ml_collections.ConfigDict(dict(
      estimator='grpo', scale_rewards='group', std_ddof=1, eps=1e-4, normalize=False))
  c.max_new_tokens = 5            # completion budget (3 digits + EOS + slack)
  c.temperature = 1.0
  c.top_k = 0
  c.top_p = 1.0
  c.prompt_bucket = 8             # prompt lengths are padded to multiples of this
  c.optimizer = common.adamw(learning_rate=3e-4, warmup_steps=0, schedule='constant')

  c.mesh = common.mesh(data=-1)
  c.log_every = 1
  c.eval_every = 10               # greedy held-out accuracy every N steps
  c.checkpoint = common.checkpoint(every=5, keep=1000, async_save=False)  # RELEX trajectory
  c.resume_from = ''

  if arg.test:
    c.steps, c.prompts_per_step, c.eval_every = 4, 4, 2
    c.warmup.steps, c.task.num_eval = 40, 32
    c.checkpoint.every = 2
  return c
