"""GGUF -> HF converter (configs/convert.py): writes a llama.cpp file as an HF directory of its
family (Llama, Qwen2, Qwen3).

Stages: validate -> resolve the source -> dequantise and write (jaxpapers.core.gguf.to_hf_dir)
-> optional verify (reload the directory with our HF loader, params must equal the GGUF's
dequantised values cast to the written dtype) -> results.json in the workdir.
"""
from __future__ import annotations

import json
import pathlib
import time

import jax
import numpy as np

from jaxpapers.core import assets
from jaxpapers.core import config as config_lib
from jaxpapers.core import gguf
from jaxpapers.core import hf
from jaxpapers.core import registry
from jaxpapers.core.models import families
from jaxpapers.core.models import layers
from jaxpapers.core.models import loading

DTYPES = ('float32', 'bfloat16', 'float16')


def validate(config) -> None:
  config_lib.check_choice(config, 'dtype', DTYPES)
  src = str(config.src)
  config_lib.require(assets.is_asset(src) or loading.is_gguf(src), 'src',
                     f'{src!r} is neither a .gguf file nor a checkpoint name '
                     f'{assets.ASSETS.names()}')
  if not assets.is_asset(src):
    config_lib.require(pathlib.Path(src).is_file(), 'src', f'{src!r} does not exist')


def verify(src: pathlib.Path, out: pathlib.Path, dtype: str) -> float:
  """Max |written - GGUF| over all params (0.0 for float32)."""
  ours = hf.flatten(loading.params_of(gguf.load_decoder(src)))
  written = hf.flatten(loading.params_of(families.from_pretrained(out)))
  if set(ours) != set(written):
    raise AssertionError(f'{out}: params {sorted(set(ours) ^ set(written))[:5]} differ')
  np_dtype = np.dtype(layers.as_dtype(dtype))
  err = 0.0
  for key, value in ours.items():
    expected = np.asarray(jax.device_get(value)).astype(np_dtype).astype(np.float32)
    err = max(err, float(np.abs(np.asarray(written[key], np.float32) - expected).max()))
  return err


@registry.experiment('convert')
def run(config, workdir: str) -> dict:
  validate(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)

  # --- source
  src = assets.resolve(config.src)
  out = pathlib.Path(config.out_dir) if config.out_dir else workdir / 'hf'
  print(f'convert: {src} -> {out} ({config.dtype})', flush=True)

  # --- dequantise and write
  start = time.perf_counter()
  gguf.to_hf_dir(src, out, dtype=config.dtype, tokenizer=config.tokenizer)
  seconds = time.perf_counter() - start
  files = sorted(p.name for p in out.iterdir())
  results = {'src': str(src), 'out_dir': str(out), 'dtype': config.dtype, 'files': files,
             'seconds': round(seconds, 2),
             'bytes': sum(p.stat().st_size for p in out.iterdir())}

  # --- verify
  if config.verify:
    results['max_abs_diff'] = verify(src, out, config.dtype)
  (workdir / 'results.json').write_text(json.dumps(results, indent=2))
  print(f'wrote {len(files)} files ({results["bytes"] / 1e6:.1f} MB) in {seconds:.1f} s: '
        f'{", ".join(files)}', flush=True)
  return results
