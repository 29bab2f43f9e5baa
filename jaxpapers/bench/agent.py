r"""Multi-turn rollout benchmark: `core.agent.rollout` (kept KV caches) vs the same loop in
transformers (`generate` reusing `past_key_values`), and vs ours re-prefilling every turn.

  python -m jaxpapers.bench.agent
  python -m jaxpapers.bench.agent --repeats=5 --skip_torch
  python -m jaxpapers.bench.agent --system=1024 --skip_torch   # + a shared system prompt

Episodes of 4 policy turns of 64 sampled tokens, with a 128-token observation appended after
each of the first 3 (the env is not called after the last turn): 640 completion tokens per
episode, batch 8, prompt 64, on the random Qwen2 ~39M model of `bench.sampler` (same weights
on both sides through `qwen.save_pretrained`). Sampling T=1, top-k 50, top-p 0.95, no EOS, so
every turn samples all 64 tokens on both sides. Observations are fixed random token ids
(through a pass-through tokenizer, so no tokenizer cost is timed on either side).
The HF loop is what a user writes: `generate(ids, past_key_values=cache,
return_dict_in_generate=True)`, append the observation ids, call again with the returned
cache, so each turn prefills only the new tokens. Reported: episodes/s, policy tokens/s,
process CPU-seconds, and the ratios ours / HF and cached / re-prefill. `--system=n` puts the
same n random tokens (a system prompt) before every prompt and also times the re-prefill loop
and the kept-cache loop with that prefix prefilled once (`AgentConfig.shared_prefix`, the
default) against prefilling it for every row (shared_prefix=0); re-prefilling is what
WebAgent-R1's compressed-history rollouts do every turn.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import jax
import numpy as np

from jaxpapers.bench import sampler as sampler_bench
from jaxpapers.bench import timing
from jaxpapers.core import agent
from jaxpapers.core.models import qwen


class IdTokenizer:
  """Text is space-separated token ids: decoding and encoding cost nothing to speak of."""
  pad_token_id, eos_token_id, unk_token_id = 0, None, None

  def decode(self, ids, skip_special_tokens=True):
    del skip_special_tokens
    return ' '.join(map(str, ids))

  def __call__(self, text, add_special_tokens=False):
    del add_special_tokens
    return {'input_ids': [int(t) for t in text.split()]}

  def convert_tokens_to_ids(self, token):
    del token
    return None


def _args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--batch', type=int, default=8)
  p.add_argument('--prompt', type=int, default=64)
  p.add_argument('--system', type=int, default=0, help='shared prefix tokens before each prompt')
  p.add_argument('--turns', type=int, default=4)
  p.add_argument('--turn_tokens', type=int, default=64)
  p.add_argument('--obs_tokens', type=int, default=128)
  p.add_argument('--repeats', type=int, default=3)
  p.add_argument('--dtype', default='float32')
  p.add_argument('--skip_torch', action='store_true')
  p.add_argument('--torch_threads', type=int, default=0, help='0 = torch default')
  return p.parse_args(argv)


def _observations(a, vocab: int) -> np.ndarray:
  """[turns - 1, batch, obs_tokens] fixed observation ids per turn and row."""
  return np.random.default_rng(1).integers(3, vocab, (a.turns - 1, a.batch, a.obs_tokens))


def bench_ours(model, prompts, obs, a, kv_reuse: bool, shared_prefix: int = 64) -> dict:
  pair = agent.sampler.split(model)
  tok = IdTokenizer()
  cfg = agent.AgentConfig(max_turns=a.turns, max_turn_tokens=a.turn_tokens,
                          max_total_tokens=a.turns * a.turn_tokens + (a.turns - 1) * a.obs_tokens,
                          temperature=1.0, top_k=50, top_p=0.95, env_template='{text}',
                          kv_reuse=kv_reuse, chunk_bucket=16, shared_prefix=shared_prefix)
  turn_of = {}

  def env(rows, turns):
    out = []
    for r in rows:
      k = turn_of.get(r, 0)
      turn_of[r] = k + 1
      out.append(' ' + ' '.join(map(str, obs[k, r])))
    return out

  def run():
    turn_of.clear()
    _, episodes = agent.rollout(pair, tok, [list(p) for p in prompts], env, cfg,
                                rng=jax.random.key(0))
    assert all(sum(ep.mask) == a.turns * a.turn_tokens for ep in episodes)
  first = timing.timed(run, 1)['median_s']
  stats = timing.timed(run, a.repeats)
  return {**stats, 'compile_s': first - stats['median_s']}


def bench_hf(path: str, prompts, obs, a) -> dict | None:
  try:
    import torch
    import transformers
  except ImportError as e:
    print(f'torch side skipped: {e} (pip install torch transformers)')
    return None
  if a.torch_threads:
    torch.set_num_threads(a.torch_threads)
  model = transformers.AutoModelForCausalLM.from_pretrained(
      path, dtype=getattr(torch, a.dtype)).eval()
  kw = dict(do_sample=True, temperature=1.0, top_k=50, top_p=0.95, pad_token_id=0,
            eos_token_id=None, return_dict_in_generate=True)
  # transformers renamed `past_key_values` to `cache` (5.2x); use the name this one has.
  output_cls = transformers.generation.utils.GenerateDecoderOnlyOutput
  cache_name = 'cache' if 'cache' in output_cls.__dataclass_fields__ else 'past_key_values'

  def run(turn_tokens=a.turn_tokens):
    ids, cache = torch.tensor(prompts, dtype=torch.long), None
    with torch.inference_mode():
      for k in range(a.turns):
        out = model.generate(ids, attention_mask=torch.ones_like(ids), **{cache_name: cache},
                             max_new_tokens=turn_tokens, min_new_tokens=turn_tokens, **kw)
        ids, cache = out.sequences, getattr(out, cache_name)
        if k + 1 < a.turns:
          ids = torch.cat([ids, torch.tensor(obs[k], dtype=torch.long)], dim=1)
    assert ids.shape[1] == (a.system + a.prompt + a.turns * turn_tokens
                            + (a.turns - 1) * a.obs_tokens)
  run(4)   # warm-up (allocator, kernels)
  stats = timing.timed(run, a.repeats)
  stats['version'] = (f'torch {torch.__version__} ({torch.get_num_threads()} threads), '
                      f'transformers {transformers.__version__}')
  return stats


def _line(name: str, a, r: dict, extra: str = '') -> str:
  tokens = a.batch * a.turns * a.turn_tokens
  return (f'{name}: {a.batch / r["median_s"]:6.2f} episodes/s, {tokens / r["median_s"]:7.1f} '
          f'policy tok/s, {tokens / r["cpu_s"]:7.1f} per CPU-s (median of '
          f'{[round(t, 2) for t in r["times"]]} s{extra})')


def main(argv=None):
  a = _args(argv)
  cfg = qwen.preset('qwen2-tiny', **sampler_bench.BENCH).replace(dtype=a.dtype,
                                                                  param_dtype=a.dtype)
  model = qwen.init(cfg, seed=0)
  prompts = np.random.default_rng(0).integers(3, cfg.vocab_size, (a.batch, a.prompt))
  if a.system:
    system = np.random.default_rng(2).integers(3, cfg.vocab_size, (1, a.system))
    prompts = np.concatenate([np.repeat(system, a.batch, 0), prompts], axis=1)
  obs = _observations(a, cfg.vocab_size)
  print(f'model: qwen2 {cfg.num_params / 1e6:.1f}M params, {a.dtype}; batch {a.batch}, prompt '
        f'{a.system} shared + {a.prompt}, {a.turns} turns x {a.turn_tokens} sampled + '
        f'{a.obs_tokens}-token observations; jax {jax.__version__} on '
        f'{jax.devices()[0].device_kind}; '
        f'{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}', flush=True)
  cached = bench_ours(model, prompts, obs, a, kv_reuse=True)
  print(_line('ours, kept caches', a, cached, f'; compile {cached["compile_s"]:.1f} s'),
        flush=True)
  full = bench_ours(model, prompts, obs, a, kv_reuse=False)
  print(_line('ours, re-prefill', a, full, f'; compile {full["compile_s"]:.1f} s'), flush=True)
  print(f'ratio: kept caches {full["median_s"] / cached["median_s"]:.2f}x re-prefill '
        f'({full["cpu_s"] / cached["cpu_s"]:.2f}x per CPU-s)', flush=True)
  if a.system:
    for name, kv_reuse, shared in (('kept caches', True, cached), ('re-prefill', False, full)):
      each = bench_ours(model, prompts, obs, a, kv_reuse=kv_reuse, shared_prefix=0)
      print(_line(f'ours, {name}, prefix prefilled per row', a, each,
                  f'; compile {each["compile_s"]:.1f} s'), flush=True)
      print(f'ratio ({name}): shared prefix {each["median_s"] / shared["median_s"]:.2f}x '
            f'per-row prefill ({each["cpu_s"] / shared["cpu_s"]:.2f}x per CPU-s)', flush=True)
  if a.skip_torch:
    return
  with tempfile.TemporaryDirectory() as tmp:
    qwen.save_pretrained(model, tmp)
    ref = bench_hf(tmp, prompts, obs, a)
  if ref is None:
    return
  print(_line('HF generate + past_key_values', a, ref, f'; {ref["version"]}'), flush=True)
  print(f'ratio: {ref["median_s"] / cached["median_s"]:.2f}x the HF loop '
        f'({ref["cpu_s"] / cached["cpu_s"]:.2f}x per CPU-s); load average '
        f'{os.getloadavg()[0]:.1f}', flush=True)


if __name__ == '__main__':
  main()
