"""GGUF `qwen2`/`qwen3` architectures: files written the way llama.cpp's `Qwen2Model` /
`Qwen3Model` write them (q/k rows as in HF, q/k/v biases, q/k norms, tied or untied output)
load back as our Qwen decoders with the source params exactly and the torch goldens' logits;
the converter writes them as HF Qwen directories. The writer is `test_gguf.write_gguf`, which
does not use `jaxpapers.core.gguf`'s name map."""
import json

import chex
import numpy as np
import pytest

from jaxpapers.core import gguf
from jaxpapers.core.models import families
from jaxpapers.core.models import loading
from jaxpapers.core.models import qwen
from tests.core import test_gguf

GOLDENS = ('qwen2_tied', 'qwen2_untied', 'qwen3_tied', 'qwen3_untied')


def _source(golden_dir, name):
  path = golden_dir / 'qwen' / name
  with np.load(path / 'golden.npz') as f:
    return qwen.from_pretrained(path), dict(f)


@pytest.mark.parametrize('name', GOLDENS)
def test_load_decoder_qwen_f32_gguf_params_exact_and_logits_match_torch(golden_dir, tmp_path,
                                                                       name):
  source, batch = _source(golden_dir, name)
  path = test_gguf.write_gguf(tmp_path / 'm.gguf', source, arch=source.config.family)
  model = qwen.from_pretrained(path)
  assert model.config == source.config
  chex.assert_trees_all_equal(loading.params_of(model), loading.params_of(source))
  err = test_gguf._max_err(test_gguf._forward(model, batch), batch['logits'],
                           batch['attention_mask'])
  print(f'{name} F32 GGUF: max |ours - torch| = {err:.2e}')
  assert err < test_gguf.ATOL


def test_hf_config_qwen2_gguf_is_qwen2_config_json(golden_dir, tmp_path):
  source, _ = _source(golden_dir, 'qwen2_untied')
  raw = gguf.hf_config(test_gguf.write_gguf(tmp_path / 'm.gguf', source, arch='qwen2'))
  assert raw['model_type'] == 'qwen2' and raw['attention_bias']
  assert not raw['tie_word_embeddings'] and raw['rope_theta'] == source.config.rope_theta


def test_to_hf_dir_qwen3_gguf_writes_qwen3_dir_with_equal_params(golden_dir, tmp_path):
  source, _ = _source(golden_dir, 'qwen3_untied')
  path = test_gguf.write_gguf(tmp_path / 'm.gguf', source, arch='qwen3')
  gguf.to_hf_dir(path, tmp_path / 'hf')
  assert json.loads((tmp_path / 'hf' / 'config.json').read_text())['model_type'] == 'qwen3'
  converted = families.from_pretrained(tmp_path / 'hf')
  assert converted.config == source.config
  chex.assert_trees_all_equal(loading.params_of(converted), loading.params_of(source))
