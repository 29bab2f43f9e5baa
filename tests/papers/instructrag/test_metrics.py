"""The reference's accuracy (src/metrics.py exact_presence), EM and bootstrap intervals."""
import numpy as np
import pytest

from jaxpapers.papers.instructrag import metrics


@pytest.mark.parametrize('generation, answers, expected', [
    ('The answer is William Shakespeare.', ['Shakespeare'], True),
    ('the Beatles', ['The Beatles'], True),                 # articles dropped on both sides
    ('An apple a day', ['apple'], True),
    ('U.S.A.', ['USA'], True),                              # punctuation removed
    ("it's 1,000 km", ['1000 km'], True),
    ('Ángel Di María scored', ['Di María'], True),          # unicode kept, case folded
    ('Angel Di Maria scored', ['Di María'], False),         # accents are not stripped
    ('born in 1972', ['December 1972', '1972'], True),      # any of several golds
    ('born in 1973', ['December 1972', '1972'], False),
    ('year 10', ['1'], True),                               # plain substring: '1' in '10'
    ('', ['Paris'], False),                                 # empty generation
    ('', ['the'], True),                                    # gold normalising to '' matches
    ('anything', ['.'], True),
    ('Paris', [], False),                                   # no gold
])
def test_accuracy_matches_reference_exact_presence(generation, answers, expected):
  assert metrics.accuracy(generation, answers) is expected


def test_exact_match_is_squad_em_over_golds():
  assert metrics.exact_match('The Beatles!', ['beatles', 'x'])
  assert not metrics.exact_match('The Beatles were a band', ['beatles'])
  assert not metrics.exact_match('', ['the'])


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
  values = [1.0] * 30 + [0.0] * 70
  lo, hi = metrics.bootstrap_ci(values, 500, seed=3)
  assert lo < 0.3 < hi and 0.15 < lo and hi < 0.45
  assert metrics.bootstrap_ci(values, 500, seed=3) == [lo, hi]
  assert metrics.bootstrap_ci([1.0, 1.0], 100) == [1.0, 1.0]
  assert metrics.bootstrap_ci([], 100) == [0.0, 0.0]


def test_summarize_averages_seeds_per_question():
  golds = [['p'], ['q'], ['r'], ['s']]
  seed0 = [{'answers': g, 'output': o} for g, o in zip(golds, ['p', 'q', 'x', 'x'])]
  seed1 = [{'answers': g, 'output': o} for g, o in zip(golds, ['p', 'x', 'x', 'it is s'])]
  s = metrics.summarize([seed0, seed1], draws=200)
  assert s['accuracy'] == 0.5 and s['n'] == 4 and s['accuracy_seeds'] == [0.5, 0.5]
  assert s['em'] == pytest.approx(3 / 8) and s['accuracy_std'] == 0.0
  assert s['accuracy_ci'][0] <= 0.5 <= s['accuracy_ci'][1]
  one = metrics.summarize([seed0], draws=200)
  assert one['accuracy'] == 0.5 and 'accuracy_seeds' not in one
  assert np.isclose(one['em'], 0.5)


def test_paired_difference_counts_questions_each_side_alone_gets():
  golds = [['p'], ['q'], ['r'], ['s'], ['t']]
  rows = lambda outs: [{'id': i, 'answers': g, 'output': o}  # noqa: E731
                       for i, (g, o) in enumerate(zip(golds, outs))]
  a = [rows(['p', 'q', 'r', 'x', 'x'])]
  b = [rows(['p', 'x', 'x', 's', 'x'])]
  d = metrics.paired_difference(a, b, draws=200)
  assert d['diff'] == pytest.approx(0.2) and (d['only_a'], d['only_b'], d['n']) == (2, 1, 5)
  assert d['diff_ci'][0] <= 0.2 <= d['diff_ci'][1]
  assert metrics.summarize(a)['output_chars'] == 1.0
  with pytest.raises(ValueError, match='different questions'):
    metrics.paired_difference(a, [rows(['p'] * 5)[::-1]])
