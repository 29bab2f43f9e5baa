"""WebAgent-R1 (Wei et al., 2025) at small scale: BC vs BC + M-GRPO vs M-GRPO alone, 3 seeds.

A tiny Qwen3 with a character vocabulary is trained from scratch on the generated shop /
forum / admin sites (jaxpapers/papers/webagent_r1/): behaviour cloning on the scripted
expert's steps (with its "# Element: ..." think text), then multi-turn GRPO over whole
trajectories (group 4, binary checker reward, env tokens masked, history compressed, fresh
session per rollout). Held-out tasks use templates and entities never trained on.

  python -m jaxpapers.launch --config=configs/webagent_r1.py --workdir=/tmp/webagent_r1

Variants: `:tiny` (seconds, for tests); `seeds=0,1,2` (default). M-GRPO settings are the
paper's (β 0.001, Adam β2 0.99, max_grad_norm 0.01, 4 generations, 15 steps) except the
learning rate: 1e-6 is the value for a 3B/8B model and does not move a 0.4M-parameter one
(marked 'small scale:'). Result: README "WebAgent-R1".
"""
import ml_collections

from configs import common
from configs import webagent_miniwob

POLICIES = ('bc', 'r1', 'r1_zero')


def get_config(arg=None):
  arg = common.parse_arg(arg, tiny=False, seeds='0,1,2')
  c = ml_collections.ConfigDict()
  c.experiment = 'seeds'          # runs `base` once per seed (jaxpapers/core/runners/seeds.py)
  c.seeds = [int(s) for s in str(arg.seeds).split(',')]
  c.summary_keys = ([f'{p}_success' for p in POLICIES]
                    + [f'{p}_miniwob_success' for p in POLICIES])

  sites = dict(world_seed=0, items_per_page=5, max_steps=15)
  b = ml_collections.ConfigDict()
  b.experiment = 'webagent_r1'    # jaxpapers/papers/webagent_r1/experiment.py
  b.seed = 0
  b.task = ml_collections.ConfigDict(dict(
      name='webagent_sites', format='char', tokenizer='', task_seed=0, num_prompts=0,
      num_eval=48,                # held-out tasks per evaluation (of 201)
      demonstrations=True,        # build BC examples (the experiment sets it per stage)
      sft_seq_len=2176, **sites))  # one BC example per expert step (longest: 2,078 chars),
                                   # padded to multiples of 256
  b.env = ml_collections.ConfigDict(dict(name='webagent', backend='sim', site_url='', **sites))
  b.eval_max_steps = (5, 10, 15)  # test-time interaction budgets
  b.scaling_policies = ('r1',)      # policies also evaluated at the other budgets
  b.miniwob = ml_collections.ConfigDict(dict(   # the outside benchmark ('' tasks: skipped)
      tasks=tuple(webagent_miniwob.TASKS), seeds=(0,), batch_size=16, policies=POLICIES,
      env=dict(name='miniwob', max_steps=sites['max_steps'], episode_s=600.0,
               call_timeout_s=30.0)))
  b.model = ml_collections.ConfigDict(dict(
      preset='qwen3-tiny', hf_dir='', dtype='float32', param_dtype='float32', remat=False,
      overrides=dict(vocab_size=128, hidden_size=128, intermediate_size=384,
                     num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                     head_dim=32)))   # 2 x 32 attention dims: 2k-token contexts stay cheap
  b.warmup = ml_collections.ConfigDict(dict(   # behaviour cloning
      steps=2000, batch_size=8, log_every=100,   # 500 steps: loss 0.27, garbled think text
      optimizer=common.adamw(learning_rate=3e-3, warmup_steps=50, schedule='cosine')))

  # M-GRPO rollouts: one action per turn (stop at </answer>), the env's next turn appended.
  b.rollout = ml_collections.ConfigDict(dict(
      source='agent', max_turns=15, max_turn_tokens=256, stop=('</answer>',),  # expert <= 214
      env_template='\n{text}\n', end_on_eos=True, on_error='message', env_timeout_s=30.0,
      kv_reuse=False, compress_history=True, credit='trajectory', gamma=1.0))
  b.steps = 12                    # GRPO steps for R1 and for R1-Zero
  b.prompts_per_step = 2          # x 4 generations: 8 trajectories of up to 2k tokens a step
  b.grpo = ml_collections.ConfigDict(dict(
      num_generations=4, num_iterations=1, loss_type='grpo', beta=0.001, epsilon=0.2,
      epsilon_high=0.0, kl_estimator='k3', dynamic_sampling=False, max_resample_rounds=3,
      mask_truncated_completions=False, is_correction='none', is_cap=2.0))
  b.advantages = ml_collections.ConfigDict(dict(
      estimator='grpo', scale_rewards='group', std_ddof=1, eps=1e-4, normalize=False))
  b.max_new_tokens = 2048         # policy + env tokens per episode (the expert's longest
                                  # episode, 11 steps, fits; longer ones end on the budget)
  b.temperature = 1.0
  b.top_k = 0
  b.top_p = 1.0
  b.prompt_bucket = 64
  # small scale: lr 1e-6 (paper) -> 1e-4; b2 0.99 and max_grad_norm 0.01 as the paper.
  b.optimizer = common.adamw(learning_rate=1e-4, warmup_steps=0, schedule='constant', b2=0.99,
                             max_grad_norm=0.01)
  b.mesh = common.mesh(data=-1)
  b.log_every = 1
  b.eval_every = 0                # held-out evaluation at the start and the end only
  b.checkpoint = common.checkpoint(every=10, keep=1, async_save=False)
  b.resume_from = ''
  b.resume_params_only = False
  c.base = b

  if arg.tiny:
    c.seeds = [0]
    b.task.num_prompts, b.task.num_eval, b.task.sft_seq_len = 16, 4, 1024
    b.warmup.steps, b.warmup.batch_size = 2, 4
    b.steps, b.prompts_per_step, b.grpo.num_generations = 2, 2, 2
    b.max_new_tokens = 512          # turns keep the full 256 tokens (check_turn_budget)
    b.eval_max_steps = (2, 3)
    b.miniwob.tasks = ()            # tests add a task where chromium is installed
    for node in (b.task, b.env):
      node.max_steps = 3
    b.rollout.max_turns = 3
    b.model.overrides.update(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=2, num_key_value_heads=1, head_dim=16)
    b.checkpoint.every = 1
  return c
