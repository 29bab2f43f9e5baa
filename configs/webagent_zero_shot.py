"""WebAgent-R1 zero-shot reference rows: instruct models with no training as the web agent.

Each model plays the agent through its own chat template with the reference's system prompt,
turns and history compression (the rollout settings of configs/webagent_qwen.py), greedily,
on the generated sites' held-out tasks (sim backend) and on MiniWoB++ in headless Chromium.
jaxpapers/papers/webagent_r1/zero_shot.py.

  python -m jaxpapers.launch --config=configs/webagent_zero_shot.py --workdir=/tmp/wa_zero

Budgets are cut for a 2-core CPU (every turn re-prefills the compressed context): 16 held-out
site tasks and 5 interaction steps (paper: 15), 256 tokens a turn (the expert's longest
answer is 214 Qwen tokens). Needs Debian chromium + chromium-driver and `pip install
--no-deps miniwob`. Variants: `:test` (a random tiny Qwen3 with the Qwen tokenizer, 2 site
tasks, 2 MiniWoB++ tasks, 2 steps; seconds). Result: results.json, {model: {'sites':
{success, turns, invalid_actions, ...}, 'miniwob': {miniwob_success per task, miniwob_mean}}}.
"""
import ml_collections

from configs import common
from configs import webagent_qwen


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'webagent_zero_shot'   # jaxpapers/papers/webagent_r1/zero_shot.py
  c.seed = 0                            # the held-out task order (as webagent_r1's seed 0)
  c.models = ('smollm2-135m-instruct', 'qwen2.5-coder-0.5b-instruct')  # names, .gguf, HF dirs
  c.model = ml_collections.ConfigDict(dict(   # runners.generate.load_model fields
      model_dir='', preset='', dtype='float32', tokenizer='', seed=0))
  c.parts = ('sites', 'miniwob')
  c.batch_size = 4                      # episodes per rollout call (sites and MiniWoB++);
                                        # Qwen2.5-0.5B at 8 rows x ~2k tokens: ~18 GB RSS

  max_steps = 5
  b = webagent_qwen.get_config().base  # task, env and rollout settings of the Qwen recipe
  b.task.update(num_eval=16, max_steps=max_steps)
  b.env.max_steps = b.rollout.max_turns = max_steps
  b.rollout.max_turn_tokens = 256
  b.max_new_tokens = 4096               # policy + env tokens per episode
  b.prompt_bucket = 256                 # fewer context shapes to compile as rounds grow
  b.miniwob.env.max_steps = max_steps   # tasks: webagent_miniwob.TASKS, seed 0
  c.base = b
  c.mesh = common.mesh(data=-1)

  if arg.test:
    c.models = ('',)
    c.model.update(preset='qwen3-tiny', tokenizer='qwen')
    b.task.update(num_eval=2, max_steps=2)
    b.env.max_steps = b.rollout.max_turns = b.miniwob.env.max_steps = 2
    b.rollout.max_turn_tokens, b.max_new_tokens = 16, 2048
    b.miniwob.tasks = ('click-button', 'enter-text')
  return c
