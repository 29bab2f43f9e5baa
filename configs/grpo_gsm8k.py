"""GRPO on GSM8K with a Qwen chat model: the real RLVR recipe (math-verify reward).

What a user launches on a TPU/GPU mesh with an HF Qwen2.5/Qwen3 checkpoint, e.g.

  python -m jaxpapers.launch --config=configs/grpo_gsm8k.py --workdir=gs://b/grpo \
      --config.model.hf_dir=/ckpt/Qwen2.5-0.5B-Instruct --config.mesh.fsdp=8

Prompts use the Qwen chat template with the suffix the RELEX reference uses ("Please reason
step by step, and put your final answer within \\boxed{}."); the reward is math-verify on
the last \\boxed{} (or "#### x"). Defaults follow TRL GRPOConfig except the learning rate
(1e-6 in TRL; same here) and the lengths. `:test` runs a tiny random Qwen3 for a few steps on
a CPU (rewards stay 0 there; it checks the pipeline, not learning).
"""
import ml_collections

from configs import common

SUFFIX = '\nPlease reason step by step, and put your final answer within \\boxed{}.'


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'grpo'
  c.seed = 0

  c.task = ml_collections.ConfigDict(dict(
      name='gsm8k', digits=2, sft_seq_len=16, sft_noise=0.0,   # (addition only)
      num_prompts=7473,           # GSM8K train size
      num_eval=256,               # held-out GSM8K test questions
      split='train',              # data/gsm8k/<split>.jsonl.gz
      system='You are a helpful assistant.',
      suffix=SUFFIX))

  c.model = ml_collections.ConfigDict(dict(
      preset='qwen2.5-0.5b',      # architecture when hf_dir is empty (random init)
      hf_dir='',                  # HF Qwen checkpoint directory (the usual start)
      dtype='bfloat16', param_dtype='float32', remat=True, overrides={}))
  c.warmup = ml_collections.ConfigDict(dict(
      steps=0, batch_size=8, log_every=10, optimizer=common.adamw(learning_rate=1e-5)))

  c.steps = 500
  c.prompts_per_step = 32
  c.grpo = ml_collections.ConfigDict(dict(
      num_generations=8, num_iterations=1, loss_type='dapo', beta=0.0, epsilon=0.2,
      epsilon_high=0.28, kl_estimator='k3'))
  c.advantages = ml_collections.ConfigDict(dict(
      estimator='grpo', scale_rewards='group', std_ddof=1, eps=1e-4, normalize=False))
  c.max_new_tokens = 512
  c.temperature = 1.0
  c.top_k = 0
  c.top_p = 1.0
  c.prompt_bucket = 64
  c.optimizer = common.adamw(learning_rate=1e-6, warmup_steps=0, schedule='linear')

  c.mesh = common.mesh(data=-1)
  c.log_every = 1
  c.eval_every = 50
  c.checkpoint = common.checkpoint(every=10, keep=1000)
  c.resume_from = ''

  if arg.test:
    c.model.preset, c.model.dtype, c.model.remat = 'qwen3-tiny', 'float32', False
    c.steps, c.prompts_per_step, c.max_new_tokens, c.eval_every = 2, 2, 8, 2
    c.grpo.num_generations, c.task.num_prompts, c.task.num_eval = 4, 16, 4
    c.checkpoint.every = 1
  return c
