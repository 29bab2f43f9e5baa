"""The scripted expert solves every template (score 1); near misses of its solutions score 0."""
import copy

import pytest

from jaxpapers.papers.webagent_r1 import actions
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import checkers
from jaxpapers.papers.webagent_r1 import expert
from jaxpapers.papers.webagent_r1 import sim
from jaxpapers.papers.webagent_r1 import sites
from jaxpapers.papers.webagent_r1 import tasks as tasks_lib

TEMPLATES = list(tasks_lib.TEMPLATES)


@pytest.fixture(scope='module')
def app():
  return sites.make_app(0)


@pytest.fixture(scope='module')
def by_template():
  out = {}
  for t in tasks_lib.generate(0):
    out.setdefault(t['template'], []).append(t)
  return out


def fresh(app, task) -> sim.SimBackend:
  b = sim.SimBackend(app)
  b.goto(tasks_lib.resolve_url(task['start_url'], b.base_url))
  return b


def replay(app, task, steps) -> checkers.FinalState:
  """Runs action texts on a fresh session; the exit message (if any) is the answer."""
  b, answer = fresh(app, task), None
  for _, text in steps:
    action = actions.parse_action(text)
    if action.kind == actions.EXIT:
      answer = action.message
    else:
      backend_lib.run_action(b, action)
  return checkers.FinalState(b, answer)


def solved(app, task):
  b = fresh(app, task)
  steps = expert.solve(task, b)
  return steps, checkers.FinalState(b, actions.parse_action(steps[-1][1]).message)


def is_question(task) -> bool:
  return 'string_match' in task['eval']['eval_types']


@pytest.mark.parametrize('template', TEMPLATES)
def test_expert_solves_every_template(app, by_template, template):
  for task in by_template[template][:2] + by_template[template][-1:]:
    steps, state = solved(app, task)
    assert checkers.evaluate(task, state) == 1.0, task['intent']
    assert 2 <= len(steps) <= 15
    assert steps[-1][1].startswith('exit(')
    for think, text in steps:
      assert think.startswith('# ') and ('# Element: ' in think or '# Note: ' in think)
      actions.parse_action(text)
    assert checkers.evaluate(task, replay(app, task, steps)) == 1.0  # replays identically


@pytest.mark.parametrize('template', TEMPLATES)
def test_stopping_one_step_early_scores_zero(app, by_template, template):
  task = by_template[template][0]
  steps, _ = solved(app, task)
  if is_question(task):
    cut = steps[:-1]  # never answers
  else:
    cut = steps[:-2] + steps[-1:]  # skips the last browser action, then exits
  assert checkers.evaluate(task, replay(app, task, cut)) == 0.0


@pytest.mark.parametrize('template', [t for t in TEMPLATES if t.startswith(
    ('shop_price', 'forum_newest', 'forum_count', 'admin_total', 'admin_count'))])
def test_exit_with_a_wrong_answer_scores_zero(app, by_template, template):
  task = by_template[template][0]
  steps, state = solved(app, task)
  other = next(t for t in by_template[template]
               if t['eval']['reference_answers'] != task['eval']['reference_answers'])
  wrong = actions.parse_action(solved(app, other)[0][-1][1]).message
  assert checkers.evaluate(task, checkers.FinalState(state.backend, wrong)) == 0.0
  assert checkers.evaluate(task, checkers.FinalState(state.backend, '')) == 0.0


@pytest.mark.parametrize('template', [t for t in TEMPLATES if t not in (
    'shop_price', 'forum_newest_title', 'forum_count', 'admin_total', 'admin_count')])
def test_acting_on_the_wrong_entity_scores_zero(app, by_template, template):
  task = by_template[template][0]
  other = next(t for t in by_template[template][1:] if t['entities'] != task['entities'])
  b = fresh(app, task)
  steps = expert.solve(other, b)
  state = checkers.FinalState(b, actions.parse_action(steps[-1][1]).message)
  assert checkers.evaluate(task, state) == 0.0, (task['intent'], other['intent'])


@pytest.mark.parametrize('template', ['admin_address', 'shop_buy'])
@pytest.mark.parametrize('field', ['street', 'zip', 'state'])
def test_a_wrong_address_field_scores_zero(app, by_template, template, field):
  task = by_template[template][0]
  near = copy.deepcopy(task)
  values = near['instantiation_dict']
  values[field] = {'street': '1 Nowhere Rd', 'zip': '00000',
                   'state': 'WA' if values['state'] != 'WA' else 'CA'}[field]
  _, state = solved(app, near)
  assert checkers.evaluate(task, state) == 0.0


def test_cheapest_item_near_misses(app, by_template):
  task = by_template['shop_cheapest'][0]
  v = task['instantiation_dict']
  world = app.state.world
  ranked = sorted((p for p in world.products
                   if p.color == v['color'] and p.category == v['category']),
                  key=lambda p: p.price)
  assert ranked[0].name == task['expert']['product']

  def cart_of(*names):
    b = fresh(app, task)
    for name in names:
      b.goto(f'/shop/product/{next(p.id for p in world.products if p.name == name)}')
      b.click(b.observe().find('button', 'Add to cart').index)
    return checkers.FinalState(b, '')
  assert checkers.evaluate(task, cart_of(ranked[0].name)) == 1.0
  if len(ranked) > 1:
    assert checkers.evaluate(task, cart_of(ranked[1].name)) == 0.0
  assert checkers.evaluate(task, cart_of(ranked[0].name, world.products[0].name)) == 0.0


def test_expert_reports_what_it_cannot_find(app, by_template):
  task = copy.deepcopy(by_template['forum_count'][0])
  task['instantiation_dict']['title'] = 'No such thread'
  with pytest.raises(expert.ExpertError):
    expert.solve(task, fresh(app, task))
