"""Agent toy: multi-turn GRPO teaches a tiny Qwen3 to use a tool it cannot do without.

Each task asks for the value of a random key ("key abc?"); only the lookup tool knows it:
`<search>abc</search>` -> `<info>417</info>` -> `<answer>417</answer>`. Reward: exact match of
the answer (core/lookup_env.py). A short SFT warm-up on demonstrations, 70% of which answer
with a guess instead of searching, leaves a policy that calls the tool about 30% of the time
(and, greedy, not at all);
GRPO over trajectories (loss on policy tokens only, KV caches kept across turns) must raise
held-out success and the tool-call rate. Runs every seed in `seeds` into workdir/seed_<s>.

  python -m jaxpapers.launch --config=configs/agent_toy.py --workdir=/tmp/agent_toy

Variants: `:test` (seconds, for tests); `seeds=0,1,2` (default). Result: README "Agent toy".
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False, seeds='0,1,2')
  c = ml_collections.ConfigDict()
  c.experiment = 'seeds'          # runs `base` once per seed (jaxpapers/core/runners/seeds.py)
  c.seeds = [int(s) for s in str(arg.seeds).split(',')]
  c.summary_keys = ['success_first10', 'success_last10', 'tool_call_rate_first10',
                    'tool_call_rate_last10', 'reward_first10', 'reward_last10', 'wall_s']

  b = ml_collections.ConfigDict()
  b.experiment = 'grpo'           # jaxpapers/core/runners/grpo.py
  b.seed = 0
  b.task = ml_collections.ConfigDict(dict(
      name='kv_lookup',           # GRPO task registry
      num_prompts=4096,           # training tasks
      num_eval=64,                # held-out tasks (other keys and values)
      sft_seq_len=72,             # warm-up demonstration length
      skip_search=0.7))           # fraction of demonstrations that guess instead of searching
  b.model = ml_collections.ConfigDict(dict(
      preset='qwen3-tiny', hf_dir='', dtype='float32', param_dtype='float32', remat=False,
      overrides=dict(vocab_size=48, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16)))
  b.warmup = ml_collections.ConfigDict(dict(
      steps=2000, batch_size=32, log_every=100,
      optimizer=common.adamw(learning_rate=5e-3, warmup_steps=20, schedule='cosine')))

  # Multi-turn rollouts (jaxpapers/core/agent.py).
  b.rollout = ml_collections.ConfigDict(dict(
      source='agent',             # sampler | agent
      max_turns=3,                # policy turns per episode
      max_turn_tokens=24,         # tokens one policy turn may sample
      stop=('</search>',),        # a search turn ends at its closing tag
      env_template='{text}',      # observations appended inline (Search-R1 style)
      end_on_eos=True, on_error='message', env_timeout_s=10.0,
      error_template='<info>error</info>',   # env faults, in the toy's vocabulary
      kv_reuse=True,              # keep each episode's KV cache between turns
      credit='trajectory',        # trajectory | discounted | turn_group
      gamma=1.0))
  b.env = ml_collections.ConfigDict(dict(name='kv_lookup', reward='answer_em'))

  b.steps = 60
  b.prompts_per_step = 16
  b.grpo = ml_collections.ConfigDict(dict(
      num_generations=8, num_iterations=1, loss_type='dapo', beta=0.0, epsilon=0.2,
      epsilon_high=0.28, kl_estimator='k3',
      dynamic_sampling=False, max_resample_rounds=3,   # DAPO dynamic sampling
      mask_truncated_completions=False,
      is_correction='none', is_cap=2.0))               # truncated IS: 'tis'
  b.advantages = ml_collections.ConfigDict(dict(
      estimator='grpo', scale_rewards='group', std_ddof=1, eps=1e-4, normalize=False))
  b.max_new_tokens = 72           # completion budget per episode (policy + env tokens)
  b.temperature = 1.0
  b.top_k = 0
  b.top_p = 1.0
  b.prompt_bucket = 16
  b.optimizer = common.adamw(learning_rate=1e-3, warmup_steps=0, schedule='constant')

  b.mesh = common.mesh(data=-1)
  b.log_every = 1
  b.eval_every = 1                # greedy held-out success every step (64 tasks, cheap)
  b.checkpoint = common.checkpoint(every=10, keep=2, async_save=False)
  b.resume_from = ''
  c.base = b

  if arg.test:
    c.seeds = [0]
    b.steps, b.prompts_per_step, b.eval_every = 3, 4, 1
    b.warmup.steps, b.task.num_eval, b.task.num_prompts = 30, 8, 64
    b.grpo.num_generations = 4
    b.checkpoint.every = 1
  return c
