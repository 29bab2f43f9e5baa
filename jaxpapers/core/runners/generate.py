"""`generate` experiment: completions from a checkpoint, printed (streamed) and saved.

`model_dir` is an HF checkpoint dir, a `.gguf` file (dequantised on load, tokenizer and chat
template from its metadata) or a named checkpoint (`jaxpapers.core.assets`:
`qwen2.5-coder-0.5b-instruct`, `qwen2.5-coder-1.5b-instruct`, `smollm2-135m-instruct`).
Stages: validate -> mesh -> tokenizer -> model (sharded on load) -> prompts -> sample -> write.
One prompt streams its tokens as they come; `interactive` chats on stdin, keeping the
conversation in the chat template.
"""
from __future__ import annotations

import json
import pathlib
import sys
import time

import jax
from flax import nnx

from jaxpapers.core import assets
from jaxpapers.core import config as config_lib
from jaxpapers.core import gguf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics as metrics_lib
from jaxpapers.core import registry
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.models import loading


def gguf_path(config) -> pathlib.Path | None:
  """The GGUF file `model_dir` names (a path or a checkpoint name), else None."""
  if assets.is_asset(config.model_dir) or loading.is_gguf(config.model_dir):
    return assets.resolve(config.model_dir)
  return None


def validate(config) -> None:
  validate_model(config)
  config_lib.require(bool(config.prompt) or bool(config.prompts_file) or config.interactive,
                     'prompt', 'give a prompt (or config.prompts_file, or config.interactive)')
  config_lib.check_positive(config, 'max_new_tokens', 'num_samples')
  config_lib.require(config.temperature >= 0, 'temperature',
                     f'must be >= 0, got {config.temperature!r}')
  config_lib.require(config.top_k >= 0, 'top_k', f'must be >= 0, got {config.top_k!r}')
  config_lib.require(0 < config.top_p <= 1, 'top_p', f'must be in (0, 1], got {config.top_p!r}')
  try:
    mesh_lib.mesh_shape(config.mesh)
  except ValueError as e:
    raise config_lib.ConfigError(f'config.{e}') from None


def validate_model(config) -> None:
  """The model fields (model_dir, preset, dtype) that `load_model` reads."""
  config_lib.require(bool(config.model_dir) or bool(config.preset), 'model_dir',
                     'set an HF checkpoint dir (or config.preset for random weights)')
  if assets.is_asset(config.model_dir):
    try:
      assets.part_paths(assets.ASSETS.get(config.model_dir))
    except assets.AssetError as e:
      raise config_lib.ConfigError(f'config.model_dir: {e}') from None
  elif config.model_dir and loading.is_gguf(config.model_dir):
    config_lib.require(pathlib.Path(config.model_dir).is_file(), 'model_dir',
                       f'{config.model_dir!r} does not exist')
  elif config.model_dir:
    config_lib.require((pathlib.Path(config.model_dir) / 'config.json').exists(), 'model_dir',
                       f'{config.model_dir!r} has no config.json (nor is it a .gguf file)')
  elif config.preset not in families.presets():
    raise config_lib.ConfigError(f'config.preset: {config.preset!r} unknown; valid: '
                                 f'{sorted(families.presets())}')
  if config.dtype:
    config_lib.check_choice(config, 'dtype', ('float32', 'bfloat16', 'float16'))


def read_prompts(config) -> list[str]:
  if not config.prompts_file:
    return [config.prompt]
  path = pathlib.Path(config.prompts_file)
  lines = [line for line in path.read_text().splitlines() if line.strip()]
  if path.suffix == '.jsonl':
    return [json.loads(line)['prompt'] for line in lines]
  return lines


def tokenizer_for(config):
  if config.tokenizer:
    return tok_lib.load(config.tokenizer)
  path = gguf_path(config)
  if path is not None:
    return gguf.load_tokenizer(path)
  if config.model_dir and (pathlib.Path(config.model_dir) / 'tokenizer.json').exists():
    return tok_lib.load(str(config.model_dir))
  return tok_lib.load('qwen')


def load_model(config, mesh):
  """(graphdef, params) on the mesh: the checkpoint, or a random preset."""
  dtype = config.dtype or None
  path = gguf_path(config)
  if path is not None:
    return sampler.split(gguf.load_decoder(path, dtype=dtype, mesh=mesh))
  if config.model_dir:
    cfg = families.config_for({'hf_dir': config.model_dir})
    return sampler.split(loading.load_decoder(config.model_dir, cfg, dtype=dtype, mesh=mesh))
  cfg = families.config_for({'preset': config.preset})
  if dtype:
    cfg = cfg.replace(dtype=dtype, param_dtype=dtype)
  return sampler.split(layers.Decoder(cfg, nnx.Rngs(params=config.seed)), mesh)


class TextStream:
  """Prints row 0's text as it grows (holding back a partial UTF-8 character)."""

  def __init__(self, out=None):
    self.out, self.shown = out or sys.stdout, ''

  def __call__(self, text: str) -> None:
    text = text.rstrip('\ufffd')
    if text.startswith(self.shown) and len(text) > len(self.shown):
      self.out.write(text[len(self.shown):])
      self.out.flush()
      self.shown = text


def chat_loop(sample, read=input) -> tuple[list, list[str]]:
  """Chats on stdin until EOF or 'exit': each reply streams and joins the conversation."""
  messages, prompts, texts = [], [], []
  while True:
    try:
      line = read('> ').strip()
    except EOFError:
      break
    if line in ('exit', 'quit'):
      break
    if not line:
      continue
    messages.append({'role': 'user', 'content': line})
    prompts.append(line)
    texts.append(sample([list(messages)], on_text=TextStream())[0])
    print(flush=True)
    messages.append({'role': 'assistant', 'content': texts[-1]})
  return prompts, texts


@registry.experiment('generate')
def run(config, workdir: str) -> dict:
  validate(config)
  t_start = time.time()
  mesh = mesh_lib.make_mesh(config.mesh)
  tok = tokenizer_for(config)
  pair = load_model(config, mesh)
  vocab = nnx.merge(*pair).config.vocab_size
  if vocab < len(tok):
    raise config_lib.ConfigError(f'config.tokenizer: {len(tok)} tokens do not fit the model '
                                 f'vocabulary of {vocab}')
  sample = lambda prompts, **kw: sampler.generate_text(  # noqa: E731
      pair, tok, prompts, max_new_tokens=config.max_new_tokens,
      rng=jax.random.key(config.seed), chat=config.chat, system=config.system or None,
      stop=[config.stop] if config.stop else (), temperature=config.temperature,
      top_k=config.top_k, top_p=config.top_p, mesh=mesh, **kw)
  if config.interactive:
    prompts, texts = chat_loop(sample)
  else:
    prompts = [p for p in read_prompts(config) for _ in range(config.num_samples)]
    if len(prompts) == 1:
      print(f'--- [0] {prompts[0]}', flush=True)
      texts = sample(prompts, on_text=TextStream())
      print(flush=True)
    else:
      texts = sample(prompts)
      for i, (p, t) in enumerate(zip(prompts, texts)):
        print(f'--- [{i}] {p}\n{t}', flush=True)
  rows = [{'prompt': p, 'completion': t} for p, t in zip(prompts, texts)]
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  with open(workdir / 'completions.jsonl', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
  results = {'completions': texts, 'wall_s': round(time.time() - t_start, 1)}
  metrics_lib.write_json(workdir / 'results.json', results)
  return results
