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

esc, link = common.esc, common.link


def router(world: world_lib.World, sessions: common.Sessions, per_page: int) -> fastapi.APIRouter:
  r = fastapi.APIRouter(prefix='/shop')

  def session(request) -> common.Session:
    return sessions.get(request.state.sid)[1]

  def doc(request, title: str, body: str, status: int = 200):
    nav = f'{link("/shop/", "Home")} {link("/shop/cart", f"Cart ({len(session(request).cart)})")}'
    return common.page_response(common.document(title, nav, body), status)

  def product_rows(products) -> list[str]:
    return [f'{link(f"/shop/product/{p.id}", p.name)} {world_lib.money(p.price)}'
            for p in products]

  @r.get('/')
  async def home(request: fastapi.Request):
    search = ('<form action="/shop/search" method="get"><input name="q" aria-label="Search" '
              'placeholder="Search products"><button>Search</button></form>')
    cats = ' '.join(link(f'/shop/category/{c}', c) for c in world_lib.CATEGORIES)
    return doc(request, 'Shop', f'{search}<p>Categories: {cats}</p>')

  @r.get('/category/{name}')
  async def category(request: fastapi.Request, name: str, sort: str = 'name', page: str = '1'):
    if name not in world_lib.CATEGORIES:
      return doc(request, 'Not found', '<p>No such category.</p>', 404)
    sort = 'price' if sort == 'price' else 'name'
    items = sorted((p for p in world.products if p.category == name),
                   key=lambda p: p.price if sort == 'price' else p.name)
    shown, footer = common.paginate(items, common.int_arg(page), per_page,
                                    f'/shop/category/{name}', {'sort': sort})
    other = 'name' if sort == 'price' else 'price'
    sorter = link(f'/shop/category/{name}?sort={other}', f'Sort by {other}')
    return doc(request, name, f'<p>{sorter}</p>{common.lines(product_rows(shown))}{footer}')

  @r.get('/search')
  async def search(request: fastapi.Request, q: str = '', page: str = '1'):
    words = q.lower().split()
    items = [p for p in world.products if words and all(w in p.name.lower() for w in words)]
    shown, footer = common.paginate(items, common.int_arg(page), per_page, '/shop/search',
                                    {'q': q})
    rows = common.lines(product_rows(shown)) if items else '<p>No results.</p>'
    return doc(request, f'Search: {q}', f'{rows}{footer}')

  @r.get('/product/{pid}')
  async def product(request: fastapi.Request, pid: str):
    p = world.product(int(pid)) if pid.isdigit() else None
    if p is None:
      return doc(request, 'Not found', '<p>No such product.</p>', 404)
    form = (f'<form action="/shop/cart/add" method="post"><input type="hidden" name="pid" '
            f'value="{p.id}"><button>Add to cart</button></form>')
    body = (f'<p>Price: {world_lib.money(p.price)} Color: {p.color} Category: '
            f'{link(f"/shop/category/{p.category}", p.category)}</p>{form}')
    return doc(request, p.name, body)

  @r.post('/cart/add')
  async def cart_add(request: fastapi.Request):
    fields = await common.form_fields(request)
    pid = common.int_arg(fields.get('pid'), 0)
    if world.product(pid) is not None:
      session(request).cart.append(pid)
    return common.redirect('/shop/cart')

  @r.post('/cart/remove')
  async def cart_remove(request: fastapi.Request):
    fields = await common.form_fields(request)
    cart = session(request).cart
    at = common.int_arg(fields.get('at'), 0) - 1
    if 0 <= at < len(cart):
      del cart[at]
    return common.redirect('/shop/cart')

  @r.get('/cart')
  async def cart(request: fastapi.Request):
    items = [world.product(pid) for pid in session(request).cart]
    rows = [f'{link(f"/shop/product/{p.id}", p.name)} {world_lib.money(p.price)} '
            f'<form action="/shop/cart/remove" method="post" style="display:inline">'
            f'<input type="hidden" name="at" value="{i + 1}"><button>Remove</button></form>'
            for i, p in enumerate(items)]
    total = world_lib.money(sum(p.price for p in items))
    body = (f'<p>Items: <span id="cart-count">{len(items)}</span> Total: {total}</p>'
            f'<div id="cart">{common.lines(rows)}</div>')
    if items:
      body += f'<p>{link("/shop/checkout", "Checkout")}</p>'
    return doc(request, 'Cart', body)

  @r.get('/checkout')
  async def checkout(request: fastapi.Request):
    if not session(request).cart:
      return doc(request, 'Checkout', '<p>Your cart is empty.</p>')
    fields = ''.join(common.text_input(n, n.title()) for n in ('name', 'street', 'city', 'zip'))
    form = (f'<form action="/shop/checkout" method="post">{fields}'
            f'{common.select("state", "State", world_lib.STATES, world_lib.STATES[0])}'
            f'<button>Place order</button></form>')
    return doc(request, 'Checkout', form)

  @r.post('/checkout')
  async def place_order(request: fastapi.Request):
    fields = await common.form_fields(request)
    s = session(request)
    if not s.cart:
      return common.redirect('/shop/cart')
    order = {'id': len(s.shop_orders) + 1, 'items': [world.product(p).name for p in s.cart],
             **{k: fields.get(k, '').strip() for k in ('name', 'street', 'city', 'zip', 'state')}}
    s.shop_orders.append(order)
    s.cart.clear()
    return common.redirect(f'/shop/orders/{order["id"]}')

  def order_body(order: dict) -> str:
    items = ', '.join(order['items'])
    ship = f'{order["name"]}, {order["street"]}, {order["city"]}, {order["state"]} {order["zip"]}'
    return f'<p id="items">Items: {esc(items)}</p><p id="ship-to">Ship to: {esc(ship)}</p>'

  @r.get('/orders')
  async def orders(request: fastapi.Request):
    rows = [link(f'/shop/orders/{o["id"]}', f'Order {o["id"]}')
            for o in reversed(session(request).shop_orders)]
    return doc(request, 'My orders', common.lines(rows) if rows else '<p>No orders.</p>')

  @r.get('/orders/{oid}')
  async def order(request: fastapi.Request, oid: str):
    placed = session(request).shop_orders
    if oid == 'latest' and placed:
      oid = str(placed[-1]['id'])
    at = common.int_arg(oid, 0) - 1
    if not 0 <= at < len(placed):
      return doc(request, 'Not found', '<p>No such order.</p>', 404)
    return doc(request, f'Order {at + 1} placed', order_body(placed[at]))

  return r
