r"""Self-preference in a controlled family: tiny Qwen3 generator-judges of graded skill.

Each member is a tiny Qwen3 (character vocabulary) trained on the synthetic sum task of
jaxpapers/papers/selfpref/arith.py (answer, direct-judge and CoT-judge examples): an SFT
warm-up whose length is the member's budget, then the same GRPO steps for all (exact sum /
right verdict). Then every member answers held-out problems and judges its own answer vs
every other member's, in both orders, direct and CoT (jaxpapers/papers/selfpref/family.py).

  python -m jaxpapers.launch --config=configs/selfpref_family.py --workdir=/tmp/sp_family

Variants: `:test` (seconds, for tests); `seeds=0,1,2` (default). Result: README
"Self-preference".
"""
import ml_collections

from configs import common

MEMBERS = 4


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False, seeds='0,1,2')
  c = ml_collections.ConfigDict()
  c.experiment = 'seeds'          # runs `base` once per seed (jaxpapers/core/runners/seeds.py)
  c.seeds = [int(s) for s in str(arg.seeds).split(',')]
  c.summary_keys = [f'{mode}.{k}' for mode in ('direct', 'cot') for k in (
      'corr_generator_judge', 'hspp_mean', 'judge_accuracy_mean')] + [
          f'{mode}.m{m}.{k}' for mode in ('direct', 'cot') for m in range(MEMBERS)
          for k in ('generator_accuracy', 'accuracy', 'spr', 'lspr', 'hspp', 'hopp')] + [
          f'cot.m{m}.{k}' for m in range(MEMBERS)
          for k in ('cot_repeats_own_error', 'cot_finds_right_total')]

  b = ml_collections.ConfigDict()
  b.experiment = 'selfpref_family'   # jaxpapers/papers/selfpref/family.py
  b.seed = 0
  b.family = ml_collections.ConfigDict(dict(
      sft_steps=(80, 240, 720, 2160),     # the budgets: the only difference between members
      num_test=150,                      # distinct held-out problems, answered and judged
      modes=('direct', 'cot'), cot_tokens=40, batch_size=120, bootstrap=1000))
  b.task = ml_collections.ConfigDict(dict(
      name='selfpref_arith', terms=3, digits=1, test_fraction=0.2,
      mix=(0.3, 0.35, 0.35),      # answer / direct judge / CoT judge examples
      num_prompts=8192, num_eval=96, sft_seq_len=64))
  b.model = ml_collections.ConfigDict(dict(
      preset='qwen3-tiny', hf_dir='', dtype='float32', param_dtype='float32', remat=False,
      overrides=dict(vocab_size=32, hidden_size=128, intermediate_size=512,
                     num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                     head_dim=32)))
  b.warmup = ml_collections.ConfigDict(dict(
      steps=0,                    # set per member from family.sft_steps
      batch_size=64, log_every=100,
      optimizer=common.adamw(learning_rate=3e-3, warmup_steps=20, schedule='cosine')))

  b.steps = 20                    # GRPO steps, the same for every member
  b.prompts_per_step = 16
  b.grpo = ml_collections.ConfigDict(dict(
      num_generations=8, num_iterations=1, loss_type='dapo', beta=0.0, epsilon=0.2,
      epsilon_high=0.28, kl_estimator='k3'))
  b.advantages = ml_collections.ConfigDict(dict(
      estimator='grpo', scale_rewards='group', std_ddof=1, eps=1e-4, normalize=False))
  b.max_new_tokens = 40           # a CoT verdict: two pairwise sums, two checks, the verdict
  b.temperature = 1.0
  b.top_k = 0
  b.top_p = 1.0
  b.prompt_bucket = 8
  b.optimizer = common.adamw(learning_rate=1e-4, warmup_steps=0, schedule='constant')

  b.mesh = common.mesh(data=-1)
  b.log_every = 1
  b.eval_every = 10
  b.checkpoint = common.checkpoint(every=10, keep=1, async_save=False)
  b.resume_from = ''
  c.base = b

  if arg.test:
    c.seeds = [0]
    b.family.sft_steps = (5, 30)
    b.model.overrides.update(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             head_dim=8)
    b.family.num_test, b.family.batch_size, b.family.bootstrap = 16, 16, 50
    b.steps, b.prompts_per_step, b.eval_every = 2, 4, 1
    b.task.num_prompts, b.task.num_eval = 256, 16
    c.summary_keys = [k for k in c.summary_keys if '.m2.' not in k and '.m3.' not in k]
  return c
