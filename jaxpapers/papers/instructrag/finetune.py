"""InstructRAG-FT and vanilla SFT: (documents + question -> target) through core's SFT step.

The example is the inference prompt (prompts.encode) followed by the target and the
tokenizer's EOS; the loss covers exactly the target and EOS tokens (the reference's
`preprocess_for_rag` labels `rationale + eos_token` and masks the rest with -100). Targets:
the synthesised rationale (InstructRAG-FT) or the first gold answer (vanilla SFT).
Optimiser: AdamW, lr 2.5e-5 with linear warm-up over ceil(0.03 x steps) and cosine decay
to 0, grad-norm clip 1.0, no weight decay (the reference's train.sh on HF Trainer); steps =
ceil(epochs x examples / batch) unless `max_steps` is set. Each batch is cut to its longest
example rounded up to `trim_multiple` tokens (examples are padded to `seq_len`), which
leaves the loss unchanged and makes a step cost what the batch needs. `remat` recomputes
each block in the backward pass; `grad_accum_steps` runs the batch as that many slices
(core.rl.sft: the same loss and gradient, activations of one slice), as the reference's
gradient accumulation.
Training starts from the loaded weights (a GGUF is dequantised to `model.dtype`), resumes from
its own Orbax checkpoints (train state and data iterator), and returns the trained params.
"""
from __future__ import annotations

import math
import pathlib
from typing import Sequence

from flax import nnx

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import data as data_lib
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import layers
from jaxpapers.core.models import loading
from jaxpapers.core.rl import sft as sft_lib


def example(tok, prompt_ids: Sequence[int], target: str, seq_len: int) -> dict:
  """tokens / loss_mask / attention_mask [seq_len]: loss on the target + EOS tokens only."""
  return data_lib.pad_example(prompt_ids, tok_lib.encode(tok, target + (tok.eos_token or '')),
                              seq_len, tok.pad_token_id)


def num_steps(n_examples: int, ft) -> int:
  return ft.max_steps or math.ceil(ft.epochs * n_examples / ft.batch_size)


def optimizer_config(ft, steps: int) -> dict:
  return {**ft.optimizer.to_dict(), 'warmup_steps': math.ceil(ft.warmup_ratio * steps)}


def train(model, examples: Sequence[dict], ft, seed: int, workdir: pathlib.Path, mesh):
  """(graphdef, trained params) of `model` ((graphdef, params)) after SFT on `examples`."""
  workdir = pathlib.Path(workdir)
  steps = num_steps(len(examples), ft)
  cfg = nnx.merge(*model).config.replace(remat=ft.remat)
  base = loading.params_of(nnx.merge(*model))

  # --- data: shuffled, repeated, batched; its iterator is checkpointed with the state
  data_iter = iter(data_lib.batched_pipeline(list(examples), dict, ft.batch_size, seed,
                                             trim_multiple=ft.trim_multiple))
  batch_sharding = mesh_lib.batch_sharding(mesh)

  # --- abstract state and shardings (nothing random is allocated: init is only compiled)
  make = lambda: layers.Decoder(cfg, nnx.Rngs(params=seed))  # noqa: E731
  graphdef, abstract_params, _ = hf.abstract_params(make)
  optimizer = train_lib.make_optimizer(optimizer_config(ft, steps), steps)
  _, abstract, shardings = train_lib.sharded_state(
      lambda: nnx.to_pure_dict(nnx.state(make(), nnx.Param)),
      mesh_lib.param_shardings(abstract_params, mesh), optimizer, seed, mesh)

  # --- restore: own checkpoint > the loaded weights
  ckpt = ckpt_lib.Checkpointer(workdir / 'checkpoints', ft.checkpoint.every,
                               ft.checkpoint.keep, ft.checkpoint.async_save)
  state, start = train_lib.restore_or_init(
      ckpt, abstract, lambda: train_lib.init_from_params(base, optimizer, seed, shardings),
      data_iter)
  del base

  # --- step and loop
  step_fn = train_lib.compile_step(
      sft_lib.make_train_step(graphdef, optimizer, grad_accum_steps=ft.grad_accum_steps),
      shardings, mesh, {'tokens': 2, 'loss_mask': 2, 'attention_mask': 2})
  writer = metrics_lib.MetricWriter(workdir)
  writer.truncate_after(start)
  batches = (data_lib.to_global(b, batch_sharding) for b in data_iter)
  state = train_lib.run_loop(step_fn, state, batches, start_step=start, total_steps=steps,
                             log_every=ft.log_every, checkpointer=ckpt, writer=writer,
                             data_iter=data_iter, tokens_key='tokens', desc='sft')
  ckpt.save(steps, state, data_iter, force=True)
  ckpt.close()
  return graphdef, state.params
