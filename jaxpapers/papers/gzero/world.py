"""A synthetic world where hints carry real information and no verifier is used in training.

The world is a fact base: `entities` made-up names, each with a value for four relations
(color, food, city, pet; six values each). Questions ask for one fact in one of three
phrasings per relation; a hint states a fact ("the color of kavo is red.").

Who knows what (set by the SFT warm-ups, the only place the fact base enters training):
  Generator  answers questions unassisted for a `known_fraction` of the facts, and reads
             hints: its hinted examples carry a random value of the relation, so the skill
             is "copy the hint", not knowledge of the facts.
  Proposer   writes <question>..</question>/<hint>..</hint> for any fact, with the true
             value: it plays the side that knows the answer when it writes a hint.
G-Zero then sees only its own signals (Hint-δ, BLEU clusters, hint lengths). The checker
here (does an answer match the fact base?) gives the held-out score and the diagnostics
(is a question about one of the Generator's blind spots? is its hint true?); training never
calls it.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from jaxpapers.core import tasks as tasks_lib
from jaxpapers.papers.gzero import formats
from jaxpapers.papers.gzero import prompts

TOKENIZER = tasks_lib.CharTokenizer(chars='abcdefghijklmnopqrstuvwxyz ?.:<>/\nH')
PROPOSER_PROMPT = 'propose a question and a hint:\n'
RELATIONS = {
    'color': ('red', 'blue', 'green', 'gold', 'pink', 'gray'),
    'food': ('rice', 'soup', 'cake', 'fish', 'corn', 'bread'),
    'city': ('paris', 'rome', 'oslo', 'lima', 'cairo', 'delhi'),
    'pet': ('cat', 'dog', 'owl', 'fox', 'bee', 'cow'),
}
TEMPLATES = ('what is the {rel} of {ent}?', 'which {rel} does {ent} have?',
             'tell me the {rel} of {ent}.')
HINT = 'the {rel} of {ent} is {value}.'
_SYLLABLES = [c + v for c in 'bdfgkmnprstvz' for v in 'aeiou']
_QUESTION_RES = [re.compile('^' + re.escape(t).replace(r'\{rel\}', '(?P<rel>[a-z]+)')
                            .replace(r'\{ent\}', '(?P<ent>[a-z]+)') + '$') for t in TEMPLATES]
_HINT_RE = re.compile(r'^the (?P<rel>[a-z]+) of (?P<ent>[a-z]+) is (?P<value>[a-z]+)\.$')


@dataclasses.dataclass(frozen=True)
class World:
  facts: dict[tuple[str, str], str]         # (entity, relation) -> value
  known: frozenset[tuple[str, str]]         # facts the Generator's warm-up teaches

  @property
  def keys(self) -> list[tuple[str, str]]:
    return sorted(self.facts)


def make_world(seed: int = 0, entities: int = 24, known_fraction: float = 0.5) -> World:
  if not 0.0 <= known_fraction <= 1.0:
    raise ValueError(f'known_fraction must be in [0, 1], got {known_fraction}')
  rng = np.random.default_rng([seed, 7])
  names: list[str] = []
  while len(names) < entities:
    name = ''.join(rng.choice(_SYLLABLES, 2))
    if name not in names:
      names.append(name)
  facts = {(e, r): str(rng.choice(values)) for e in names for r, values in RELATIONS.items()}
  keys = sorted(facts)
  known = rng.permutation(len(keys))[:round(known_fraction * len(keys))]
  return World(facts, frozenset(keys[i] for i in known))


def question(entity: str, relation: str, template: int = 0) -> str:
  return TEMPLATES[template].format(rel=relation, ent=entity)


def hint(entity: str, relation: str, value: str) -> str:
  return HINT.format(rel=relation, ent=entity, value=value)


def parse_question(text: str) -> tuple[str, str] | None:
  """(entity, relation) a question asks about, or None if it is not a world question."""
  for pattern in _QUESTION_RES:
    m = pattern.match(text.strip())
    if m and m['rel'] in RELATIONS:
      return m['ent'], m['rel']
  return None


def parse_hint(text: str) -> tuple[str, str, str] | None:
  m = _HINT_RE.match(text.strip())
  return (m['ent'], m['rel'], m['value']) if m else None


def proposer_completion(entity: str, relation: str, value: str, template: int) -> str:
  return (f'<question>{question(entity, relation, template)}</question>\n'
          f'<hint>{hint(entity, relation, value)}</hint>')


def solver_text(q: str, h: str | None = None) -> str:
  return prompts.solver_user(q, h) + '\n'


def world_format() -> formats.Format:
  tok = TOKENIZER
  encode = lambda text: [tok.bos_token_id] + tok.encode(text)  # noqa: E731
  return formats.Format(
      proposer_ids=encode(PROPOSER_PROMPT),
      solver_ids=lambda q, h=None: encode(solver_text(q, h)),
      decode=tok.decode, eos_ids=(tok.eos_token_id,), pad_id=tok.pad_token_id, bucket=16)


def generator_examples(world: World, n: int, seed: int, hinted_fraction: float,
                       seq_len: int) -> list[dict]:
  """The Generator's warm-up: unhinted questions about known facts, and hinted questions
  (any fact) whose hint carries a random value, which is then the answer."""
  rng = np.random.default_rng([seed, 11])
  known, keys = sorted(world.known), world.keys
  out = []
  for _ in range(n):
    template = int(rng.integers(len(TEMPLATES)))
    if rng.random() < hinted_fraction or not known:
      entity, relation = keys[int(rng.integers(len(keys)))]
      value = str(rng.choice(RELATIONS[relation]))
      text = solver_text(question(entity, relation, template), hint(entity, relation, value))
    else:
      entity, relation = known[int(rng.integers(len(known)))]
      value = world.facts[(entity, relation)]
      text = solver_text(question(entity, relation, template))
    out.append(tasks_lib.encode_prompt_completion(TOKENIZER, text, value, seq_len))
  return out


def proposer_examples(world: World, n: int, seed: int, seq_len: int) -> list[dict]:
  """The Proposer's warm-up: a question about any fact and a hint stating its value."""
  rng = np.random.default_rng([seed, 13])
  keys = world.keys
  out = []
  for _ in range(n):
    entity, relation = keys[int(rng.integers(len(keys)))]
    completion = proposer_completion(entity, relation, world.facts[(entity, relation)],
                                     int(rng.integers(len(TEMPLATES))))
    out.append(tasks_lib.encode_prompt_completion(TOKENIZER, PROPOSER_PROMPT, completion,
                                                  seq_len))
  return out


def is_correct(world: World, q: str, answer: str) -> bool | None:
  """Whether `answer` is the fact `q` asks for (None when q is not a world question)."""
  key = parse_question(q)
  if key is None or key not in world.facts:
    return None
  return answer.strip() == world.facts[key]


def heldout_scores(world: World, answers: dict[tuple[str, str], str]) -> dict:
  """Accuracy of unassisted answers (one per fact) on all, known and unknown facts."""
  right = {k: answers[k].strip() == v for k, v in world.facts.items()}
  mean = lambda ks: float(np.mean([right[k] for k in ks])) if ks else None  # noqa: E731
  unknown = [k for k in world.facts if k not in world.known]
  return {'heldout': mean(list(world.facts)), 'heldout_known': mean(sorted(world.known)),
          'heldout_unknown': mean(unknown), 'right': right}


def pool_diagnostics(world: World, records: list[dict], right: dict) -> dict:
  """Where the Proposer's questions land, by the checker: on facts the Generator got wrong
  at round start (blind spots), with a true hint, answered right unassisted."""
  keys = [parse_question(r['question']) for r in records]
  on_world = [(r, k) for r, k in zip(records, keys) if k in world.facts]
  if not on_world:
    return {'world_question_rate': 0.0}
  hints = [parse_hint(r['hint']) for r, _ in on_world]
  return {
      'world_question_rate': len(on_world) / max(1, len(records)),
      'blind_spot_share': float(np.mean([not right[k] for _, k in on_world])),
      'hint_true_rate': float(np.mean([h is not None and (h[0], h[1]) == k
                                       and h[2] == world.facts[k]
                                       for h, (_, k) in zip(hints, on_world)])),
      'a_hard_correct_rate': float(np.mean([r['a_hard'].strip() == world.facts[k]
                                            for r, k in on_world])),
      'distinct_facts': len({k for _, k in on_world}),
  }
