"""DeSA's recipe for an HF Qwen2.5-Instruct checkpoint on a TPU/GPU mesh (search agent RL).

Stage 1 trains on the recall reward (a gold answer in the retrieved <information>), stage 2
on exact match from the stage-1 weights with a fresh optimizer and the stage-1 weights as
KL reference (jaxpapers/papers/desa/experiment.py). Search-R1 rollouts: its prompt in the
chat template, <search>/<answer> turns, top-3 passages, at most 4 turns, observation tokens
outside the loss. Hyper-parameters from the reference scripts (desa_scripts/
train_qwen3b_stage{1,2}.sh): 5 rollouts per prompt, lr 1e-6, KL 0.001 (low-variance KL =
k3), clip 0.2, 500 response tokens, 500 observation tokens (chars here); their batch of 512
prompts becomes `prompts_per_step`. The reference scripts set 1005 steps per stage and do
not record where stage 1 was stopped; `desa.stage1_steps` is ours to choose.

  python -m jaxpapers.launch --config=configs/desa_qwen.py --workdir=gs://b/desa \
      --config.base.model.hf_dir=/ckpt/Qwen2.5-3B-Instruct --config.base.mesh.fsdp=8

The corpus is BM25 over the shipped HotpotQA paragraphs, or any Search-R1 retrieval server
(`--config.base.env.server_url=http://127.0.0.1:8000`, e.g. configs/retrieval_server.py or
Search-R1's E5 + FAISS server over Wikipedia). `:test` runs a tiny random Qwen3 for 2 steps.
Variants: `:schedule=outcome_only` (Search-R1) or `:schedule=mixed`.
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False, schedule='desa')
  c = ml_collections.ConfigDict()
  c.experiment = 'seeds'
  c.seeds = [0]
  c.summary_keys = [f'{arg.schedule}.test_em', f'{arg.schedule}.test_recall']

  b = ml_collections.ConfigDict()
  b.experiment = 'desa'
  b.seed = 0
  b.desa = ml_collections.ConfigDict(dict(schedules=(arg.schedule,), stage1_steps=200))
  b.task = ml_collections.ConfigDict(dict(
      name='search_r1_qa', benchmarks=['nq', 'hotpotqa'], template='search_r1',
      test_fraction=0.5, tokenizer='qwen', num_prompts=100_000, num_eval=256))
  b.model = ml_collections.ConfigDict(dict(
      preset='qwen2.5-3b', hf_dir='', dtype='bfloat16', param_dtype='float32', remat=True,
      overrides={}))
  b.warmup = ml_collections.ConfigDict(dict(
      steps=0, batch_size=8, log_every=10, optimizer=common.adamw(learning_rate=1e-6)))
  b.rollout = ml_collections.ConfigDict(dict(
      source='agent', max_turns=4, max_turn_tokens=500, stop=('</search>', '</answer>'),
      env_template='{text}', end_on_eos=True, on_error='message', env_timeout_s=60.0,
      error_template='\n\n<information>error</information>\n\n',
      kv_reuse=True, credit='trajectory', gamma=1.0))
  b.env = ml_collections.ConfigDict(dict(
      name='desa_search', reward='em', corpus='hotpotqa', top_k=3, server_url='',
      max_obs_chars=2000))
  b.steps = 400
  b.prompts_per_step = 512
  b.grpo = ml_collections.ConfigDict(dict(
      num_generations=5, num_iterations=1, loss_type='grpo', beta=0.001, epsilon=0.2,
      epsilon_high=0.0, kl_estimator='k3', dynamic_sampling=False, max_resample_rounds=3,
      mask_truncated_completions=False, is_correction='none', is_cap=2.0))
  b.advantages = ml_collections.ConfigDict(dict(
      estimator='grpo', scale_rewards='group', std_ddof=1, eps=1e-6, normalize=False))
  b.max_new_tokens = 4096         # policy + observation tokens per episode
  b.temperature = 1.0
  b.top_k = 0
  b.top_p = 1.0
  b.prompt_bucket = 64
  b.optimizer = common.adamw(learning_rate=1e-6, warmup_steps=0, schedule='constant')
  b.mesh = common.mesh(data=-1)
  b.log_every = 1
  b.eval_every = 50
  b.checkpoint = common.checkpoint(every=50, keep=3, async_save=True)
  b.resume_from = ''
  b.resume_params_only = False
  c.base = b

  if arg.test:
    b.model.preset, b.model.dtype, b.model.remat = 'qwen3-tiny', 'float32', False
    b.steps, b.desa.stage1_steps, b.prompts_per_step, b.eval_every = 2, 1, 4, 1
    b.task.num_eval, b.task.num_prompts = 2, 8
    b.grpo.num_generations = 2
    b.rollout.max_turns, b.rollout.max_turn_tokens, b.max_new_tokens = 2, 8, 640
    b.checkpoint = common.checkpoint(every=1, keep=2, async_save=False)
  return c
