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

esc, link, money = common.esc, common.link, world_lib.money
ADDRESS_FIELDS = ('street', 'city', 'state', 'zip')
NAV = ' '.join(link(h, t) for h, t in (('/admin/', 'Dashboard'), ('/admin/orders', 'Orders'),
                                       ('/admin/customers', 'Customers')))


def current(world: world_lib.World, s: common.Session, oid: int) -> world_lib.Order | None:
  """Order `oid` with this session's edits applied."""
  order = world.order(oid)
  edits = s.order_edits.get(oid)
  if order is None or not edits:
    return order
  address = dataclasses.replace(order.address,
                                **{k: v for k, v in edits.items() if k in ADDRESS_FIELDS})
  return dataclasses.replace(order, status=edits.get('status', order.status), address=address)


class Admin(common.Site):
  PREFIX = '/admin'
  ROUTES = (('GET', '/', 'home'), ('GET', '/orders', 'orders'), ('GET', '/order/{oid}', 'order'),
            ('POST', '/order/{oid}/address', 'save_address'),
            ('POST', '/order/{oid}/status', 'save_status'), ('GET', '/customers', 'customers'),
            ('GET', '/customer/{cid}', 'customer'))

  def doc(self, title: str, body: str, status: int = 200):
    return common.page_response(common.document(title, NAV, body), status)

  def not_found(self, what: str):
    return self.doc('Not found', f'<p>No such {what}.</p>', 404)

  def order_row(self, o: world_lib.Order) -> str:
    order = link(f'/admin/order/{o.id}', f'#{o.id}')
    return f'{order} {esc(self.world.customer(o.customer).name)} {o.status} {money(o.total)}'

  async def home(self, request: fastapi.Request):
    w = self.world
    return self.doc('Admin', f'<p>{len(w.orders)} orders, {len(w.customers)} customers</p>')

  async def orders(self, request: fastapi.Request, q: str = '', page: str = '1'):
    s, needle = self.session(request), q.strip().lower().lstrip('#')
    found = [current(self.world, s, o.id) for o in reversed(self.world.orders)]
    if needle:
      found = [o for o in found if needle in str(o.id)
               or needle in self.world.customer(o.customer).name.lower()]
    shown, footer = common.paginate(found, common.int_arg(page), self.per_page, '/admin/orders',
                                    {'q': q} if q else None)
    search = (f'<form action="/admin/orders" method="get"><input name="q" aria-label="Search" '
              f'placeholder="Order # or customer" value="{esc(q)}"><button>Search</button></form>')
    rows = common.lines([self.order_row(o) for o in shown]) if shown else '<p>No orders.</p>'
    return self.doc('Orders', f'{search}{rows}{footer}')

  async def order(self, request: fastapi.Request, oid: str, saved: str = ''):
    o = current(self.world, self.session(request), int(oid)) if oid.isdigit() else None
    if o is None:
      return self.not_found('order')
    c, a = self.world.customer(o.customer), o.address
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
            f'{money(o.total)}</p>{address}{status}')
    return self.doc(f'Order #{o.id}', body)

  async def edit(self, request, oid: str, keys, allowed: dict):
    """Saves the posted `keys` of order `oid` (values outside `allowed` are ignored)."""
    if not oid.isdigit() or self.world.order(int(oid)) is None:
      return self.not_found('order')
    fields = await common.form_fields(request)
    edits = self.session(request).order_edits.setdefault(int(oid), {})
    for k in keys:
      value = fields.get(k, '').strip()
      if k in fields and (k not in allowed or value in allowed[k]):
        edits[k] = value
    return common.redirect(f'/admin/order/{oid}?saved=1')

  async def save_address(self, request: fastapi.Request, oid: str):
    return await self.edit(request, oid, ADDRESS_FIELDS, {'state': world_lib.STATES})

  async def save_status(self, request: fastapi.Request, oid: str):
    return await self.edit(request, oid, ('status',), {'status': world_lib.STATUSES})

  async def customers(self, request: fastapi.Request, page: str = '1'):
    ordered = sorted(self.world.customers, key=lambda c: c.name)
    shown, footer = common.paginate(ordered, common.int_arg(page), self.per_page,
                                    '/admin/customers')
    rows = [link(f'/admin/customer/{c.id}', c.name) for c in shown]
    return self.doc('Customers', f'{common.lines(rows)}{footer}')

  async def customer(self, request: fastapi.Request, cid: str):
    c = self.world.customer(int(cid)) if cid.isdigit() else None
    if c is None:
      return self.not_found('customer')
    s = self.session(request)
    mine = [current(self.world, s, o.id) for o in reversed(self.world.orders)
            if o.customer == c.id]
    rows = [f'{link(f"/admin/order/{o.id}", f"#{o.id}")} {o.date} {o.status}' for o in mine]
    return self.doc(c.name, f'<p>{esc(c.email)} {len(mine)} orders</p>{common.lines(rows)}')


def router(world: world_lib.World, sessions: common.Sessions, per_page: int) -> fastapi.APIRouter:
  return Admin(world, sessions, per_page).router()
