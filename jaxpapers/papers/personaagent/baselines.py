"""Non-LLM reference rows for the MovieLens LaMP-3-like and LaMP-2-like tasks.

Every row sees only history splits (profiles), never a query's answer.
Rating (LaMP-3-like), real-valued predictions clipped to [1, 5] (LaMP's evaluator takes any
float):
  * global_mean: the mean of all users' history ratings.
  * user_mean / item_mean: the user's / the movie's history mean over all users' histories;
    a movie never rated in any history falls back to the global mean.
  * mf: biased matrix factorisation r = mu + b_u + b_i + p_u . q_i (Koren et al. 2009),
    full-batch Adam on all users' histories, loss = MSE + l2 * mean over the batch of
    (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2); the whole loop is one jitted `lax.scan`.
    Defaults (dim 32, l2 0.1, lr 0.01, 500 steps) were chosen on each user's last history
    interaction held out from training, never on the queries (validation MAE 0.785 against
    0.811 / 0.806 / 0.863 for l2 0.05 / 0.2 / 0.02; at l2 0.2 the factors collapse to 0).
Tagging (LaMP-2-like):
  * majority_label: the most frequent tag over all users' history items.
  * user_majority_label: the user's most frequent history tag.
  * item_popular_label: the query movie's genre used most often as a tag over all
    histories (item-aware, not personal).
  * history_rule: the label rule itself on the whole profile (`tasks.user_tag`): accuracy 1
    by construction; it checks that files and rule agree and marks the ceiling.
Retrieval rows on either task (work on any LaMP file): the top-k profile items by BM25
(`bm25_knn`) or by episodic-memory similarity (`dense_knn`); the rating is their mean
score, the tag their most frequent tag (ties: the better-ranked). With no item retrieved
the rating falls back to the profile mean and the tag to the profile's most frequent tag.
Ties between labels anywhere go to label-list order.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Mapping, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpapers.papers.personaagent import memory as memory_lib
from jaxpapers.papers.personaagent import tasks as tasks_lib


def _fmt(x: float) -> str:
  return f'{float(np.clip(x, 1.0, 5.0)):.4f}'


# ----------------------------------------------------------------------------- means


@dataclasses.dataclass(frozen=True)
class Means:
  global_mean: float
  user: dict[int, float]
  item: dict[int, float]


def history_means(splits: Mapping[int, tasks_lib.UserSplit]) -> Means:
  ratings = [x for s in splits.values() for x in s.history]
  by_user, by_item = collections.defaultdict(list), collections.defaultdict(list)
  for x in ratings:
    by_user[x.user].append(x.rating)
    by_item[x.item].append(x.rating)
  mean = lambda d: {k: float(np.mean(v)) for k, v in d.items()}  # noqa: E731
  return Means(float(np.mean([x.rating for x in ratings])), mean(by_user), mean(by_item))


def mean_predictions(means: Means, queries: Sequence[tasks_lib.Interaction]
                     ) -> dict[str, list[str]]:
  return {'global_mean': [_fmt(means.global_mean)] * len(queries),
          'user_mean': [_fmt(means.user.get(q.user, means.global_mean)) for q in queries],
          'item_mean': [_fmt(means.item.get(q.item, means.global_mean)) for q in queries]}


# ----------------------------------------------------------------------------- MF


@flax.struct.dataclass
class MFParams:
  mu: jax.Array          # [] global offset
  user_bias: jax.Array   # [U]
  item_bias: jax.Array   # [I]
  user_vec: jax.Array    # [U, d]
  item_vec: jax.Array    # [I, d]


def mf_init(key, num_users: int, num_items: int, dim: int, mu: float, scale: float = 0.1
            ) -> MFParams:
  ku, ki = jax.random.split(key)
  return MFParams(mu=jnp.float32(mu), user_bias=jnp.zeros(num_users),
                  item_bias=jnp.zeros(num_items),
                  user_vec=scale * jax.random.normal(ku, (num_users, dim)),
                  item_vec=scale * jax.random.normal(ki, (num_items, dim)))


def mf_predict(params: MFParams, users: jax.Array, items: jax.Array) -> jax.Array:
  """[N] predicted ratings for index arrays users [N], items [N]."""
  dot = jnp.sum(params.user_vec[users] * params.item_vec[items], axis=-1)
  return params.mu + params.user_bias[users] + params.item_bias[items] + dot


def mf_loss(params: MFParams, users, items, ratings, l2: float) -> jax.Array:
  """MSE plus per-observation L2 on the factors and biases used by each rating."""
  err = mf_predict(params, users, items) - ratings
  reg = (jnp.sum(params.user_vec[users] ** 2, -1) + jnp.sum(params.item_vec[items] ** 2, -1)
         + params.user_bias[users] ** 2 + params.item_bias[items] ** 2)
  return jnp.mean(err ** 2) + l2 * jnp.mean(reg)


def fit_mf(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, num_users: int,
           num_items: int, dim: int = 32, l2: float = 0.1, learning_rate: float = 0.01,
           steps: int = 500, seed: int = 0) -> tuple[MFParams, np.ndarray]:
  """Full-batch Adam on (user index, item index, rating) triples; (params, loss [steps])."""
  opt = optax.adam(learning_rate)
  params = mf_init(jax.random.key(seed), num_users, num_items, dim, float(np.mean(ratings)))
  data = (jnp.asarray(users, jnp.int32), jnp.asarray(items, jnp.int32),
          jnp.asarray(ratings, jnp.float32))

  @jax.jit
  def train(params, data):
    def step(carry, _):
      p, s = carry
      loss, grads = jax.value_and_grad(mf_loss)(p, *data, l2)
      updates, s = opt.update(grads, s, p)
      return (optax.apply_updates(p, updates), s), loss
    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return params, losses

  params, losses = train(params, data)
  return params, np.asarray(losses)


class MFModel:
  """Fits MF on every user's history and predicts queries (unknown ids get the mean)."""

  def __init__(self, splits: Mapping[int, tasks_lib.UserSplit], **fit_kw):
    history = [x for s in splits.values() for x in s.history]
    self.users = {u: n for n, u in enumerate(sorted({x.user for x in history}))}
    self.items = {i: n for n, i in enumerate(sorted({x.item for x in history}))}
    self.params, self.losses = fit_mf(
        np.array([self.users[x.user] for x in history]),
        np.array([self.items[x.item] for x in history]),
        np.array([x.rating for x in history], np.float32),
        len(self.users), len(self.items), **fit_kw)

  def predict(self, queries: Sequence[tasks_lib.Interaction]) -> np.ndarray:
    known = np.array([q.user in self.users and q.item in self.items for q in queries])
    u = np.array([self.users.get(q.user, 0) for q in queries], np.int32)
    i = np.array([self.items.get(q.item, 0) for q in queries], np.int32)
    pred = np.asarray(mf_predict(self.params, u, i))
    return np.where(known, pred, float(self.params.mu))


# ----------------------------------------------------------------------------- tagging


def _most_common(tags: Sequence[str], labels: Sequence[str]) -> str:
  counts = collections.Counter(tags)
  return min(counts, key=lambda t: (-counts[t], labels.index(t)))


def history_tags(splits: Mapping[int, tasks_lib.UserSplit],
                 movies: Mapping[int, tasks_lib.Movie]) -> dict[int, list[tuple[int, str]]]:
  """user -> [(item, tag)] over the history under the task's label rule."""
  out = {}
  for user, split in splits.items():
    stats = tasks_lib.genre_stats(split.history, movies)
    out[user] = [(x.item, t) for x in split.history
                 if (t := tasks_lib.user_tag(movies[x.item].genres, stats)) is not None]
  return out


def tag_predictions(splits, movies, queries: Sequence[tasks_lib.Interaction],
                    labels: Sequence[str] = tasks_lib.GENRES) -> dict[str, list[str]]:
  tags = history_tags(splits, movies)
  every = [t for rows in tags.values() for _, t in rows]
  counts = collections.Counter(every)
  majority = _most_common(every, labels)
  user_major = {u: _most_common([t for _, t in rows], labels) if rows else majority
                for u, rows in tags.items()}

  def popular(genres):
    g = [x for x in genres if x in labels]
    return min(g, key=lambda t: (-counts[t], labels.index(t))) if g else majority

  def rule(q):
    stats = tasks_lib.genre_stats(splits[q.user].history, movies)
    return tasks_lib.user_tag(movies[q.item].genres, stats, labels) or majority

  return {'majority_label': [majority] * len(queries),
          'user_majority_label': [user_major.get(q.user, majority) for q in queries],
          'item_popular_label': [popular(movies[q.item].genres) for q in queries],
          'history_rule': [rule(q) for q in queries]}


# ----------------------------------------------------------------------------- retrieval


def knn_output(profile: Sequence[Mapping], rows: Sequence[int], task: str,
               labels: Sequence[str]) -> str:
  """The mean score (LaMP_3) or most frequent tag (LaMP_2) of the retrieved profile rows."""
  picked = [profile[r] for r in rows if r >= 0] or list(profile)
  if task == tasks_lib.LAMP_3:
    return _fmt(np.mean([float(p['score']) for p in picked]))
  counts = collections.Counter(p['tag'] for p in picked)
  first = {t: n for n, t in reversed(list(enumerate(p['tag'] for p in picked)))}
  return min(counts, key=lambda t: (-counts[t], first[t],
                                    labels.index(t) if t in labels else len(labels)))


def by_profile(inputs: Sequence[Mapping]) -> dict[tuple, list[int]]:
  """Example indices grouped by identical profiles (a user's queries share one profile)."""
  groups = collections.defaultdict(list)
  for n, ex in enumerate(inputs):
    groups[tuple(str(p['id']) for p in ex['profile'])].append(n)
  return groups


def bm25_knn(inputs: Sequence[Mapping], task: str, k: int, labels: Sequence[str]) -> list[str]:
  """Per example, BM25 top-k over its own profile (one index per distinct profile)."""
  out = [''] * len(inputs)
  for members in by_profile(inputs).values():
    profile = inputs[members[0]]['profile']
    rows = memory_lib.bm25_rank(profile, [inputs[n]['input'] for n in members], task, k)
    for n, row in zip(members, rows):
      out[n] = knn_output(profile, row, task, labels)
  return out


def dense_knn(inputs: Sequence[Mapping], task: str, k: int, labels: Sequence[str],
              memory: memory_lib.EpisodicMemory) -> list[str]:
  """Per example, episodic-memory top-k over its own profile records."""
  out = [''] * len(inputs)
  for key, members in by_profile(inputs).items():
    profile = inputs[members[0]]['profile']
    memory.records[key] = []
    memory.add(key, memory_lib.from_lamp(inputs[members[0]], task))
    queries = [memory_lib.query_text(inputs[n]['input'], task) for n in members]
    rows, _ = memory.top_k_rows(key, queries, k)
    for n, row in zip(members, rows):
      out[n] = knn_output(profile, row, task, labels)
    del memory.records[key]
  return out
