"""Chronological splits, the tag rule, and LaMP's file format."""
import json

from jaxpapers.papers.personaagent import tasks


def test_split_history_never_later_than_any_query(small_tasks):
  for split in small_tasks.splits.values():
    assert max(x.time for x in split.history) <= min(x.time for x in split.queries)
    assert not {x.item for x in split.history} & {x.item for x in split.queries}
    times = [x.time for x in split.history + split.queries]
    assert times == sorted(times)


def test_profiles_hold_only_history_items(small_tasks):
  for task in (small_tasks.rating, small_tasks.tagging):
    for ex, q in zip(task.inputs, task.queries):
      history = {x.id: x for x in small_tasks.splits[q.user].history}
      assert ex['id'] == q.id and ex['id'] not in {p['id'] for p in ex['profile']}
      for p in ex['profile']:
        assert p['id'] in history and history[p['id']].time <= q.time


def test_split_cuts_last_interactions_by_time_then_item():
  rows = [tasks.Interaction(1, i, 3, t) for i, t in [(5, 30), (2, 10), (9, 30), (4, 20)]]
  split = tasks.split_users(rows, 2)[1]
  assert [x.item for x in split.history] == [2, 4]
  assert [x.item for x in split.queries] == [5, 9]
  assert [x.item for x in tasks.split_users(rows, 1, max_profile=2)[1].history] == [4, 5]


def test_user_tag_highest_mean_then_count_then_label_order():
  stats = {'drama': (4.0, 2), 'comedy': (4.0, 5), 'action': (3.0, 9), 'war': (4.0, 5)}
  assert tasks.user_tag(('action', 'drama'), stats) == 'drama'
  assert tasks.user_tag(('drama', 'comedy'), stats) == 'comedy'      # more ratings
  assert tasks.user_tag(('war', 'comedy'), stats) == 'comedy'        # label-list order
  assert tasks.user_tag(('horror',), stats) is None                  # never seen


def test_prompts_and_fields_follow_lamp(small_tasks):
  r, g = small_tasks.rating, small_tasks.tagging
  assert r.inputs[0]['input'].startswith('What is the score of the following movie on a scale '
                                         'of 1 to 5? just answer with 1, 2, 3, 4, or 5 without '
                                         'further explanation. movie: ')
  assert g.inputs[0]['input'].startswith('Which tag does this movie relate to among the '
                                         'following tags? Just answer with the tag name without '
                                         'further explanation. tags: [action, adventure, ')
  assert set(r.inputs[0]['profile'][0]) == {'text', 'score', 'id'}
  assert set(g.inputs[0]['profile'][0]) == {'description', 'tag', 'id'}
  assert {x['output'] for x in r.golds} <= set(tasks.RATING_LABELS)
  assert {x['output'] for x in g.golds} <= set(tasks.GENRES)
  for ex, q in zip(g.inputs, g.queries):
    assert len(small_tasks.movies[q.item].genres) >= 2


def test_lamp_files_round_trip(small_tasks, tmp_path):
  paths = tasks.write_task(tmp_path, small_tasks.tagging)
  assert tasks.read_inputs(paths['inputs']) == json.loads(json.dumps(small_tasks.tagging.inputs))
  name, golds = tasks.read_outputs(paths['outputs'])
  assert name == 'LaMP_2' and golds == {x['id']: x['output'] for x in small_tasks.tagging.golds}
  obj = json.loads(paths['outputs'].read_text())
  assert set(obj) == {'task', 'golds'} and set(obj['golds'][0]) == {'id', 'output'}
  pred = tasks.write_outputs(tmp_path / 'p.json', 'LaMP_2', {'7-1': 'drama'})
  assert tasks.read_outputs(pred) == ('LaMP_2', {'7-1': 'drama'})
