"""Synthetic verifiable tasks with a character tokenizer, for runs that learn on a CPU.

`addition`: prompt "37+45=" -> answer "82". A tiny decoder learns it from scratch in minutes,
so GRPO / DPO toy runs show a clear reward rise without pretrained weights. Answers are
checked by string equality, so the reward is verifiable and cheap.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

_CHARS = '0123456789+-*=<> '


@dataclasses.dataclass(frozen=True)
class CharTokenizer:
  """PAD=0, BOS=1, EOS=2, then one id per character of `chars`."""
  chars: str = _CHARS
  pad_token_id: int = 0
  bos_token_id: int = 1
  eos_token_id: int = 2
  unk_token_id = None
  unknown: str = ''     # stands in for characters outside `chars` ('' = they raise)

  def __len__(self) -> int:
    return 3 + len(self.chars)

  def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
    """HF-tokenizer style call (the agent loop encodes observations this way)."""
    ids = self.encode(text)
    return {'input_ids': [self.bos_token_id] + ids if add_special_tokens else ids}

  def convert_tokens_to_ids(self, token: str):
    del token
    return None

  # What stop-string matching reads of a tokenizer (core/stop_strings.py).
  all_special_tokens = ()

  def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str | None]:
    return [self.chars[i - 3] if 3 <= i < len(self) else None for i in ids]

  def get_vocab(self) -> dict[str, int]:
    return {c: 3 + i for i, c in enumerate(self.chars)}

  def encode(self, text: str) -> list[int]:
    if self.unknown:
      text = ''.join(c if c in self.chars else self.unknown for c in text)
    bad = sorted({c for c in text if c not in self.chars})
    if bad:
      raise ValueError(f'characters {bad} are not in the task vocabulary {self.chars!r}')
    return [3 + self.chars.index(c) for c in text]

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    """Characters up to the first EOS; PAD/BOS are dropped."""
    del skip_special_tokens
    out = []
    for i in ids:
      i = int(i)
      if i == self.eos_token_id:
        break
      if 3 <= i < len(self):   # ids past the vocabulary (a padded embedding) are dropped
        out.append(self.chars[i - 3])
    return ''.join(out)


def addition(n: int, seed: int, digits: int = 2) -> list[dict]:
  """n problems {'prompt': 'a+b=', 'answer': str(a+b)} with a, b < 10**digits."""
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 10**digits, n)
  b = rng.integers(0, 10**digits, n)
  return [{'prompt': f'{x}+{y}=', 'answer': str(x + y)} for x, y in zip(a, b)]


def corrupt_answer(answer: str, rng: np.random.Generator) -> str:
  """A wrong answer near the right one (off by 1..10 or one digit changed)."""
  value = int(answer)
  if rng.random() < 0.5:
    wrong = value + int(rng.choice([-1, 1])) * int(rng.integers(1, 11))
    return str(abs(wrong) if abs(wrong) != value else value + 1)
  digits = list(answer)
  i = int(rng.integers(len(digits)))
  digits[i] = str((int(digits[i]) + int(rng.integers(1, 10))) % 10)
  out = ''.join(digits).lstrip('0') or '0'
  return out if out != answer else str(value + 1)


def preference_pairs(n: int, seed: int, digits: int = 2) -> list[dict]:
  """{'prompt', 'chosen' (right answer), 'rejected' (a near miss)} for DPO."""
  rng = np.random.default_rng(seed + 1)
  return [{'prompt': ex['prompt'], 'chosen': ex['answer'],
           'rejected': corrupt_answer(ex['answer'], rng)} for ex in addition(n, seed, digits)]


def exact_answer_reward(completion: str, answer: str) -> float:
  return float(completion.strip() == answer.strip())


def encode_prompt_completion(tok: CharTokenizer, prompt: str, completion: str,
                             seq_len: int) -> dict[str, np.ndarray]:
  """BOS + prompt + completion + EOS, right-padded; loss mask on completion + EOS."""
  from jaxpapers.core import data as data_lib
  return data_lib.pad_example([tok.bos_token_id] + tok.encode(prompt),
                              tok.encode(completion) + [tok.eos_token_id], seq_len,
                              tok.pad_token_id)


# ----------------------------------------------------------------------------- RL tasks


def segments_example(tok, prompt_ids: Sequence[int], segments: Sequence[tuple[str, int]],
                     seq_len: int) -> dict[str, np.ndarray]:
  """One SFT example from a multi-turn demonstration: `segments` are (text, trained) pairs
  after the prompt (policy turns trained, environment observations not); EOS is trained."""
  ids, mask = list(prompt_ids), [0] * len(prompt_ids)
  for text, trained in segments:
    part = tok.encode(text)
    ids += part
    mask += [int(trained)] * len(part)
  ids, mask = ids + [tok.eos_token_id], mask + [1]
  from jaxpapers.core import data as data_lib   # noqa: PLC0415 - data imports grain
  example = data_lib.pad_example(ids, [], seq_len, tok.pad_token_id)
  example['loss_mask'][:min(len(mask), seq_len)] = mask[:seq_len]
  return example


@dataclasses.dataclass
class PromptSet:
  """Prompts for RL with their gold answers and the reward that grades completions."""
  prompt_ids: list[list[int]]      # token ids of each prompt (chat template applied)
  answers: list[str]
  tokenizer: object
  reward: object                   # (completion text, answer) -> float in [0, 1]
  sft: list[dict]                  # padded SFT examples for an optional warm-up
  tasks: list | None = None        # core.env.Task per prompt, for multi-turn envs
  brief_prompt_ids: list | None = None  # each prompt once its first observation is answered
                                        # (agent rollouts with rollout.compress_history)

  def decode(self, ids) -> str:
    return self.tokenizer.decode(ids, skip_special_tokens=True) if hasattr(
        self.tokenizer, 'convert_tokens_to_ids') else self.tokenizer.decode(ids)


def addition_prompts(n: int, seed: int, digits: int = 2, seq_len: int = 16,
                     sft_noise: float = 0.0) -> PromptSet:
  """Addition prompts; the warm-up SFT targets are near misses with prob. `sft_noise`.

  Noisy warm-up leaves a policy that samples right and wrong answers alike: the
  situation RLVR is for, since the reward can tell them apart and SFT could not.
  """
  tok = CharTokenizer()
  rows = addition(n, seed, digits)
  rng = np.random.default_rng(seed + 2)
  targets = [corrupt_answer(r['answer'], rng) if rng.random() < sft_noise else r['answer']
             for r in rows]
  return PromptSet([[tok.bos_token_id] + tok.encode(r['prompt']) for r in rows],
                   [r['answer'] for r in rows], tok, exact_answer_reward,
                   [encode_prompt_completion(tok, r['prompt'], t, seq_len)
                    for r, t in zip(rows, targets)])


def gsm8k_prompts(n: int, seed: int, split: str = 'train', system: str | None = None,
                  suffix: str = '') -> PromptSet:
  """GSM8K questions in the Qwen chat template; reward = math-verify on the final answer."""
  from jaxpapers.core import data as data_lib
  from jaxpapers.core import paths
  from jaxpapers.core import rewards
  from jaxpapers.core import tokenizer as tok_lib
  tok = tok_lib.load('qwen')
  rows = data_lib.read_jsonl(paths.data_file(f'gsm8k/{split}.jsonl.gz'),
                             required=('question', 'answer'))
  order = np.random.default_rng(seed).permutation(len(rows))[:n]
  rows = [rows[i] for i in order]
  prompts = [tok_lib.encode(tok, tok_lib.chat_prompt(tok, r['question'] + suffix, system=system))
             for r in rows]
  math = rewards.REWARDS.get('math')
  return PromptSet(prompts, [data_lib.gsm8k_final_answer(r['answer']) for r in rows], tok,
                   lambda completion, answer: float(math(completion, answer)), [])


def eos_ids(tokenizer) -> list[int]:
  """Token ids that end a completion for this tokenizer."""
  if isinstance(tokenizer, CharTokenizer):
    return [tokenizer.eos_token_id]
  from jaxpapers.core import tokenizer as tok_lib
  return tok_lib.stop_token_ids(tokenizer)
