"""WebAgent-R1's recipe for an HF chat model (Qwen2.5-3B-Instruct, Llama-3.1-8B-Instruct) on a
TPU/GPU mesh, on the generated sites (or any site family with WebArena-schema tasks).

The reference's system prompt and turns through the model's chat template (observations as
user messages, earlier pages replaced by `** Simplified html **`), behaviour cloning on the
expert's steps, then M-GRPO with the paper's settings: 4 trajectories per task, KL β 0.001,
lr 1e-6, Adam β2 0.99, max_grad_norm 0.01, at most 15 interaction steps, environment tokens
masked, a fresh browser session per rollout. jaxpapers/papers/webagent_r1/experiment.py.

  python -m jaxpapers.launch --config=configs/webagent_qwen.py --workdir=gs://b/webagent \
      --config.base.model.hf_dir=/ckpt/Qwen2.5-3B-Instruct \
      --config.base.task.tokenizer=/ckpt/Qwen2.5-3B-Instruct --config.base.mesh.fsdp=8

For Llama-3.1-8B-Instruct set `model.preset=llama3.1-8b` and both paths. `:test` runs a tiny
random Qwen3 with the Qwen tokenizer for 2 steps (CPU).
"""
import ml_collections

from configs import common
from configs import webagent_r1


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = webagent_r1.get_config()
  c.seeds = [0]
  b = c.base
  b.task.update(format='chat', tokenizer='qwen', num_prompts=0, num_eval=201,
                sft_seq_len=8192)
  b.model = ml_collections.ConfigDict(dict(
      preset='qwen2.5-3b', hf_dir='', dtype='bfloat16', param_dtype='float32', remat=True,
      overrides={}))
  b.warmup = ml_collections.ConfigDict(dict(   # behaviour cloning on the expert's steps
      steps=500, batch_size=32, log_every=10,
      optimizer=common.adamw(learning_rate=1e-5, warmup_steps=15, schedule='cosine')))
  b.rollout.update(max_turn_tokens=512, stop=(), env_template='chat:user', end_on_eos=False)
  b.steps = 200
  b.prompts_per_step = 32
  b.max_new_tokens = 8192         # 15 compressed steps: answers + briefed pages + the last page
  b.optimizer = common.adamw(learning_rate=1e-6, warmup_steps=0, schedule='constant', b2=0.99,
                             max_grad_norm=0.01)
  b.eval_every = 25
  b.checkpoint = common.checkpoint(every=25, keep=3, async_save=True)

  if arg.test:
    b.model.preset, b.model.dtype, b.model.remat = 'qwen3-tiny', 'float32', False
    b.task.update(num_prompts=4, num_eval=2, sft_seq_len=4096, max_steps=2)
    b.env.max_steps = b.rollout.max_turns = 2
    b.eval_max_steps = (1, 2)
    b.miniwob.tasks = ()
    b.warmup.steps, b.warmup.batch_size = 2, 2
    b.steps, b.prompts_per_step, b.grpo.num_generations = 2, 1, 2
    b.rollout.max_turn_tokens, b.max_new_tokens = 64, 1024   # the expert's steps fit 64
    b.eval_every = 1
    b.checkpoint = common.checkpoint(every=1, keep=1, async_save=False)
  return c
