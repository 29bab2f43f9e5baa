"""A scripted expert: solves every generated task on a Backend by reading the simplified pages.

`solve(task, backend)` starts from the current page (the env's start page), acts like a careful
user (search, follow links by their labels, page through lists with 'Next', fill forms, read the
answer off the page) and returns the (think, action) steps it took, the think text in the
reference's style (`# Element: the 'Search' box at the top`, `# Note: ...`, from the system prompt's
examples). The steps drive the checker tests; `demonstration` turns them into the chat the policy
sees (the reference's user turns with each page, `<think> ... </think>\n<answer> ... </answer>`
answers), the behaviour-cloning data. It looks things up
on the pages, never in the world data; `task['expert']` is used only to cross-check a choice it
made by reading (e.g. the cheapest item), raising `ExpertError` on disagreement.
"""
from __future__ import annotations

import re

from jaxpapers.papers.webagent_r1 import actions
from jaxpapers.papers.webagent_r1 import backend as backend_lib
from jaxpapers.papers.webagent_r1 import page as page_lib
from jaxpapers.papers.webagent_r1 import prompts

MAX_PAGES = 40  # list pages scanned before giving up
_KIND_WORDS = {'link': 'link', 'button': 'button', 'input': 'box', 'select': 'dropdown',
               'textarea': 'text area', 'checkbox': 'checkbox', 'radio': 'option'}
_ROW = re.compile(r'<a id="(\d+)">([^<]*)</a>(.*)$')


class ExpertError(RuntimeError):
  """The expert could not find what the task needs (a bug in the task or the site)."""


class Script:
  """Records (think, action) steps while running them on the backend."""

  def __init__(self, backend: backend_lib.Backend):
    self.backend = backend
    self.steps: list[tuple[str, str]] = []
    self.pages: list[str] = []  # the page text each step was chosen on

  def page(self) -> page_lib.Page:
    return self.backend.observe()

  def act(self, think: str, action: actions.Action) -> None:
    self.pages.append(self.page().text)
    self.steps.append((think, actions.format_action(action)))
    if action.kind != actions.EXIT:
      backend_lib.run_action(self.backend, action)

  def element(self, kind: str, label: str) -> page_lib.Element:
    el = self.page().find(kind, label)
    if el is None:
      raise ExpertError(f'no {kind} {label!r} on {self.backend.url()}')
    return el

  def click(self, kind: str, label: str, where: str, note: str = '') -> None:
    el = self.element(kind, label)
    self.act(_think(el, where, note), actions.Action('Click', element=el.id))

  def type(self, label: str, text: str, where: str = 'in the form', search: bool = False,
           kind: str = 'input') -> None:
    el = self.element(kind, label)
    self.act(_think(el, where), actions.Action('Search' if search else 'Type', element=el.id,
                                               argument=text))

  def select(self, label: str, option: str, where: str = 'in the form') -> None:
    el = self.element('select', label)
    self.act(_think(el, where), actions.Action('Select Dropdown Option', element=el.id,
                                               argument=option))

  def exit(self, message: str, note: str) -> None:
    self.act(f'# Note: {note}', actions.Action(actions.EXIT, message=message))

  def scan(self, pick, what: str):
    """Pages through a list until `pick(rows)` returns a row; rows are (element, label, rest of
    the line) of the page's links."""
    for _ in range(MAX_PAGES):
      page = self.page()
      rows = [(page.elements[m.group(1)], m.group(2), m.group(3).strip())
              for m in map(_ROW.match, page.text.split('\n')) if m]
      found = pick(rows)
      if found is not None:
        return found
      if page.find('link', 'Next') is None:
        break
      self.click('link', 'Next', 'at the bottom of the list', f'{what} is not on this page')
    raise ExpertError(f'{what} not found, last page {self.backend.url()}')

  def read(self, pattern: str, what: str) -> str:
    match = re.search(pattern, self.page().text)
    if not match:
      raise ExpertError(f'no {what} on {self.backend.url()}')
    return match.group(1)


def _think(el: page_lib.Element, where: str, note: str = '') -> str:
  text = f"# Element: the '{el.label}' {_KIND_WORDS.get(el.kind, el.kind)} {where}"
  return f'# Note: {note}\n{text}' if note else text


# ----------------------------------------------------------------------------- shop

def _open_product(s: Script, name: str) -> None:
  s.type('Search', name, 'at the top', search=True)
  s.scan(lambda rows: next((r for r in rows if r[1] == name), None), f'the {name}')
  s.click('link', name, 'in the search results')


def shop_price(s, v, hint):
  _open_product(s, v['product'])
  price = s.read(r'Price: (\$[\d,.]+)', 'price')
  s.exit(price, f"the {v['product']} costs {price}")


def shop_add(s, v, hint):
  _open_product(s, v['product'])
  s.click('button', 'Add to cart', 'below the price')
  s.exit('', f"the {v['product']} is in the cart")


def shop_open(s, v, hint):
  _open_product(s, v['product'])
  s.exit('', f"this is the page of the {v['product']}")


def shop_cheapest(s, v, hint):
  color, category = v['color'], v['category']
  s.click('link', category, 'in the categories')
  s.click('link', 'Sort by price', 'above the list', 'sorting by price puts the cheapest first')
  row = s.scan(lambda rows: next((r for r in rows if r[1].startswith(color + ' ')), None),
               f'a {color.lower()} item')
  if hint and row[1] != hint['product']:
    raise ExpertError(f'read {row[1]!r} as the cheapest, the task says {hint["product"]!r}')
  s.click('link', row[1], 'in the list',
          f'sorted by price, the first {color.lower()} item is the {row[1]} at {row[2]}')
  s.click('button', 'Add to cart', 'below the price')
  s.exit('', f'the {row[1]} is in the cart')


def shop_buy(s, v, hint):
  _open_product(s, v['product'])
  s.click('button', 'Add to cart', 'below the price')
  s.click('link', 'Checkout', 'below the cart')
  for field in ('name', 'street', 'city', 'zip'):
    s.type(field.title(), v[field])
  s.select('State', v['state'])
  s.click('button', 'Place order', 'at the end of the form')
  s.exit('', f"the order ships to {v['name']}, {v['street']}, {v['city']}, {v['state']} {v['zip']}")


# ----------------------------------------------------------------------------- forum

def _newest_by(s: Script, v) -> tuple:
  s.click('link', v['board'], 'in the board list')
  return s.scan(lambda rows: next((r for r in rows if r[2] == f"by {v['user']}"), None),
                f"a thread by {v['user']}")


def forum_reply(s, v, hint):
  row = _newest_by(s, v)
  s.click('link', row[1], 'in the thread list',
          f"threads are newest first; the newest by {v['user']} is '{row[1]}'")
  s.type('Reply', v['text'], 'below the replies', kind='textarea')
  s.click('button', 'Reply', 'below the text area')
  s.exit('', 'the reply is posted')


def forum_newest_title(s, v, hint):
  row = _newest_by(s, v)
  s.exit(row[1], f"threads are newest first; the newest by {v['user']} is '{row[1]}'")


def forum_post(s, v, hint):
  s.click('link', v['board'], 'in the board list')
  s.click('link', 'New thread', 'above the thread list')
  s.type('Title', v['title'])
  s.type('Body', v['body'], kind='textarea')
  s.click('button', 'Post', 'at the end of the form')
  s.exit('', 'the thread is posted')


def forum_count(s, v, hint):
  s.click('link', v['board'], 'in the board list')
  s.scan(lambda rows: next((r for r in rows if r[1] == v['title']), None), 'the thread')
  s.click('link', v['title'], 'in the thread list')
  n = s.read(r'Replies: (\d+)', 'reply count')
  s.exit(n, f'the thread has {n} replies')


# ----------------------------------------------------------------------------- admin

def _open_order(s: Script, number: str) -> None:
  s.click('link', 'Orders', 'at the top')
  s.type('Search', number, 'above the orders', search=True)
  s.click('link', f'#{number}', 'in the search results')


def admin_address(s, v, hint):
  _open_order(s, v['order'])
  s.type('Street', v['street'], 'in the shipping address form')
  s.type('City', v['city'], 'in the shipping address form')
  s.select('State', v['state'], 'in the shipping address form')
  s.type('Zip', v['zip'], 'in the shipping address form')
  s.click('button', 'Save address', 'after the address fields')
  s.exit('', f"order {v['order']} now ships to {v['street']}, {v['city']}, {v['state']} {v['zip']}")


def admin_status(s, v, hint):
  _open_order(s, v['order'])
  s.select('Status', v['status'], 'below the address form')
  s.click('button', 'Update status', 'next to the status dropdown')
  s.exit('', f"order {v['order']} is now {v['status']}")


def admin_total(s, v, hint):
  _open_order(s, v['order'])
  total = s.read(r'Total: (\$[\d,.]+)', 'total')
  s.exit(total, f"order {v['order']} totals {total}")


def _open_customer(s: Script, name: str) -> None:
  s.click('link', 'Customers', 'at the top')
  s.scan(lambda rows: next((r for r in rows if r[1] == name), None), name)
  s.click('link', name, 'in the customer list')


def admin_count(s, v, hint):
  _open_customer(s, v['customer'])
  n = s.read(r'(\d+) orders', 'order count')
  s.exit(n, f"{v['customer']} has placed {n} orders")


def admin_latest(s, v, hint):
  _open_customer(s, v['customer'])
  row = s.scan(lambda rows: next((r for r in rows if r[1].startswith('#')), None), 'an order')
  s.click('link', row[1], 'at the top of the order list', 'orders are listed newest first')
  s.exit('', f"this is {v['customer']}'s most recent order")


PLANS = {f.__name__: f for f in (
    shop_price, shop_add, shop_open, shop_cheapest, shop_buy, forum_reply, forum_newest_title,
    forum_post, forum_count, admin_address, admin_status, admin_total, admin_count,
    admin_latest)}


def run(task: dict, backend: backend_lib.Backend) -> Script:
  """Solves `task` (a WebArena-schema dict from tasks.py) from the backend's current page."""
  task = task.meta['webarena'] if hasattr(task, 'meta') else task
  script = Script(backend)
  PLANS[task['template']](script, task['instantiation_dict'], task.get('expert') or {})
  return script


def solve(task: dict, backend: backend_lib.Backend) -> list[tuple[str, str]]:
  """The (think, action text) steps that solve `task`, the last an `exit`."""
  return run(task, backend).steps


def response(think: str, action: str) -> str:
  """A policy turn in the reference's format."""
  return f'<think> {think} </think>\n<answer> {action} </answer>'


def demonstration(task: dict, backend: backend_lib.Backend) -> list[dict]:
  """The expert's episode as chat messages (no system message): user turn k shows the page the
  k-th answer was chosen on, exactly as WebEnv phrases it."""
  task = task.meta['webarena'] if hasattr(task, 'meta') else task
  script = run(task, backend)
  messages = []
  for k, (page, (think, action)) in enumerate(zip(script.pages, script.steps)):
    user = prompts.first_turn(task['intent'], page) if k == 0 else prompts.next_turn(k, page)
    messages += [{'role': 'user', 'content': user},
                 {'role': 'assistant', 'content': response(think, action)}]
  return messages
