"""DeSA on a synthetic fact world: recall-then-EM vs outcome-only vs mixed reward, 3 seeds.

A tiny Qwen3 (character vocabulary) is warmed up on imperfect search demonstrations (some
search without the entity, some answer a guess), then trained with the same budget of
multi-turn GRPO steps under each schedule (jaxpapers/papers/desa/experiment.py):
`desa` (recall reward for stage1_steps, then EM from the stage-1 weights), `outcome_only`
(Search-R1's EM) and `mixed` ((recall + EM) / 2 from step 0). Held-out questions are about
entities never asked about in training (papers/desa/world.py).

  python -m jaxpapers.launch --config=configs/desa_world.py --workdir=/tmp/desa_world

Variants: `:test` (seconds, for tests); `seeds=0,1,2` (default); `:hard` (every fact also has a
former value that BM25 ranks level with it, so reading the right passage is a skill of its
own: the setting where an outcome reward can miss good searches). Result: README "DeSA".
"""
import ml_collections

from configs import common

SCHEDULES = ('desa', 'outcome_only', 'mixed')
METRICS = ('test_em', 'test_recall', 'test_no_search', 'test_invalid', 'test_redundant')


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False, seeds='0,1,2', hard=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'seeds'          # runs `base` once per seed (jaxpapers/core/runners/seeds.py)
  c.seeds = [int(s) for s in str(arg.seeds).split(',')]
  c.summary_keys = [f'{s}.{m}' for s in ('start',) + SCHEDULES for m in METRICS]

  world = dict(seed=0, num_lands=400, num_people=400, test_fraction=0.25, two_hop=0.0,
               distractors=2, top_k=3, former=bool(arg.hard))
  b = ml_collections.ConfigDict()
  b.experiment = 'desa'           # jaxpapers/papers/desa/experiment.py
  b.seed = 0
  b.desa = ml_collections.ConfigDict(dict(schedules=SCHEDULES, stage1_steps=15))
  b.task = ml_collections.ConfigDict(dict(
      name='desa_world', world=dict(world), num_prompts=4096, num_eval=96,
      sft_seq_len=224,            # demonstrations: prompt, a search or two and an answer
      vague=0.4,                  # demonstrations that search without the entity
      skip_search=0.25))          # (with 35% good ones the greedy policy searches vaguely)          # demonstrations that answer a guess without searching
  b.model = ml_collections.ConfigDict(dict(
      preset='qwen3-tiny', hf_dir='', dtype='float32', param_dtype='float32', remat=False,
      overrides=dict(vocab_size=96, hidden_size=64, intermediate_size=256,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                     head_dim=16)))
  b.warmup = ml_collections.ConfigDict(dict(
      steps=1500, batch_size=32, log_every=100,
      optimizer=common.adamw(learning_rate=5e-3, warmup_steps=20, schedule='cosine')))

  # Search-R1 rollouts: <search>q</search> -> <information>top-3</information>, <answer> ends.
  b.rollout = ml_collections.ConfigDict(dict(
      source='agent', max_turns=4, max_turn_tokens=32, stop=('</search>', '</answer>'),
      env_template='{text}', end_on_eos=True, on_error='message', env_timeout_s=30.0,
      error_template='\n\n<information>error</information>\n\n',
      kv_reuse=True, credit='trajectory', gamma=1.0))
  b.env = ml_collections.ConfigDict(dict(
      name='desa_search', reward='em', corpus='world', world=dict(world), top_k=3,
      server_url=''))              # '' = in-process BM25; else a Search-R1 /retrieve server

  b.steps = 40                    # GRPO steps per schedule (DeSA: stage1_steps + the rest)
  b.prompts_per_step = 8
  b.grpo = ml_collections.ConfigDict(dict(
      num_generations=5, num_iterations=1, loss_type='grpo', beta=0.0, epsilon=0.2,
      epsilon_high=0.0, kl_estimator='k3', dynamic_sampling=False, max_resample_rounds=3,
      mask_truncated_completions=False, is_correction='none', is_cap=2.0))
  b.advantages = ml_collections.ConfigDict(dict(
      estimator='grpo', scale_rewards='group', std_ddof=1, eps=1e-4, normalize=False))
  b.max_new_tokens = 384          # policy + observation tokens per episode
  b.temperature = 1.0
  b.top_k = 0
  b.top_p = 1.0
  b.prompt_bucket = 16
  b.optimizer = common.adamw(learning_rate=5e-4, warmup_steps=0, schedule='constant')

  b.mesh = common.mesh(data=-1)
  b.log_every = 1
  b.eval_every = 5
  b.checkpoint = common.checkpoint(every=10, keep=2, async_save=False)
  b.resume_from = ''
  b.resume_params_only = False   # set per stage by the experiment
  c.base = b

  if arg.test:
    c.seeds = [0]
    world.update(num_lands=40, num_people=40, two_hop=0.3)   # exercise two-hop questions
    b.task.world, b.env.world = dict(world), dict(world)
    b.steps, b.prompts_per_step, b.eval_every, b.desa.stage1_steps = 3, 4, 1, 1
    b.warmup.steps, b.task.num_eval, b.task.num_prompts = 20, 8, 64
    b.grpo.num_generations = 2
    b.max_new_tokens, b.task.sft_seq_len = 200, 200
    b.checkpoint.every = 1
  return c
