"""Supervised fine-tuning of a decoder on chat-formatted jsonl (the quickstart).

Stages: mesh -> data -> abstract state -> shardings -> step -> restore -> loop -> save.
"""
from __future__ import annotations

import pathlib
import time

from absl import logging
from flax import nnx

from jaxpapers.core import checkpoint as ckpt_lib
from jaxpapers.core import config as config_lib
from jaxpapers.core import data as data_lib
from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import paths
from jaxpapers.core import registry
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.rl import sft as sft_lib


def validate(config) -> None:
  config_lib.check_positive(config, 'steps', 'batch_size', 'seq_len', 'log_every',
                            'grad_accum_steps', 'optimizer.learning_rate')
  config_lib.check_choice(config, 'data.format', data_lib.FORMATS)
  config_lib.check_choice(config, 'optimizer.schedule', ('linear', 'cosine', 'constant'))
  config_lib.require(config.model.hf_dir or config.model.preset in families.presets(),
                     'model.preset', f'{config.model.preset!r} unknown; valid: '
                     f'{sorted(families.presets())}')
  try:
    mesh_lib.mesh_shape(config.mesh)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.{e}') from None


@registry.experiment('sft')
def run(config, workdir: str) -> dict:
  validate(config)
  workdir = pathlib.Path(workdir)
  t_start = time.time()

  # --- mesh
  mesh = mesh_lib.make_batch_mesh(config)
  config_lib.check_divisible(config, 'batch_size',
                             config.grad_accum_steps * mesh_lib.batch_divisor(mesh),
                             f'{config.grad_accum_steps} grad_accum_steps slices over the mesh')

  # --- data
  tok = tok_lib.load(config.tokenizer)
  records = data_lib.read_jsonl(paths.data_file(config.data.train_file),
                                limit=config.data.limit or None)
  transform = data_lib.SFTTokenizer(tok, data_lib.FORMATS[config.data.format], config.seq_len,
                                    system=config.data.system or None)
  data_iter = iter(data_lib.batched_pipeline(records, transform, config.batch_size, config.seed))
  batch_sharding = mesh_lib.batch_sharding(mesh)

  # --- abstract state and shardings
  mcfg = families.config_for(config.model)
  if mcfg.vocab_size < len(tok):
    raise config_lib.ConfigError(f'config.model: vocab_size {mcfg.vocab_size} < tokenizer '
                                 f'size {len(tok)}')
  make_model = lambda: layers.Decoder(mcfg, nnx.Rngs(params=config.seed))  # noqa: E731
  graphdef, abstract_params, _ = hf.abstract_params(make_model)
  param_shardings = mesh_lib.param_shardings(abstract_params, mesh)
  optimizer = train_lib.make_optimizer(config.optimizer, config.steps)
  params_fn = lambda: nnx.to_pure_dict(nnx.state(make_model(), nnx.Param))  # noqa: E731
  init, abstract, shardings = train_lib.sharded_state(params_fn, param_shardings, optimizer,
                                                      config.seed, mesh)

  # --- restore: own checkpoint > resume_from > HF params > scratch
  ckpt = ckpt_lib.Checkpointer(workdir / 'checkpoints', config.checkpoint.every,
                               config.checkpoint.keep, config.checkpoint.async_save)
  def fresh():
    if config.model.hf_dir:
      params = families.load_hf_params(config.model, mesh)
      return train_lib.init_from_params(params, optimizer, config.seed, shardings)
    return init()
  state, start = train_lib.restore_or_init(ckpt, abstract, fresh, data_iter,
                                           config.resume_from or None)
  logging.info('model %s: %.2fM params; starting at step %d', mcfg.family,
               mcfg.num_params / 1e6, start)

  # --- step
  step_fn = train_lib.compile_step(
      sft_lib.make_train_step(graphdef, optimizer, grad_accum_steps=config.grad_accum_steps),
      shardings, mesh, {'tokens': 2, 'loss_mask': 2, 'attention_mask': 2})

  # --- loop
  writer = metrics_lib.MetricWriter(workdir)
  writer.truncate_after(start)
  batches = (data_lib.to_global(b, batch_sharding) for b in data_iter)
  state = train_lib.run_loop(step_fn, state, batches, start_step=start,
                             total_steps=config.steps, log_every=config.log_every,
                             checkpointer=ckpt, writer=writer, data_iter=data_iter,
                             tokens_key='tokens', desc='sft')

  # --- final save, plots, results
  ckpt.save(config.steps, state, data_iter, force=True)
  ckpt.close()
  rows = metrics_lib.read_metrics(workdir)
  metrics_lib.plot_curves(rows, ['loss', 'grad_norm'], workdir / 'loss.png',
                          title=f'SFT {mcfg.family} on {config.data.train_file}')
  results = {'first_loss': rows[0]['loss'] if rows else None,
             'last_loss': rows[-1]['loss'] if rows else None,
             'steps': config.steps, 'wall_s': round(time.time() - t_start, 1)}
  metrics_lib.write_json(workdir / 'results.json', results)
  print(f'done: loss {results["first_loss"]:.3f} -> {results["last_loss"]:.3f} in '
        f'{results["wall_s"]} s; outputs in {workdir}', flush=True)
  return results
