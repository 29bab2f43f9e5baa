r"""G-Zero in a synthetic fact world, tiny Qwen3 Proposer and Generator, 3 seeds.

The world, who knows what and the checker: jaxpapers/papers/gzero/world.py. The loop:
jaxpapers/papers/gzero/loop.py; main run and ablations from one warm-up per seed:
jaxpapers/papers/gzero/experiment.py.

  python -m jaxpapers.launch --config=configs/gzero_world.py --workdir=/tmp/gzero_world

Variants: `:test` (seconds, for tests); `seeds=0,1,2` (default). Settings are the
reference's (δ floor -5, length penalty 0.03 / 100 chars over 200, BLEU threshold 0.5,
Dr.GRPO, proposer group 16 x 8, a_hard at T = 0.7, bot50 δ band, DPO sigmoid length-normalised,
beta 2, 8 pairs a batch, <= 50 steps, linear decay) except where the world's scale needs
otherwise, marked 'world:'.
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False, seeds='0,1,2')
  c = ml_collections.ConfigDict()
  c.experiment = 'seeds'
  c.seeds = [int(s) for s in str(arg.seeds).split(',')]
  variants = ('main', 'random_hints', 'no_filter', 'no_duplication')
  c.summary_keys = [f'{v}.{k}' for v in variants for k in ('final_heldout', 'start_heldout')]

  b = ml_collections.ConfigDict()
  b.experiment = 'gzero_variants'
  b.variants = variants
  b.seed = 0
  b.rounds = 4
  b.init_from = ''
  b.setup = ml_collections.ConfigDict(dict(
      name='world', world_seed=0, entities=24, known_fraction=0.5,
      sft_examples=8192, sft_seq_len=128, hinted_fraction=0.5))
  b.model = ml_collections.ConfigDict(dict(
      preset='qwen3-tiny', hf_dir='', dtype='float32', param_dtype='float32', remat=False,
      overrides=dict(vocab_size=40, hidden_size=128, intermediate_size=512,
                     num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                     head_dim=32)))
  sft = lambda steps: ml_collections.ConfigDict(dict(  # noqa: E731
      steps=steps, batch_size=64, log_every=100,
      optimizer=common.adamw(learning_rate=3e-3, warmup_steps=20, schedule='cosine')))
  b.warmup = ml_collections.ConfigDict({'proposer': sft(300), 'generator': sft(300)})
  b.proposer = ml_collections.ConfigDict(dict(
      steps=6, batch_size=8, group_size=16, temperature=1.0, max_new_tokens=96,
      loss_type='dr_grpo', epsilon=0.2,
      advantages=dict(estimator='dr_grpo'),
      # world: from-scratch tiny models need a larger step than the reference's 4e-5 (LoRA)
      optimizer=common.adamw(learning_rate=3e-4, schedule='constant', b2=0.95)))
  b.reward = ml_collections.ConfigDict(dict(
      delta_floor=-5.0, hint_length_target=200, hint_length_lambda=0.03, bleu_threshold=0.5,
      duplication_penalty=True, invalid_reward=-1.0))
  b.solver = ml_collections.ConfigDict(dict(temperature=0.7, max_new_tokens=8))
  b.pool = ml_collections.ConfigDict(dict(
      num_questions=256,
      # world: answers are one word, so the reference's 100-character minimum is 1
      filter=dict(pct_low=0.0, pct_high=50.0, chosen_min_chars=1, chosen_max_chars=10_000,
                  ratio_max=2.5, zlib_threshold=0.15, zlib_min_chars=500, prefix_overlap=30)))
  b.dpo = ml_collections.ConfigDict(dict(
      loss_type='sigmoid_norm', beta=2.0, batch_size=8, max_steps=50, epochs=1, seq_len=48,
      # world: the reference's 1e-5 (LoRA on 8B) does not move a from-scratch tiny model
      optimizer=common.adamw(learning_rate=3e-4, schedule='linear', b2=0.95)))
  b.mesh = common.mesh(data=-1)
  b.checkpoint = common.checkpoint(every=10, keep=2, async_save=False)
  c.base = b

  if arg.test:
    c.seeds = [0]
    b.variants = ('main', 'no_filter')
    c.summary_keys = [k for k in c.summary_keys if k.split('.')[0] in b.variants]
    b.rounds = 2
    b.setup.update(entities=6, sft_examples=256)
    b.model.overrides.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             head_dim=16)
    b.warmup.proposer.steps, b.warmup.generator.steps = 250, 60   # valid tags from the start
    b.warmup.proposer.batch_size = b.warmup.generator.batch_size = 16
    b.proposer.update(steps=2, batch_size=2, group_size=4)
    b.pool.num_questions = 16
    b.dpo.update(batch_size=8, max_steps=2)
    b.checkpoint.every = 1
  return c
