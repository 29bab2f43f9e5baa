"""A synthetic fact world for search-agent RL that a tiny model cannot memorise.

Lands have a capital, a river and a ruler; people were born in a land. Every name is a random
string of syllables, so the only way to answer is to search the corpus:
  single-hop  "kalo river?"            -> search "kalo river"
  two-hop     "dusa born land ruler?"  -> search "dusa born", read the land from the
                                          result, search "<land> ruler"
(questions are keyword-style, so a good first query is the question itself: copying is
what a character-level model from scratch can learn in minutes; choosing what to search is
what the rewards are compared on)
Passages are short facts titled by their entity ("river: tena", "born in: kalo") plus
distractors that mention the same entities ("trades with: ..."), so a vague query ("river")
retrieves other lands' facts, and a query for the right land still returns its other
relations beside the asked one. Texts are terse because a character-level model pays for
every observation character in each step.
Train and test questions are split by entity (a test land or person is never asked about in
training); the corpus covers both, as a search index would.

Demonstrations for the SFT warm-up are executed against the real retriever, so their
observations are exactly what the environment returns. A fraction are imperfect: `vague`
ones search without the entity and answer from what comes back, `skip` ones answer a guess
without searching. The warmed-up policy then searches badly part of the time, which is what
the reward schedules are compared on.
"""
from __future__ import annotations

import dataclasses
import functools
import re

import numpy as np

from jaxpapers.core import env as env_lib
from jaxpapers.core import tasks as tasks_lib
from jaxpapers.core.retrieval import bm25
from jaxpapers.core.retrieval import corpus as corpus_lib
from jaxpapers.core.retrieval import env as search_env

RELATIONS = ('capital', 'river', 'ruler')
CHARS = ('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
         ' <>/()?:.,\n')
_CONSONANTS, _VOWELS = 'bdfgklmnprstvz', 'aeiou'


@dataclasses.dataclass(frozen=True)
class WorldConfig:
  seed: int = 0
  num_lands: int = 400
  num_people: int = 400
  test_fraction: float = 0.25
  two_hop: float = 0.3          # fraction of questions that need two searches
  distractors: int = 2          # extra passages per land that mention it
  former: bool = False          # each fact also has a former value ("river once: X" beside
                                # "river now: Y"): a hard reading step, BM25 ties the two
  top_k: int = 3


@dataclasses.dataclass(frozen=True)
class World:
  config: WorldConfig
  facts: dict                   # land -> {relation: value}
  born: dict                    # person -> land
  corpus: corpus_lib.Corpus
  train_lands: tuple
  test_lands: tuple
  train_people: tuple
  test_people: tuple


def _names(rng: np.random.Generator, n: int, taken: set) -> list[str]:
  out = []
  while len(out) < n:
    name = ''.join(rng.choice(list(_CONSONANTS)) + rng.choice(list(_VOWELS)) for _ in range(2))
    if name not in taken:
      taken.add(name)
      out.append(name)
  return out


def fact_text(relation: str, value: str) -> str:
  return f'{relation}: {value}'


_FACT = re.compile(rf'({"|".join(RELATIONS)})(?: now)?: (\w+)')


def build(config: WorldConfig) -> World:
  rng = np.random.default_rng(config.seed)
  taken: set = set()
  lands = _names(rng, config.num_lands, taken)
  people = _names(rng, config.num_people, taken)
  values = _names(rng, config.num_lands * len(RELATIONS), taken)
  facts = {land: {r: values[i * len(RELATIONS) + j] for j, r in enumerate(RELATIONS)}
           for i, land in enumerate(lands)}
  born = {p: lands[int(rng.integers(len(lands)))] for p in people}
  former = (_names(rng, config.num_lands * len(RELATIONS), taken) if config.former else [])
  passages = []
  for i, land in enumerate(lands):
    for j, (r, v) in enumerate(facts[land].items()):
      if config.former:
        passages.append(corpus_lib.Passage(f'{land}-{r}', land, fact_text(f'{r} now', v)))
        passages.append(corpus_lib.Passage(f'{land}-{r}-once', land, fact_text(
            f'{r} once', former[i * len(RELATIONS) + j])))
      else:
        passages.append(corpus_lib.Passage(f'{land}-{r}', land, fact_text(r, v)))
    for d in range(config.distractors):
      other = lands[int(rng.integers(len(lands)))]
      verb = ('trades with', 'borders')[d % 2]
      passages.append(corpus_lib.Passage(f'{land}-x{d}', land, fact_text(verb, other)))
  for p in people:
    passages.append(corpus_lib.Passage(f'{p}-born', p, fact_text('born in', born[p])))
  order = rng.permutation(len(passages))
  corpus = corpus_lib.Corpus([passages[i] for i in order], source=f'desa-world-{config.seed}')
  n_test_l = int(round(config.num_lands * config.test_fraction))
  n_test_p = int(round(config.num_people * config.test_fraction))
  return World(config, facts, born, corpus, tuple(lands[n_test_l:]), tuple(lands[:n_test_l]),
               tuple(people[n_test_p:]), tuple(people[:n_test_p]))


@functools.lru_cache(maxsize=4)
def cached(config: WorldConfig) -> tuple[World, bm25.BM25Retriever]:
  """The world and a BM25 index over its corpus (built once per process and config)."""
  world = build(config)
  return world, bm25.BM25Retriever(world.corpus, stemmer=None)


def question(relation: str, land: str | None = None, person: str | None = None) -> str:
  if person is None:
    return f'{land} {relation}?'
  return f'{person} born land {relation}?'


def make_tasks(world: World, split: str, n: int, seed: int) -> list[env_lib.Task]:
  """n questions on the split's entities; meta holds the good queries and the hop count."""
  lands = world.train_lands if split == 'train' else world.test_lands
  people = world.train_people if split == 'train' else world.test_people
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    relation = RELATIONS[int(rng.integers(len(RELATIONS)))]
    if rng.random() < world.config.two_hop:
      person = people[int(rng.integers(len(people)))]
      land = world.born[person]
      queries = (f'{person} born', f'{land} {relation}')
      q = question(relation, person=person)
    else:
      land = lands[int(rng.integers(len(lands)))]
      queries, q = (f'{land} {relation}',), question(relation, land)
    out.append(env_lib.Task(prompt=f'q: {q}\n', answer=world.facts[land][relation],
                            meta={'queries': queries, 'relation': relation, 'land': land,
                                  'hops': len(queries)}))
  return out


def tokenizer() -> tasks_lib.CharTokenizer:
  return tasks_lib.CharTokenizer(chars=CHARS)


def _value_in(info: str, relation: str) -> str | None:
  """The value of the first '<relation>: V' (or '<relation> now: V') fact in a block."""
  for match in _FACT.finditer(info):
    if match.group(1) == relation:
      return match.group(2)
  return None


def demonstration_segments(task: env_lib.Task, world: World, search: search_env.SearchEnv,
                           kind: str, rng: np.random.Generator) -> list[tuple[str, int]]:
  """(text, trained) turns of one demonstration: 'good', 'vague' or 'skip'."""
  if kind == 'skip':
    guess = _names(rng, 1, set())[0]
    return [(f'<answer>{guess}</answer>', 1)]
  queries = list(task.meta['queries'])
  if kind == 'vague':
    queries = [task.meta['relation']]
  segments, info = [], ''
  for i, query in enumerate(queries):
    if i and kind == 'good':   # the second hop names the land read from the first result
      query = f'{task.meta["land"]} {task.meta["relation"]}'
    turn = f'<search>{query}</search>'
    obs = search.step([turn])[0]
    segments += [(turn, 1), (obs.text, 0)]
    info = obs.text
  answer = task.answer if kind == 'good' else (_value_in(info, task.meta['relation'])
                                               or _names(rng, 1, set())[0])
  return segments + [(f'<answer>{answer}</answer>', 1)]


def prompt_set(c, n: int, seed: int, split: str) -> tasks_lib.PromptSet:
  """Tasks, prompts (BOS + question) and warm-up demonstrations for the GRPO runner."""
  world, retriever = cached(world_config(c))
  tok = tokenizer()
  tasks = make_tasks(world, split, n, seed)
  search = search_env.SearchEnv(retriever, world.config.top_k)
  rng = np.random.default_rng(seed + 1)
  demos = []
  if split == 'train':
    kinds = rng.choice(['good', 'vague', 'skip'], len(tasks),
                       p=[1 - c.vague - c.skip_search, c.vague, c.skip_search])
    demos = [tasks_lib.segments_example(
        tok, [tok.bos_token_id] + tok.encode(t.prompt),
        demonstration_segments(t, world, search, str(k), rng), c.sft_seq_len)
             for t, k in zip(tasks, kinds)]
  return tasks_lib.PromptSet([[tok.bos_token_id] + tok.encode(t.prompt) for t in tasks],
                             [t.answer for t in tasks], tok, None, demos, tasks)


def world_config(c) -> WorldConfig:
  """WorldConfig from a config node holding `world` fields (task or env config)."""
  return WorldConfig(**dict(c.world))
