"""End to end: the retrieval eval runs all methods, writes outputs and reopens its indexes.

The dense side uses a tiny random BERT saved with the MiniLM tokenizer (fast to compile);
the real MiniLM numbers come from `python -m jaxpapers.launch --config=configs/retrieval_eval.py`.
"""
import importlib.util
import json

import pytest

from configs import retrieval_eval as retrieval_config
from jaxpapers.core.models import bert
from jaxpapers.core.runners import retrieval_eval

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec(bert.MINILM_PACKAGE) is None,
    reason=f'MiniLM tokenizer not installed ({bert.MINILM_INSTALL})')


@needs_minilm
def test_retrieval_eval_runs_and_reopens_indexes(tmp_path):
  cfg = bert.preset('bert-tiny', vocab_size=30522, max_position_embeddings=512,
                    add_pooling_layer=False)
  model_dir = bert.save_pretrained(bert.init(cfg, seed=0), tmp_path / 'tiny',
                                   tokenizer_dir=bert.minilm_dir())
  config = retrieval_config.get_config('test')
  config.data.limit = 6
  config.retriever.dense.hf_dir = str(model_dir)
  config.retriever.dense.max_seq_len = 64
  config.retriever.dense.buckets = (64,)
  first = retrieval_eval.run(config, str(tmp_path / 'run'))
  assert set(first['methods']) == {'bm25', 'dense', 'hybrid'}
  assert first['corpus_size'] == 60 and first['questions'] == 6
  for scores in first['methods'].values():
    assert 0.0 <= scores['recall@1'] <= scores['recall@5'] <= scores['recall@10'] <= 1.0
  assert first['methods']['bm25']['recall@10'] >= 0.5     # BM25 is strong on HotpotQA
  assert not any(first['reopened'].values())
  for name in ('results.json', 'results.md', 'recall.png'):
    assert (tmp_path / 'run' / name).exists()
  again = retrieval_eval.run(config, str(tmp_path / 'run'))
  assert again['reopened'] == {'bm25': True, 'dense': True, 'hybrid': False}
  assert again['methods'] == {m: {**s, 'ms_per_query': again['methods'][m]['ms_per_query']}
                              for m, s in first['methods'].items()}
  assert json.loads((tmp_path / 'run' / 'results.json').read_text())['questions'] == 6


def test_retrieval_eval_bad_method_names_field():
  config = retrieval_config.get_config()
  config.methods = ('bm25', 'splade')
  with pytest.raises(ValueError, match=r"config.methods: 'splade' unknown"):
    retrieval_eval.validate(config)
