"""MF learns a low-rank matrix; tagging rows; k-NN outputs."""
import numpy as np

from jaxpapers.papers.personaagent import baselines


def test_mf_beats_global_mean_on_low_rank_ratings():
  rng = np.random.default_rng(0)
  u, i, d = 40, 30, 2
  truth = 3 + rng.normal(size=(u, d)) @ rng.normal(size=(d, i)) * 0.7
  mask = rng.random((u, i)) < 0.6
  users, items = np.nonzero(mask)
  test_u, test_i = np.nonzero(~mask)
  params, losses = baselines.fit_mf(users, items, truth[users, items], u, i, dim=4, l2=0.01,
                                    learning_rate=0.05, steps=300)
  pred = np.asarray(baselines.mf_predict(params, test_u, test_i))
  y = truth[test_u, test_i]
  mf_mse = np.mean((pred - y) ** 2)
  mean_mse = np.mean((truth[users, items].mean() - y) ** 2)
  assert losses[-1] < losses[0]
  assert mf_mse < 0.3 * mean_mse


def test_tag_rows_majority_and_rule(small_tasks):
  t = small_tasks
  rows = baselines.tag_predictions(t.splits, t.movies, t.tagging.queries)
  assert rows['history_rule'] == [g['output'] for g in t.tagging.golds]
  assert len(set(rows['majority_label'])) == 1
  for q, label in zip(t.tagging.queries, rows['item_popular_label']):
    assert label in t.movies[q.item].genres


def test_knn_output_mean_score_and_most_frequent_tag():
  profile = [{'score': '5', 'tag': 'war'}, {'score': '2', 'tag': 'drama'},
             {'score': '4', 'tag': 'drama'}, {'score': '1', 'tag': 'war'}]
  assert baselines.knn_output(profile, [0, 2, -1], 'LaMP_3', ()) == '4.5000'
  assert baselines.knn_output(profile, [3, 1, 2, 0], 'LaMP_2', ('drama', 'war')) == 'war'
  assert baselines.knn_output(profile, [-1], 'LaMP_3', ()) == '3.0000'   # none: profile mean
