"""`generate` experiment: completions from an HF checkpoint dir, printed and saved.

Stages: validate -> mesh -> tokenizer -> model (sharded on load) -> prompts -> sample -> write.
"""
from __future__ import annotations

import json
import pathlib
import time

import jax
from flax import nnx

from jaxpapers.core import config as config_lib
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.models import loading


def validate(config) -> None:
  config_lib.require(bool(config.model_dir) or bool(config.preset), 'model_dir',
                     'set an HF checkpoint dir (or config.preset for random weights)')
  if config.model_dir:
    config_lib.require((pathlib.Path(config.model_dir) / 'config.json').exists(), 'model_dir',
                       f'{config.model_dir!r} has no config.json')
  elif config.preset not in families.presets():
    raise config_lib.ConfigError(f'config.preset: {config.preset!r} unknown; valid: '
                                 f'{sorted(families.presets())}')
  config_lib.require(bool(config.prompt) or bool(config.prompts_file), 'prompt',
                     'give a prompt (or config.prompts_file)')
  config_lib.check_positive(config, 'max_new_tokens', 'num_samples')
  config_lib.require(config.temperature >= 0, 'temperature',
                     f'must be >= 0, got {config.temperature!r}')
  config_lib.require(config.top_k >= 0, 'top_k', f'must be >= 0, got {config.top_k!r}')
  config_lib.require(0 < config.top_p <= 1, 'top_p', f'must be in (0, 1], got {config.top_p!r}')
  if config.dtype:
    config_lib.check_choice(config, 'dtype', ('float32', 'bfloat16', 'float16'))
  try:
    mesh_lib.mesh_shape(config.mesh)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.{e}') from None


def read_prompts(config) -> list[str]:
  if not config.prompts_file:
    return [config.prompt]
  path = pathlib.Path(config.prompts_file)
  lines = [line for line in path.read_text().splitlines() if line.strip()]
  if path.suffix == '.jsonl':
    return [json.loads(line)['prompt'] for line in lines]
  return lines


def _tokenizer(config):
  if config.tokenizer:
    return tok_lib.load(config.tokenizer)
  if config.model_dir and (pathlib.Path(config.model_dir) / 'tokenizer.json').exists():
    return tok_lib.load(str(config.model_dir))
  return tok_lib.load('qwen')


def load_model(config, mesh):
  """(graphdef, params) on the mesh: the checkpoint, or a random preset."""
  dtype = config.dtype or None
  if config.model_dir:
    cfg = families.config_for({'hf_dir': config.model_dir})
    return sampler.split(loading.load_decoder(config.model_dir, cfg, dtype=dtype, mesh=mesh))
  cfg = families.config_for({'preset': config.preset})
  if dtype:
    cfg = cfg.replace(dtype=dtype, param_dtype=dtype)
  return sampler.split(layers.Decoder(cfg, nnx.Rngs(params=config.seed)), mesh)


@registry.experiment('generate')
def run(config, workdir: str) -> dict:
  validate(config)
  t_start = time.time()
  mesh = mesh_lib.make_mesh(config.mesh)
  tok = _tokenizer(config)
  pair = load_model(config, mesh)
  vocab = nnx.merge(*pair).config.vocab_size
  if vocab < len(tok):
    raise config_lib.ConfigError(f'config.tokenizer: {len(tok)} tokens do not fit the model '
                                 f'vocabulary of {vocab}')
  prompts = [p for p in read_prompts(config) for _ in range(config.num_samples)]
  texts = sampler.generate_text(
      pair, tok, prompts, max_new_tokens=config.max_new_tokens,
      rng=jax.random.key(config.seed), chat=config.chat, system=config.system or None,
      stop=[config.stop] if config.stop else (), temperature=config.temperature,
      top_k=config.top_k, top_p=config.top_p, mesh=mesh)
  rows = [{'prompt': p, 'completion': t} for p, t in zip(prompts, texts)]
  for i, row in enumerate(rows):
    print(f'--- [{i}] {row["prompt"]}\n{row["completion"]}', flush=True)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  with open(workdir / 'completions.jsonl', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
  results = {'completions': texts, 'wall_s': round(time.time() - t_start, 1)}
  metrics_lib.write_json(workdir / 'results.json', results)
  return results
