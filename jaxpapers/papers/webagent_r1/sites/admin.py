"""The admin site (/admin): orders with search and pagination, editable orders, customers.

Pages: `/admin/` (links), `/admin/orders?q=...&page=N` (newest first; q matches the order number
or the customer's name, any case), `/admin/order/{id}` (shipping address form with a state select,
a status form), `/admin/customers?page=N`, `/admin/customer/{id}` (the customer's orders).
Saving a form redirects back to the order page with a 'Saved' note (`?saved=1`).
"""
from __future__ import annotations

import dataclasses

import fastapi

from jaxpapers.papers.webagent_r1.sites import common
from jaxpapers.papers.webagent_r1.sites import world as world_lib

esc, link = common.esc, common.link
ADDRESS_FIELDS = ('street', 'city', 'state', 'zip')


def current(world: world_lib.World, s: common.Session, oid: int) -> world_lib.Order | None:
  """Order `oid` with this session's edits applied."""
  order = world.order(oid)
  edits = s.order_edits.get(oid)
  if order is None or not edits:
    return order
  address = dataclasses.replace(order.address,
                                **{k: v for k, v in edits.items() if k in ADDRESS_FIELDS})
  return dataclasses.replace(order, status=edits.get('status', order.status), address=address)


def router(world: world_lib.World, sessions: common.Sessions, per_page: int) -> fastapi.APIRouter:
  r = fastapi.APIRouter(prefix='/admin')
  nav = ' '.join(link(h, t) for h, t in (('/admin/', 'Dashboard'), ('/admin/orders', 'Orders'),
                                         ('/admin/customers', 'Customers')))

  def session(request) -> common.Session:
    return sessions.get(request.state.sid)[1]

  def doc(title: str, body: str, status: int = 200):
    return common.page_response(common.document(title, nav, body), status)

  def order_row(o: world_lib.Order) -> str:
    name = world.customer(o.customer).name
    order = link(f'/admin/order/{o.id}', f'#{o.id}')
    return f'{order} {esc(name)} {o.status} {world_lib.money(o.total)}'

  @r.get('/')
  async def home(request: fastapi.Request):
    return doc('Admin', f'<p>{len(world.orders)} orders, {len(world.customers)} customers</p>')

  @r.get('/orders')
  async def orders(request: fastapi.Request, q: str = '', page: str = '1'):
    s, needle = session(request), q.strip().lower().lstrip('#')
    found = [current(world, s, o.id) for o in reversed(world.orders)]
    if needle:
      found = [o for o in found
               if needle in str(o.id) or needle in world.customer(o.customer).name.lower()]
    shown, footer = common.paginate(found, common.int_arg(page), per_page, '/admin/orders',
                                    {'q': q} if q else None)
    search = (f'<form action="/admin/orders" method="get"><input name="q" aria-label="Search" '
              f'placeholder="Order # or customer" value="{esc(q)}"><button>Search</button></form>')
    rows = common.lines([order_row(o) for o in shown]) if shown else '<p>No orders.</p>'
    return doc('Orders', f'{search}{rows}{footer}')

  @r.get('/order/{oid}')
  async def order(request: fastapi.Request, oid: str, saved: str = ''):
    o = current(world, session(request), int(oid)) if oid.isdigit() else None
    if o is None:
      return doc('Not found', '<p>No such order.</p>', 404)
    c = world.customer(o.customer)
    a = o.address
    address = (f'<form action="/admin/order/{o.id}/address" method="post">'
               f'{common.text_input("street", "Street", a.street)}'
               f'{common.text_input("city", "City", a.city)}'
               f'{common.select("state", "State", world_lib.STATES, a.state)}'
               f'{common.text_input("zip", "Zip", a.zip)}<button>Save address</button></form>')
    status = (f'<form action="/admin/order/{o.id}/status" method="post">'
              f'{common.select("status", "Status", world_lib.STATUSES, o.status)}'
              f'<button>Update status</button></form>')
    note = '<p>Saved.</p>' if saved else ''
    body = (f'{note}<p>{link(f"/admin/customer/{c.id}", c.name)} {o.date} Total: '
            f'{world_lib.money(o.total)}</p>{address}{status}')
    return doc(f'Order #{o.id}', body)

  async def edit(request, oid: str, keys, allowed: dict):
    if not oid.isdigit() or world.order(int(oid)) is None:
      return doc('Not found', '<p>No such order.</p>', 404)
    fields = await common.form_fields(request)
    edits = session(request).order_edits.setdefault(int(oid), {})
    for k in keys:
      value = fields.get(k, '').strip()
      if k in fields and (k not in allowed or value in allowed[k]):
        edits[k] = value
    return common.redirect(f'/admin/order/{oid}?saved=1')

  @r.post('/order/{oid}/address')
  async def save_address(request: fastapi.Request, oid: str):
    return await edit(request, oid, ADDRESS_FIELDS, {'state': world_lib.STATES})

  @r.post('/order/{oid}/status')
  async def save_status(request: fastapi.Request, oid: str):
    return await edit(request, oid, ('status',), {'status': world_lib.STATUSES})

  @r.get('/customers')
  async def customers(request: fastapi.Request, page: str = '1'):
    ordered = sorted(world.customers, key=lambda c: c.name)
    shown, footer = common.paginate(ordered, common.int_arg(page), per_page, '/admin/customers')
    rows = [link(f'/admin/customer/{c.id}', c.name) for c in shown]
    return doc('Customers', f'{common.lines(rows)}{footer}')

  @r.get('/customer/{cid}')
  async def customer(request: fastapi.Request, cid: str):
    c = world.customer(int(cid)) if cid.isdigit() else None
    if c is None:
      return doc('Not found', '<p>No such customer.</p>', 404)
    s = session(request)
    mine = [current(world, s, o.id) for o in reversed(world.orders) if o.customer == c.id]
    rows = [f'{link(f"/admin/order/{o.id}", f"#{o.id}")} {o.date} {o.status}' for o in mine]
    return doc(c.name, f'<p>{esc(c.email)} {len(mine)} orders</p>{common.lines(rows)}')

  return r
