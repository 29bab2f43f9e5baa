r"""GRPO step benchmark: our rollout + jitted update vs TRL's `GRPOTrainer` (torch), CPU.

  python -m jaxpapers.bench.grpo                    # the issue's setting
  python -m jaxpapers.bench.grpo --repeats=5 --skip_trl
  python -m jaxpapers.bench.grpo --torch_threads=0,1

Model: one random Qwen2-style decoder with the real Qwen vocabulary (151936; the Qwen
tokenizer is shared by both sides), hidden 256, intermediate 704, 4 layers, 4 heads, 2 KV heads,
head_dim 64, tied embeddings (41.8M params, 38.9M of them the embedding; float32). It is built in
our code, written with `qwen.save_pretrained` (+ the Qwen tokenizer files) and loaded by
transformers' `Qwen2ForCausalLM` for TRL, so both sides start from the same weights.

One GRPO step, identical on both sides (TRL 1.x defaults unless stated):
  1. rollout: P=4 prompts (fixed strings of 32 single-token words, 32 tokens each, no padding)
     each repeated G=4 times -> 16 rows; sample 64 new tokens per row (temperature 1, top-k
     off, top-p 1). EOS cannot end a row (ours: no stop ids; TRL: `min_new_tokens` = 64), so
     every completion has exactly 64 tokens (asserted on both sides). Decode the completions,
     score them with the same Python reward (`_reward`: fraction of ASCII letters), group
     advantages (mean/std per group, scale_rewards='group').
  2. update: one forward + backward of the GRPO loss on the 16 x (32 + 64) sequences
     (loss_type='dapo', epsilon 0.2, beta=0.0 so no reference model or KL, num_iterations=1
     so the ratio is 1 and no old log-probs are computed; per-token entropy is computed as TRL
     does for its metric), global-norm clipping at 1.0 and one AdamW step (lr 1e-6, linear
     decay, weight decay 0). The whole 16-row batch is one optimizer step
     (per_device_train_batch_size = 16, gradient_accumulation_steps = 1). TRL runs without
     gradient checkpointing (its GRPOConfig default is on; on CPU it only adds a recompute, so
     off is the faster TRL; `--trl_gradient_checkpointing` turns it back on).
Ours: `sampler.generate` + host decode/reward + `grpo_learner.group_advantages` (rollout), then
one `jit(grpo_learner.make_train_step)` call with the state donated (update). Compile time is
the first step minus a timed step, reported apart. TRL: `trainer.train()` for 1 + `--repeats`
steps; a callback times each optimizer step (on_step_begin -> on_step_end) and a wrapper times
`_generate_and_score_completions` (generation, decode, reward, advantages) inside it; update =
step - rollout (loss forward + backward, clipping, AdamW). The first TRL step is a warm-up and
is dropped. Times are medians over `--repeats` steps; both wall and process CPU seconds (all
threads) are printed, since wall time on a small shared CPU is noisy and CPU time is steadier.
torch runs with its default threads (all cores) unless `--torch_threads` says otherwise. The
TRL side is skipped with a message when torch / transformers / trl / datasets are missing
(`pip install -e .[parity]`).

Measured (2-core shared CPU; torch 2.13, transformers 5.24, trl 1.16), `--torch_threads=1`
at load 3.3: ours step 17.2 s / 17.0 CPU-s (rollout 7.6, update 9.8; compile 16 s), TRL step
38.0 s / 37.4 CPU-s (rollout 12.6, update 25.5): 2.22x wall, 2.20x CPU-s per step; update
alone 2.61x. With torch's default 2 threads (load 7.3-7.8, before our update skipped the
prompt's vocabulary projection) TRL's threads thrash under load: 6.9x wall, 4.4x CPU-s.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import jax
import numpy as np

from jaxpapers.bench import timing
from jaxpapers.core import hf
from jaxpapers.core import sampler
from jaxpapers.core import tokenizer as tok_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import qwen
from jaxpapers.core.rl import advantages as adv_lib
from jaxpapers.core.rl import grpo as grpo_lib
from jaxpapers.core.rl import grpo_learner

BENCH = dict(vocab_size=151936, hidden_size=256, intermediate_size=704, num_hidden_layers=4,
             num_attention_heads=4, num_key_value_heads=2, head_dim=64,
             tie_word_embeddings=True)
# Common English words that are one Qwen token each with a leading space (checked at runtime),
# so every prompt is exactly --prompt tokens and neither side pads.
WORDS = ('the of and to in is it that for on with as was at by be this from or an are not but '
         'have all they one can had her which you were their we there been has more will when '
         'two time if so what about out up them some into other than then only its like over '
         'also after new first these any most years may such could where way made through well '
         'down many even back still must good much own see long great just those people right '
         'know three four five six seven house water world city state light music river stone '
         'green blue red black white small large old young').split()
OPTIMIZER = dict(learning_rate=1e-6, max_grad_norm=1.0, weight_decay=0.0, schedule='linear')


def _args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--prompts', type=int, default=4, help='P distinct prompts per step')
  p.add_argument('--generations', type=int, default=4, help='G completions per prompt')
  p.add_argument('--prompt', type=int, default=32, help='prompt length in tokens')
  p.add_argument('--new', type=int, default=64, help='completion length in tokens')
  p.add_argument('--repeats', type=int, default=3, help='timed steps per side')
  p.add_argument('--hidden', type=int, default=BENCH['hidden_size'])
  p.add_argument('--intermediate', type=int, default=BENCH['intermediate_size'])
  p.add_argument('--layers', type=int, default=BENCH['num_hidden_layers'])
  p.add_argument('--skip_trl', action='store_true')
  p.add_argument('--trl_gradient_checkpointing', action='store_true',
                 help="TRL's default; off unless given (off is faster on CPU)")
  p.add_argument('--torch_threads', default='0',
                 help='comma list of torch thread counts to time; 0 = torch default (all cores)')
  return p.parse_args(argv)



class _Clock:
  """Wall and process-CPU seconds of named phases, one entry per step."""

  def __init__(self):
    self.wall, self.cpu = {}, {}

  def add(self, name, wall, cpu):
    self.wall.setdefault(name, []).append(wall)
    self.cpu.setdefault(name, []).append(cpu)

  def summary(self, skip: int = 0) -> dict:
    """Medians per phase over the steps after the first `skip`; update = step - rollout."""
    out = {}
    for name in self.wall:
      w, c = self.wall[name][skip:], self.cpu[name][skip:]
      out[name] = timing.summary(w, c)
    if 'update' not in out:
      w = [s - r for s, r in zip(self.wall['step'][skip:], self.wall['rollout'][skip:])]
      c = [s - r for s, r in zip(self.cpu['step'][skip:], self.cpu['rollout'][skip:])]
      out['update'] = timing.summary(w, c)
    return out


def _reward(text: str) -> float:
  """Fraction of ASCII letters: cheap, deterministic, varies within a group."""
  return sum(ch.isascii() and ch.isalpha() for ch in text) / max(len(text), 1)


def make_prompts(tok, n: int, length: int, seed: int = 0) -> list[str]:
  """`n` strings of `length` words, each exactly `length` Qwen tokens."""
  rng = np.random.default_rng(seed)
  prompts = [' '.join(rng.choice(WORDS, length)) for _ in range(n)]
  lengths = {len(tok_lib.encode(tok, p)) for p in prompts}
  assert lengths == {length}, f'prompt token lengths {lengths}, wanted {length}'
  return prompts


# ----------------------------------------------------------------------------- ours


def bench_ours(model, tok, prompts: list[str], a) -> dict:
  """Rollout + update per step (first step = compile), times per phase."""
  g, total_steps = a.generations, 1 + a.repeats
  graphdef, params = sampler.split(model)
  optimizer = train_lib.make_optimizer(OPTIMIZER, total_steps)
  state = jax.jit(lambda p: train_lib.state_from_params(p, optimizer, 0))(params)
  loss_cfg = grpo_lib.GRPOLossConfig(max_completion_length=a.new)
  update = jax.jit(grpo_learner.make_train_step(graphdef, optimizer, loss_cfg,
                                                use_old_logps=False), donate_argnums=(0,))
  adv_cfg = adv_lib.AdvantageConfig()
  rows = [tok_lib.encode(tok, p) for p in prompts for _ in range(g)]  # TRL's repeat order
  p_tokens, p_mask = sampler.pad_prompts(rows, tok.pad_token_id, bucket=1)
  clock = _Clock()
  for i in range(total_steps):
    t0, c0 = time.perf_counter(), timing.cpu_seconds()
    out = sampler.generate((graphdef, state.params), p_tokens, prompt_mask=p_mask,
                           max_new_tokens=a.new, rng=jax.random.key(i), temperature=1.0,
                           eos_ids=(), pad_id=tok.pad_token_id)
    c_tokens, lengths = np.asarray(out.tokens), np.asarray(out.lengths)
    assert (lengths == a.new).all(), lengths
    texts = tok.batch_decode(c_tokens.tolist(), skip_special_tokens=True)
    rewards = np.array([_reward(t) for t in texts], np.float32)
    adv = grpo_learner.group_advantages(rewards, g, adv_cfg)
    c_mask = np.ones(c_tokens.shape, np.int32)
    tokens, kv_mask = grpo_learner.assemble(p_tokens, p_mask, c_tokens, c_mask)
    zeros = np.zeros(c_mask.shape, np.float32)
    batch = grpo_learner.RolloutBatch(tokens, kv_mask, c_mask, adv, zeros, zeros)
    t1, c1 = time.perf_counter(), timing.cpu_seconds()
    state, metrics = update(state, batch, state.rng)
    loss = float(metrics['loss'])
    t2, c2 = time.perf_counter(), timing.cpu_seconds()
    clock.add('rollout', t1 - t0, c1 - c0)
    clock.add('update', t2 - t1, c2 - c1)
    clock.add('step', t2 - t0, c2 - c0)
  assert np.isfinite(loss)
  stats = clock.summary(skip=1)
  stats['compile_s'] = clock.wall['step'][0] - stats['step']['median_s']
  return stats


# ----------------------------------------------------------------------------- TRL


def bench_trl(path: str, prompts: list[str], a, threads: int) -> dict | None:
  """TRL GRPOTrainer on the same weights, prompts and step definition."""
  try:
    import datasets
    import torch
    import transformers
    import trl
  except ImportError as e:
    print(f'TRL side skipped: {e} (pip install -e .[parity])')
    return None
  default_threads = torch.get_num_threads()
  torch.set_num_threads(threads or default_threads)
  transformers.logging.set_verbosity_error()
  warnings.filterwarnings('ignore', category=FutureWarning)  # transformers 5 renames
  model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
  tok = transformers.AutoTokenizer.from_pretrained(path)
  rows = a.prompts * a.generations

  def reward(prompts, completions, completion_ids, **kwargs):
    del prompts, kwargs
    assert all(len(c) == a.new for c in completion_ids), [len(c) for c in completion_ids]
    return [_reward(c) for c in completions]

  clock = _Clock()
  marks = {}

  class Timer(transformers.TrainerCallback):
    def on_step_begin(self, args, state, control, **kwargs):
      marks['step'] = (time.perf_counter(), timing.cpu_seconds())

    def on_step_end(self, args, state, control, **kwargs):
      t0, c0 = marks.pop('step')
      clock.add('step', time.perf_counter() - t0, timing.cpu_seconds() - c0)

  with tempfile.TemporaryDirectory() as out_dir:
    cfg = trl.GRPOConfig(
        output_dir=out_dir, num_generations=a.generations, per_device_train_batch_size=rows,
        gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=1,
        max_completion_length=a.new, max_steps=1 + a.repeats,
        learning_rate=OPTIMIZER['learning_rate'], lr_scheduler_type='linear', warmup_steps=0,
        weight_decay=0.0, max_grad_norm=1.0, beta=0.0, loss_type='dapo', epsilon=0.2,
        scale_rewards='group', temperature=1.0, top_p=1.0, top_k=0,
        generation_kwargs={'min_new_tokens': a.new},
        gradient_checkpointing=a.trl_gradient_checkpointing, use_vllm=False, bf16=False,
        fp16=False, use_cpu=True, report_to='none', logging_steps=1_000_000,
        save_strategy='no', disable_tqdm=True, seed=0, dataloader_num_workers=0,
        log_completions=False)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=reward, args=cfg,
                              train_dataset=datasets.Dataset.from_dict({'prompt': prompts}),
                              processing_class=tok, callbacks=[Timer()])
    generate = trainer._generate_and_score_completions

    def timed_generate(*args, **kwargs):  # rollout: generate, decode, reward, advantages
      t0, c0 = time.perf_counter(), timing.cpu_seconds()
      out = generate(*args, **kwargs)
      clock.add('rollout', time.perf_counter() - t0, timing.cpu_seconds() - c0)
      assert out['completion_ids'].shape == (rows, a.new), out['completion_ids'].shape
      return out
    trainer._generate_and_score_completions = timed_generate
    trainer.train()
  assert len(clock.wall['step']) == len(clock.wall['rollout']) == 1 + a.repeats
  stats = clock.summary(skip=1)
  stats.update(threads=torch.get_num_threads(), version=f'torch {torch.__version__}, '
               f'transformers {transformers.__version__}, trl {trl.__version__}')
  torch.set_num_threads(default_threads)
  return stats


# ----------------------------------------------------------------------------- report


def _line(name: str, r: dict, extra: str = '') -> str:
  parts = [f'{k} {r[k]["median_s"]:6.2f} s ({r[k]["cpu_s"]:6.2f} CPU-s)'
           for k in ('step', 'rollout', 'update')]
  return (f'{name}: ' + ', '.join(parts) +
          f'  [steps {[round(t, 2) for t in r["step"]["times"]]} s{extra}]')


def _ratio(ours: dict, ref: dict, threads: int) -> str:
  parts = [f'{k} {ref[k]["median_s"] / ours[k]["median_s"]:.2f}x '
           f'({ref[k]["cpu_s"] / ours[k]["cpu_s"]:.2f}x CPU-s)'
           for k in ('step', 'rollout', 'update')]
  return (f'ratio TRL/ours ({threads} torch threads): ' + ', '.join(parts) +
          f'; load average {os.getloadavg()[0]:.1f}')


def main(argv=None):
  a = _args(argv)
  cfg = qwen.preset('qwen2-tiny', **{**BENCH, 'hidden_size': a.hidden,
                                     'intermediate_size': a.intermediate,
                                     'num_hidden_layers': a.layers})
  model = qwen.init(cfg, seed=0)
  tok = tok_lib.load('qwen')
  prompts = make_prompts(tok, a.prompts, a.prompt)
  print(f'model: {cfg.family} {cfg.num_params / 1e6:.1f}M params, float32; {a.prompts} prompts '
        f'x G={a.generations}, prompt {a.prompt} + {a.new} new tokens; beta=0, dapo, 1 AdamW '
        f'step; jax {jax.__version__} on {jax.devices()[0].device_kind}; {os.cpu_count()} '
        f'cores, load average {os.getloadavg()[0]:.1f}', flush=True)
  ours = bench_ours(model, tok, prompts, a)
  print(_line('ours', ours, f'; compile {ours["compile_s"]:.1f} s'), flush=True)
  if a.skip_trl:
    return
  with tempfile.TemporaryDirectory() as tmp:
    qwen.save_pretrained(model, tmp)
    hf.copy_tokenizer_files(tok_lib.builtin_dir('qwen'), tmp)
    for threads in [int(t) for t in a.torch_threads.split(',')]:
      ref = bench_trl(tmp, prompts, a, threads)
      if ref is None:
        return
      print(_line(f'TRL ({ref["threads"]} thr)', ref, f'; {ref["version"]}'), flush=True)
      print(_ratio(ours, ref, ref['threads']), flush=True)


if __name__ == '__main__':
  main()
