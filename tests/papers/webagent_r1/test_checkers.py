"""Checkers: WebArena's string, url and program_html rules; WebArena-Lite's task definitions."""
import pytest

from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import checkers
from jaxpapers.papers.webagent_r1 import sim
from jaxpapers.papers.webagent_r1 import sites
from jaxpapers.papers.webagent_r1 import webarena

PAGE = '''<html><body><h1>Order</h1><p id="ship" class="box addr">Ship to: 1 Oak St</p>
<input name="city" value="Austin"><select name="state"><option>CA</option>
<option value="TX" selected>Texas</option></select><textarea name="n">note</textarea>
<div class="a"><span class="b">inner</span></div></body></html>'''


class FakeBackend(backend_lib.Backend):
  """A backend that stays on one page (for checker rules without a site)."""
  base_url = 'http://h'

  def __init__(self, url='http://h/', html=PAGE):
    self._url, self._html = url, html

  def url(self):
    return self._url

  def html(self):
    return self._html

  def goto(self, url):
    raise backend_lib.PageError('no sites here')


def test_exact_match_uses_webarena_clean_answer():
  assert checkers.exact_match('Yes', ' "yes" ') == 1.0
  assert checkers.exact_match('Yes', 'yes!') == 0.0


def test_must_include_single_character_is_a_token():
  assert checkers.string_score({'must_include': ['3']}, 'There are 3 orders') == 1.0
  assert checkers.string_score({'must_include': ['3']}, 'There are 13 orders') == 0.0
  assert checkers.string_score({'must_include': ['12.43', 'usd']}, '$12.43 USD') == 1.0
  assert checkers.string_score({'must_include': ['12.43', 'usd']}, '$12.43') == 0.0


def test_fuzzy_match_is_normalised_must_include_and_no_answer_scores_zero():
  assert checkers.string_score({'fuzzy_match': ['Tips for soup?']}, 'TIPS FOR SOUP?') == 1.0
  assert checkers.string_score({'fuzzy_match': ['Tips for soup?']}, 'soup tips') == 0.0
  assert checkers.string_score({'exact_match': 'x'}, None) == 0.0


@pytest.mark.parametrize('ref, current, want', [
    ('__SHOP__/product/101', 'http://h/shop/product/101', 1.0),
    ('__SHOP__/product/101', 'http://h/shop/product/101/', 1.0),
    ('__SHOP__/product/101', 'http://h/shop/product/102', 0.0),
    ('__SHOP__/search?q=red', 'http://h/shop/search?page=2&q=red', 1.0),
    ('__SHOP__/search?q=red', 'http://h/shop/search?q=blue', 0.0),
    ('__SHOP__/cart |OR| __SHOP__/checkout', 'http://h/shop/checkout', 1.0),
])
def test_url_match_gold_in_pred(ref, current, want):
  assert checkers.url_score(ref, current, 'http://h') == want


def test_css_subset_and_locators():
  read = lambda loc: checkers.read_locator(PAGE, loc)  # noqa: E731
  assert read('').startswith('Order Ship to: 1 Oak St')
  assert read('document.querySelector("#ship").outerText') == 'Ship to: 1 Oak St'
  assert read("document.querySelector('p.box.addr').innerText") == 'Ship to: 1 Oak St'
  assert read('document.querySelector(\'[name="city"]\').value') == 'Austin'
  assert read('document.querySelector(\'[name="state"]\').value') == 'TX'
  assert read('document.querySelector(\'[name="n"]\').value') == 'note'
  assert read('document.querySelector(".a .b").textContent') == 'inner'
  assert read('document.querySelector(\'[name="city"\').value') == 'Austin'  # unclosed, as WebArena
  assert read('document.querySelector("#missing").outerText') == ''
  with pytest.raises(ValueError):
    read("document.querySelector('.a').lastChild.textContent")
  with pytest.raises(ValueError):
    read('document.querySelector("a > b").outerText')


def test_program_html_on_the_last_page_and_unsupported_locators_score_zero():
  task = {'eval': {'eval_types': ['program_html'], 'program_html': [
      {'url': 'last', 'locator': 'document.querySelector("#ship").outerText',
       'required_contents': {'must_include': ['oak st |OR| elm st']}},
      {'url': 'last', 'locator': '', 'required_contents': {'exact_match': 'nope'}}]}}
  state = checkers.FinalState(FakeBackend())
  assert checkers.evaluate(task, state) == 0.0
  task['eval']['program_html'].pop()
  assert checkers.evaluate(task, state) == 1.0
  task['eval']['program_html'][0]['locator'] = 'func:helper(__page__)'
  assert checkers.evaluate(task, state) == 0.0
  task['eval']['program_html'][0].update(url='__SHOP__/cart', locator='')
  assert checkers.evaluate(task, state) == 0.0  # the page failed to load


def test_eval_types_multiply_and_url_is_read_before_navigation():
  app = sites.make_app(0)
  b = sim.SimBackend(app)
  b.goto('/shop/product/101')
  task = {'eval': {'eval_types': ['url_match', 'program_html', 'string_match'],
                   'reference_url': '__SHOP__/product/101',
                   'reference_answers': {'must_include': ['ok']},
                   'program_html': [{'url': '__SHOP__/cart', 'locator': '',
                                     'required_contents': {'must_include': ['Items: 0']}}]}}
  assert checkers.evaluate(task, checkers.FinalState(b, 'ok')) == 1.0
  b.goto('/shop/product/101')
  assert checkers.evaluate(task, checkers.FinalState(b, 'no')) == 0.0


# A WebArena-style task written by hand (the schema check that runs without the package).
HANDWRITTEN = {
    'sites': ['shopping_admin'], 'task_id': 7, 'require_login': True, 'storage_state': None,
    'start_url': '__SHOPPING_ADMIN__', 'geolocation': None,
    'intent_template': 'Tell me the city of order {{id}}', 'instantiation_dict': {'id': 1},
    'intent': 'Tell me the city of order 1', 'require_reset': False, 'intent_template_id': 1,
    'eval': {'eval_types': ['url_match', 'program_html'], 'reference_answers': None,
             'reference_url': '__SHOPPING_ADMIN__/order/1',
             'program_html': [{'url': 'last', 'locator': "document.querySelector('[name=\"city\"]')"
                                                         '.value',
                               'required_contents': {'exact_match': 'Austin'}}]}}


def test_handwritten_webarena_task_is_localized_and_checked():
  task = webarena.localize(HANDWRITTEN, {'__SHOPPING_ADMIN__': 'http://h/admin/'})
  assert task['eval']['reference_url'] == 'http://h/admin/order/1'
  assert webarena.supported(task)
  assert webarena.to_task(task).meta['webarena'] is task
  good = checkers.FinalState(FakeBackend('http://h/admin/order/1'))
  assert checkers.evaluate(task, good) == 1.0
  assert checkers.evaluate(task, checkers.FinalState(FakeBackend('http://h/admin/order/2'))) == 0


@pytest.fixture(scope='module')
def lite():
  if webarena.task_file() is None:
    pytest.skip(f'{webarena.DISTRIBUTION} is not installed')
  return webarena.load()


def test_webarena_lite_has_165_tasks_in_our_schema(lite):
  assert len(lite) == 165
  assert {'shopping', 'shopping_admin', 'reddit', 'gitlab', 'map'} <= webarena.sites_of(lite)
  for t in lite:
    assert {'task_id', 'intent', 'start_url', 'eval', 'sites'} <= set(t)
    assert set(t['eval']['eval_types']) <= {'string_match', 'url_match', 'program_html'}
  assert sum(map(webarena.supported, lite)) >= 120  # func: helpers and JS chains are not


def test_webarena_lite_string_and_url_checks_run(lite):
  checked = 0
  for t in lite:
    ev = t['eval']
    if ev['eval_types'] == ['string_match']:
      ref = ev['reference_answers']
      answer = ' '.join(v if isinstance(v, str) else ' '.join(v) for v in ref.values())
      assert checkers.evaluate(t, checkers.FinalState(FakeBackend(), answer)) == 1.0, t['task_id']
      assert checkers.evaluate(t, checkers.FinalState(FakeBackend(), 'zzz')) == 0.0
      checked += 1
    elif ev['eval_types'] == ['url_match']:
      url = webarena.localize(t, {p: 'http://h' for p in webarena.PLACEHOLDERS})
      ref = url['eval']['reference_url'].split(' |OR| ')[0]
      assert checkers.evaluate(url, checkers.FinalState(FakeBackend(ref))) == 1.0
      checked += 1
  assert checked > 90
