"""Tasks on the generated sites, in WebArena's task schema, and their train/test split.

Each task is a dict as in WebArena's `config_files/*.json` (task_id, sites, intent,
intent_template, intent_template_id, instantiation_dict, start_url, require_reset, eval with
eval_types / reference_answers / reference_url / program_html), so `checkers.evaluate` scores ours
and WebArena's alike. URLs use site placeholders, as WebArena's `__SHOPPING__`: `__SHOP__`,
`__FORUM__`, `__ADMIN__` stand for `{base_url}/shop` etc.; `resolve_url` fills them in. Two keys are
ours: `template` (the template's name) and `entities` (the world objects the task is about, for
the split), plus `expert` (what the scripted expert needs to know; the policy never sees it).

Templates, 5 per site family (`TEMPLATES`): shop: price question, add a product, cheapest item of a
colour in a category, open a product page, buy and ship to an address; forum: reply to a user's
newest thread, the title of that thread, create a thread, count a thread's replies; admin: change
an order's shipping address, set its status, its total, a customer's order count, open a
customer's latest order.

Split rule (`split`): an entity is held out when `crc32(salt:entity) % 100 < test_percent`. Test =
the tasks all of whose entities are held out (any template); train = the tasks of templates not in
`test_templates` with no held-out entity. Tasks of a held-out template about seen entities are in
neither set, so train and test share no template of `test_templates` and no entity.
"""
from __future__ import annotations

import random
import zlib

from jaxpapers.papers.webagent_r1.sites import world as world_lib

PLACEHOLDERS = {'__SHOP__': '/shop', '__FORUM__': '/forum', '__ADMIN__': '/admin'}
TEST_TEMPLATES = ('shop_open', 'forum_newest_title', 'admin_latest')  # held out of training
REPLY_TEXTS = ('Count me in', 'Thanks for this', 'Great thread', 'I had the same issue',
               'Following along', 'Well said')
NEW_TITLES = ('Weekend meetup', 'Beginner questions', 'Show your setup', 'Monthly challenge',
              'Favourite tools', 'Lessons learned', 'Budget tips', 'First attempt', 'Quick poll',
              'Looking for advice')
NEW_BODIES = ('Who is in?', 'Share yours below.', 'All welcome.', 'Details soon.')

TEMPLATES = {  # name -> (site, intent template)
    'shop_price': ('shop', 'What is the price of the {{product}}?'),
    'shop_add': ('shop', 'Add the {{product}} to the cart'),
    'shop_cheapest': ('shop', 'Find the cheapest {{color}} item in the {{category}} category '
                      'and add it to the cart'),
    'shop_open': ('shop', 'Open the page of the {{product}}'),
    'shop_buy': ('shop', 'Buy the {{product}} and ship it to {{name}}, {{street}}, {{city}}, '
                 '{{state}} {{zip}}'),
    'forum_reply': ('forum', 'Reply to the newest thread by {{user}} in the {{board}} board with '
                    '"{{text}}"'),
    'forum_newest_title': ('forum', 'What is the title of the newest thread by {{user}} in the '
                           '{{board}} board?'),
    'forum_post': ('forum', 'Create a thread in the {{board}} board titled "{{title}}" with the '
                   'text "{{body}}"'),
    'forum_count': ('forum', 'How many replies does the thread "{{title}}" in the {{board}} '
                    'board have?'),
    'admin_address': ('admin', 'Change the shipping address of order {{order}} to {{street}}, '
                      '{{city}}, {{state}} {{zip}}'),
    'admin_status': ('admin', 'Set the status of order {{order}} to {{status}}'),
    'admin_total': ('admin', 'What is the total of order {{order}}?'),
    'admin_count': ('admin', 'How many orders has {{customer}} placed?'),
    'admin_latest': ('admin', 'Open the most recent order of {{customer}}'),
}
TEMPLATE_IDS = {name: i for i, name in enumerate(TEMPLATES)}
SITE_START = {'shop': '__SHOP__/', 'forum': '__FORUM__/', 'admin': '__ADMIN__/'}


def resolve_url(url: str, base_url: str) -> str:
  """`url` with site placeholders replaced by the sites under `base_url`."""
  for key, path in PLACEHOLDERS.items():
    url = url.replace(key, base_url.rstrip('/') + path)
  return url


def _fill(template: str, values: dict) -> str:
  for k, v in values.items():
    template = template.replace('{{' + k + '}}', str(v))
  return template


def make_task(template: str, values: dict, evaluation: dict, entities: list[str],
              expert: dict | None = None) -> dict:
  """One task dict in WebArena's schema (task_id is set by `generate`)."""
  site, intent_template = TEMPLATES[template]
  ev = {'eval_types': [], 'reference_answers': None, 'reference_url': '', 'program_html': [],
        'string_note': ''}
  ev.update(evaluation)
  return {'sites': [site], 'task_id': -1, 'require_login': False, 'storage_state': None,
          'start_url': SITE_START[site], 'geolocation': None, 'intent_template': intent_template,
          'instantiation_dict': dict(values), 'intent': _fill(intent_template, values),
          'require_reset': False, 'eval': ev, 'intent_template_id': TEMPLATE_IDS[template],
          'template': template, 'entities': entities, 'expert': expert or {}}


def string_match(**answers) -> dict:
  return {'eval_types': ['string_match'], 'reference_answers': answers}


def url_match(url: str) -> dict:
  return {'eval_types': ['url_match'], 'reference_url': url, 'url_note': 'GOLD in PRED'}


def program_html(*checks: tuple[str, str, dict]) -> dict:
  """(url, locator, required_contents) checks."""
  return {'eval_types': ['program_html'],
          'program_html': [{'url': u, 'locator': loc, 'required_contents': req}
                           for u, loc, req in checks]}


def value_of(name: str) -> str:
  return f'document.querySelector(\'[name="{name}"]\').value'


def text_of(css: str) -> str:
  return f'document.querySelector("{css}").outerText'


def _cart_holds(name: str) -> dict:
  return program_html(('__SHOP__/cart', text_of('#cart'), {'must_include': [name]}),
                      ('__SHOP__/cart', text_of('#cart-count'), {'exact_match': '1'}))


def shop_tasks(world: world_lib.World, rng: random.Random) -> list[dict]:
  out = []
  for p in world.products:
    e = [f'product:{p.id}']
    v = {'product': p.name}
    out.append(make_task('shop_price', v, string_match(must_include=[f'{p.price:.2f}']), e))
    out.append(make_task('shop_add', v, _cart_holds(p.name), e))
    out.append(make_task('shop_open', v, url_match(f'__SHOP__/product/{p.id}'), e))
    who = f'{rng.choice(world_lib.FIRST_NAMES)} {rng.choice(world_lib.LAST_NAMES)}'
    a = world_lib.random_address(rng)
    ship = f'Ship to: {who}, {a.street}, {a.city}, {a.state} {a.zip}'
    out.append(make_task(
        'shop_buy', {**v, 'name': who, 'street': a.street, 'city': a.city, 'state': a.state,
                     'zip': a.zip},
        program_html(('__SHOP__/orders/latest', text_of('#ship-to'), {'exact_match': ship}),
                     ('__SHOP__/orders/latest', text_of('#items'),
                      {'exact_match': f'Items: {p.name}'})), e))
  for category in world_lib.CATEGORIES:
    for color in world_lib.COLORS:
      matches = [p for p in world.products if p.category == category and p.color == color]
      if matches:
        best = min(matches, key=lambda p: p.price)
        out.append(make_task('shop_cheapest', {'color': color, 'category': category},
                             _cart_holds(best.name), [f'product:{best.id}'],
                             {'product': best.name}))
  return out


def forum_tasks(world: world_lib.World, rng: random.Random) -> list[dict]:
  out = []
  for board in world_lib.BOARDS:
    threads = sorted((t for t in world.threads if t.board == board), key=lambda t: -t.time)
    newest: dict[str, world_lib.Thread] = {}
    for t in threads:
      newest.setdefault(t.author, t)
    for user, t in sorted(newest.items()):
      e, hint = [f'thread:{t.id}'], {'title': t.title}
      text = rng.choice(REPLY_TEXTS)
      out.append(make_task(
          'forum_reply', {'user': user, 'board': board, 'text': text},
          program_html((f'__FORUM__/t/{t.id}', text_of('#replies'),
                        {'must_include': [f'me: {text}']})), e, hint))
      out.append(make_task('forum_newest_title', {'user': user, 'board': board},
                           string_match(fuzzy_match=[t.title]), e, hint))
    for t in threads:
      out.append(make_task('forum_count', {'title': t.title, 'board': board},
                           string_match(exact_match=str(len(t.replies))), [f'thread:{t.id}']))
    for title in NEW_TITLES:
      for body in rng.sample(NEW_BODIES, 2):
        out.append(make_task(
            'forum_post', {'board': board, 'title': title, 'body': body},
            program_html((f'__FORUM__/b/{board}/latest', '',
                          {'must_include': [title, f'by me: {body}']})), [f'title:{title}']))
  return out


def admin_tasks(world: world_lib.World, rng: random.Random) -> list[dict]:
  out = []
  for o in world.orders:
    e, v = [f'order:{o.id}'], {'order': str(o.id)}
    a = world_lib.random_address(rng)
    url = f'__ADMIN__/order/{o.id}'
    out.append(make_task(
        'admin_address', {**v, 'street': a.street, 'city': a.city, 'state': a.state, 'zip': a.zip},
        program_html(*((url, value_of(k), {'exact_match': getattr(a, k)})
                       for k in ('street', 'city', 'state', 'zip'))), e))
    status = rng.choice([s for s in world_lib.STATUSES if s != o.status])
    out.append(make_task('admin_status', {**v, 'status': status},
                         program_html((url, value_of('status'), {'exact_match': status})), e))
    out.append(make_task('admin_total', v, string_match(must_include=[f'{o.total:.2f}']), e))
  for c in world.customers:
    mine = [o for o in world.orders if o.customer == c.id]
    e, v = [f'customer:{c.id}'], {'customer': c.name}
    out.append(make_task('admin_count', v, string_match(exact_match=str(len(mine))), e))
    if mine:
      out.append(make_task('admin_latest', v, url_match(f'__ADMIN__/order/{mine[-1].id}'), e))
  return out


def generate(world_seed: int = 0, task_seed: int = 0) -> list[dict]:
  """Every task on the world of `world_seed`, numbered in order (task_seed draws the free
  values: addresses, reply texts, new statuses)."""
  world = world_lib.generate(world_seed)
  rng = random.Random(task_seed)
  tasks = shop_tasks(world, rng) + forum_tasks(world, rng) + admin_tasks(world, rng)
  for i, task in enumerate(tasks):
    task['task_id'] = i
  return tasks


def held_out(entity: str, test_percent: int = 20, salt: int = 0) -> bool:
  return zlib.crc32(f'{salt}:{entity}'.encode()) % 100 < test_percent


def split(tasks: list[dict], test_templates=TEST_TEMPLATES, test_percent: int = 20,
          salt: int = 0) -> tuple[list[dict], list[dict]]:
  """(train, test) by the rule in the module docstring."""
  train, test = [], []
  for task in tasks:
    out = [held_out(e, test_percent, salt) for e in task['entities']]
    if out and all(out):
      test.append(task)
    elif not any(out) and task['template'] not in test_templates:
      train.append(task)
  return train, test
