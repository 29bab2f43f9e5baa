r"""Self-preference of real checkpoints judging each other on a verifiable math set.

Each model answers `num_questions` GSM8K-test (or MATH-500) questions greedily (graded by
math-verify), then judges its own answer against every other model's, in both orders, with
the direct judge (verdict-token probabilities) and the CoT judge (reasoning, then
"My final verdict is $$X$$"). Metrics per judge: jaxpapers/papers/selfpref/metrics.py.

  python -m jaxpapers.launch --config=configs/selfpref_models.py --workdir=/tmp/sp_models

`models` takes HF directories, .gguf files or named checkpoints; the default is the three
we ship offline (SmolLM2-135M, Qwen2.5-Coder-0.5B and -1.5B Instruct, see BUILD.md).
Variants: `:dataset=math500` (or `humaneval`: code graded by its tests in a sandboxed
subprocess), `:n=64`, `:small` (the two smaller models only). Result: README
"Self-preference".
"""
import ml_collections

from configs import common

MODELS = ('smollm2-135m-instruct', 'qwen2.5-coder-0.5b-instruct', 'qwen2.5-coder-1.5b-instruct')


def get_config(arg=None):
  arg = common.parse_arg(arg, dataset='gsm8k', n=64, small=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'selfpref_models'   # jaxpapers/papers/selfpref/models_study.py
  c.seed = 0                          # question sample and bootstrap
  c.models = MODELS[:2] if arg.small else MODELS
  c.dataset = arg.dataset             # gsm8k | math500
  c.num_questions = arg.n
  c.modes = ('direct', 'cot')
  c.answer_tokens = 320               # greedy answer budget (step by step, boxed answer)
  c.cot_tokens = 320                  # CoT judge budget before the verdict
  c.cot_temperature = 0.0             # 0 = greedy reasoning (deterministic)
  c.batch_size = 8
  c.dtype = 'float32'
  c.bootstrap = 1000
  c.mesh = common.mesh(data=-1)
  return c
