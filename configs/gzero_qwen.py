r"""G-Zero, the paper's recipe: Qwen3-Base Proposer and Generator from HF weights, LoRA rank 32.

Both roles start from the same checkpoint with their own adapters over the shared frozen
base; the reference's settings (Chengsong-Huang/G-Zero config.py, paper-main): Proposer GRPO
6 steps a round, 8 prompts x 16 rollouts, lr 4e-5 (Adam b2 0.95), δ floor -5, BLEU threshold
0.5, hint target 200 chars; 2,000 questions a round, a_hard / a_assisted at T = 0.7, up to
8,192 tokens; bot50 δ band and the quality filters; DPO sigmoid, length-normalised, beta 2,
lr 1e-5 linear decay, 8 pairs a batch, <= 50 steps; 3 rounds. The held-out score here is
greedy GSM8K accuracy (the paper's AIME / IFEval / AlpacaEval are not shipped).

  python -m jaxpapers.launch --config=configs/gzero_qwen.py \
      --config.model.hf_dir=/ckpt/Qwen3-8B-Base --config.mesh.fsdp=8 --workdir=/runs/gzero

`:test` runs 2 rounds of a tiny random Qwen3 with the real tokenizer (tests).
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'gzero'           # jaxpapers/papers/gzero/loop.py
  c.seed = 0
  c.rounds = 3
  c.init_from = ''
  c.setup = ml_collections.ConfigDict(dict(
      name='chat', tokenizer='qwen', num_eval=256, eval_tokens=2048))
  c.model = ml_collections.ConfigDict(dict(
      preset='qwen3-8b', hf_dir='', dtype='bfloat16', param_dtype='float32', remat=True,
      overrides={}))
  # LoRA alpha is not in the reference's config; alpha = rank (scale 1) is our choice.
  c.lora = ml_collections.ConfigDict(dict(rank=32, alpha=32.0))
  no_sft = lambda: ml_collections.ConfigDict(dict(  # noqa: E731
      steps=0, batch_size=8, log_every=10, optimizer=common.adamw(learning_rate=1e-5)))
  c.warmup = ml_collections.ConfigDict({'proposer': no_sft(), 'generator': no_sft()})
  c.proposer = ml_collections.ConfigDict(dict(
      steps=6, batch_size=8, group_size=16, temperature=1.0, max_new_tokens=8192,
      loss_type='dr_grpo', epsilon=0.2, advantages=dict(estimator='dr_grpo'),
      optimizer=common.adamw(learning_rate=4e-5, schedule='constant', b2=0.95,
                             max_grad_norm=0.0)))
  c.reward = ml_collections.ConfigDict(dict(
      delta_floor=-5.0, hint_length_target=200, hint_length_lambda=0.03, bleu_threshold=0.5,
      duplication_penalty=True, invalid_reward=-1.0))
  c.solver = ml_collections.ConfigDict(dict(temperature=0.7, max_new_tokens=8192))
  c.pool = ml_collections.ConfigDict(dict(
      num_questions=2000,
      filter=dict(pct_low=0.0, pct_high=50.0, chosen_min_chars=100, chosen_max_chars=10_000,
                  ratio_max=2.5, zlib_threshold=0.15, zlib_min_chars=500, prefix_overlap=30)))
  c.dpo = ml_collections.ConfigDict(dict(
      loss_type='sigmoid_norm', beta=2.0, batch_size=8, max_steps=50, epochs=1, seq_len=12288,
      optimizer=common.adamw(learning_rate=1e-5, schedule='linear', b2=0.95,
                             max_grad_norm=0.0)))
  c.mesh = common.mesh(data=1, fsdp=-1)
  c.checkpoint = common.checkpoint(every=10, keep=2, async_save=True)

  if arg.test:
    c.rounds = 2
    c.setup.update(num_eval=8, eval_tokens=8)
    c.model.preset, c.model.dtype, c.model.remat = 'qwen3-tiny', 'float32', False
    c.model.overrides = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                             num_attention_heads=2, num_key_value_heads=1, head_dim=16)
    c.lora.rank, c.lora.alpha = 4, 8.0
    c.proposer.update(steps=2, batch_size=2, group_size=4, max_new_tokens=16)
    c.solver.max_new_tokens = 8
    c.pool.num_questions = 8
    c.dpo.update(max_steps=2, seq_len=256)
    c.mesh = common.mesh(data=-1)
    c.checkpoint.update(every=1, async_save=False)
  return c
