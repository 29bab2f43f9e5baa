"""The shop (/shop): categories, search, product pages, a cart and a checkout form.

Pages: `/shop/` (search box, categories), `/shop/category/{name}?sort=name|price&page=N`,
`/shop/search?q=...&page=N` (a GET form: name contains every query word, any case),
`/shop/product/{id}` (Add to cart), `/shop/cart` (Remove, Checkout), `/shop/checkout` (address
form with a state select; Place order), `/shop/orders` (placed orders, newest first),
`/shop/orders/latest` (the newest placed order; the checker reads it).
"""
from __future__ import annotations

import fastapi

from jaxpapers.papers.webagent_r1.sites import common
from jaxpapers.papers.webagent_r1.sites import world as world_lib

esc, link, money = common.esc, common.link, world_lib.money
ADDRESS = ('name', 'street', 'city', 'zip', 'state')


class Shop(common.Site):
  PREFIX = '/shop'
  ROUTES = (('GET', '/', 'home'), ('GET', '/category/{name}', 'category'),
            ('GET', '/search', 'search'), ('GET', '/product/{pid}', 'product'),
            ('POST', '/cart/add', 'cart_add'), ('POST', '/cart/remove', 'cart_remove'),
            ('GET', '/cart', 'cart'), ('GET', '/checkout', 'checkout'),
            ('POST', '/checkout', 'place_order'), ('GET', '/orders', 'orders'),
            ('GET', '/orders/{oid}', 'order'))

  def doc(self, request, title: str, body: str, status: int = 200):
    cart = link('/shop/cart', f'Cart ({len(self.session(request).cart)})')
    nav = f'{link("/shop/", "Home")} {cart}'
    return common.page_response(common.document(title, nav, body), status)

  def not_found(self, request, what: str):
    return self.doc(request, 'Not found', f'<p>No such {what}.</p>', 404)

  def product_rows(self, products) -> str:
    return common.lines([f'{link(f"/shop/product/{p.id}", p.name)} {money(p.price)}'
                         for p in products])

  async def home(self, request: fastapi.Request):
    search = ('<form action="/shop/search" method="get"><input name="q" aria-label="Search" '
              'placeholder="Search products"><button>Search</button></form>')
    cats = ' '.join(link(f'/shop/category/{c}', c) for c in world_lib.CATEGORIES)
    return self.doc(request, 'Shop', f'{search}<p>Categories: {cats}</p>')

  async def category(self, request: fastapi.Request, name: str, sort: str = 'name',
                     page: str = '1'):
    if name not in world_lib.CATEGORIES:
      return self.not_found(request, 'category')
    sort = 'price' if sort == 'price' else 'name'
    items = sorted((p for p in self.world.products if p.category == name),
                   key=lambda p: p.price if sort == 'price' else p.name)
    shown, footer = common.paginate(items, common.int_arg(page), self.per_page,
                                    f'/shop/category/{name}', {'sort': sort})
    other = 'name' if sort == 'price' else 'price'
    sorter = link(f'/shop/category/{name}?sort={other}', f'Sort by {other}')
    return self.doc(request, name, f'<p>{sorter}</p>{self.product_rows(shown)}{footer}')

  async def search(self, request: fastapi.Request, q: str = '', page: str = '1'):
    words = q.lower().split()
    items = [p for p in self.world.products
             if words and all(w in p.name.lower() for w in words)]
    shown, footer = common.paginate(items, common.int_arg(page), self.per_page, '/shop/search',
                                    {'q': q})
    rows = self.product_rows(shown) if items else '<p>No results.</p>'
    return self.doc(request, f'Search: {q}', f'{rows}{footer}')

  async def product(self, request: fastapi.Request, pid: str):
    p = self.world.product(int(pid)) if pid.isdigit() else None
    if p is None:
      return self.not_found(request, 'product')
    form = (f'<form action="/shop/cart/add" method="post"><input type="hidden" name="pid" '
            f'value="{p.id}"><button>Add to cart</button></form>')
    body = (f'<p>Price: {money(p.price)} Color: {p.color} Category: '
            f'{link(f"/shop/category/{p.category}", p.category)}</p>{form}')
    return self.doc(request, p.name, body)

  async def cart_add(self, request: fastapi.Request):
    pid = common.int_arg((await common.form_fields(request)).get('pid'), 0)
    if self.world.product(pid) is not None:
      self.session(request).cart.append(pid)
    return common.redirect('/shop/cart')

  async def cart_remove(self, request: fastapi.Request):
    at = common.int_arg((await common.form_fields(request)).get('at'), 0) - 1
    cart = self.session(request).cart
    if 0 <= at < len(cart):
      del cart[at]
    return common.redirect('/shop/cart')

  async def cart(self, request: fastapi.Request):
    items = [self.world.product(pid) for pid in self.session(request).cart]
    rows = [f'{link(f"/shop/product/{p.id}", p.name)} {money(p.price)} '
            f'<form action="/shop/cart/remove" method="post" style="display:inline">'
            f'<input type="hidden" name="at" value="{i + 1}"><button>Remove</button></form>'
            for i, p in enumerate(items)]
    total = money(sum(p.price for p in items))
    body = (f'<p>Items: <span id="cart-count">{len(items)}</span> Total: {total}</p>'
            f'<div id="cart">{common.lines(rows)}</div>')
    if items:
      body += f'<p>{link("/shop/checkout", "Checkout")}</p>'
    return self.doc(request, 'Cart', body)

  async def checkout(self, request: fastapi.Request):
    if not self.session(request).cart:
      return self.doc(request, 'Checkout', '<p>Your cart is empty.</p>')
    fields = ''.join(common.text_input(n, n.title()) for n in ADDRESS[:-1])
    form = (f'<form action="/shop/checkout" method="post">{fields}'
            f'{common.select("state", "State", world_lib.STATES, world_lib.STATES[0])}'
            f'<button>Place order</button></form>')
    return self.doc(request, 'Checkout', form)

  async def place_order(self, request: fastapi.Request):
    fields = await common.form_fields(request)
    s = self.session(request)
    if not s.cart:
      return common.redirect('/shop/cart')
    order = {'id': len(s.shop_orders) + 1, 'items': [self.world.product(p).name for p in s.cart],
             **{k: fields.get(k, '').strip() for k in ADDRESS}}
    s.shop_orders.append(order)
    s.cart.clear()
    return common.redirect(f'/shop/orders/{order["id"]}')

  async def orders(self, request: fastapi.Request):
    rows = [link(f'/shop/orders/{o["id"]}', f'Order {o["id"]}')
            for o in reversed(self.session(request).shop_orders)]
    return self.doc(request, 'My orders', common.lines(rows) if rows else '<p>No orders.</p>')

  async def order(self, request: fastapi.Request, oid: str):
    placed = self.session(request).shop_orders
    if oid == 'latest' and placed:
      oid = str(placed[-1]['id'])
    at = common.int_arg(oid, 0) - 1
    if not 0 <= at < len(placed):
      return self.not_found(request, 'order')
    o = placed[at]
    ship = f'{o["name"]}, {o["street"]}, {o["city"]}, {o["state"]} {o["zip"]}'
    body = (f'<p id="items">Items: {esc(", ".join(o["items"]))}</p>'
            f'<p id="ship-to">Ship to: {esc(ship)}</p>')
    return self.doc(request, f'Order {at + 1} placed', body)


def router(world: world_lib.World, sessions: common.Sessions, per_page: int) -> fastapi.APIRouter:
  return Shop(world, sessions, per_page).router()
