"""The generated content of the three sites: products, forum threads, customers and orders.

Everything is a pure function of `world_seed` (no data files), so the sites, the task generator and
the checkers agree on it. Names are built so that no name is a substring of another (products are
always three words, thread titles end in a unique topic, ids have a fixed number of digits): a
WebArena-style `must_include` or `url_match` check then cannot pass on the wrong entity.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import random

COLORS = ('Red', 'Blue', 'Green', 'Black', 'White', 'Yellow')
ADJECTIVES = ('Classic', 'Compact', 'Deluxe', 'Rustic', 'Modern', 'Tiny')
CATEGORIES = {  # category -> nouns
    'Kitchen': ('Mug', 'Kettle', 'Bowl'),
    'Apparel': ('Scarf', 'Hat', 'Sock'),
    'Office': ('Pen', 'Notebook', 'Lamp'),
    'Toys': ('Kite', 'Robot', 'Puzzle'),
}
BOARDS = ('gardening', 'cooking', 'cycling', 'photography', 'music')
USER_FIRST = ('maple', 'river', 'stone', 'cedar', 'amber', 'frost', 'ember', 'willow')
USER_LAST = ('fox', 'owl', 'hawk', 'wolf')
TOPICS = {
    'gardening': ('tomatoes', 'roses', 'compost', 'mulch', 'seedlings', 'herbs', 'lawns',
                  'orchids', 'pruning', 'worms', 'bulbs', 'ferns', 'cacti', 'weeds'),
    'cooking': ('bread', 'curry', 'pasta', 'dumplings', 'soup', 'pancakes', 'risotto', 'tofu',
                'pickles', 'stew', 'noodles', 'pie', 'salsa', 'waffles'),
    'cycling': ('tyres', 'chains', 'brakes', 'saddles', 'gears', 'helmets', 'lights', 'pedals',
                'racks', 'pumps', 'spokes', 'forks', 'bells', 'locks'),
    'photography': ('lenses', 'tripods', 'filters', 'portraits', 'sunsets', 'macro', 'film',
                    'flash', 'drones', 'editing', 'bokeh', 'exposure', 'zoom', 'prints'),
    'music': ('guitars', 'drums', 'violins', 'synths', 'pianos', 'ukuleles', 'cellos', 'flutes',
              'amps', 'metronomes', 'harps', 'banjos', 'choirs', 'vinyl'),
}
TITLE_FORMS = ('Tips for {}?', 'Help with {}', 'My {} story', 'Best {} advice', 'Thoughts on {}')
REPLIES = ('Great point', 'Thanks for sharing', 'I agree', 'Try again later', 'Same here',
           'Nice work', 'Good question', 'Not sure')
FIRST_NAMES = ('Alice', 'Bruno', 'Chen', 'Dana', 'Emil', 'Fatima', 'Gita', 'Hugo', 'Ines', 'Jonas')
LAST_NAMES = ('Reyes', 'Okafor', 'Lund', 'Mehta', 'Novak', 'Sato')
STREETS = ('Oak St', 'Pine Ave', 'Elm Rd', 'Lake Dr', 'Hill Ln', 'Main St', 'Park Way', 'Bay Rd')
CITIES = ('Austin', 'Denver', 'Boston', 'Seattle', 'Miami', 'Portland', 'Chicago', 'Tucson')
STATES = ('CA', 'CO', 'FL', 'IL', 'MA', 'NY', 'OR', 'TX', 'WA')
STATUSES = ('Pending', 'Processing', 'Shipped', 'Complete', 'Canceled')

N_PRODUCTS = 90
THREADS_PER_BOARD = 14
N_CUSTOMERS = 30
N_ORDERS = 120
FIRST_PRODUCT, FIRST_THREAD, FIRST_ORDER = 101, 101, 1001  # fixed-width ids


@dataclasses.dataclass(frozen=True)
class Product:
  id: int
  name: str
  color: str
  category: str
  price: float


@dataclasses.dataclass(frozen=True)
class Post:
  author: str
  text: str


@dataclasses.dataclass(frozen=True)
class Thread:
  id: int
  board: str
  title: str
  author: str
  time: int          # larger is newer
  body: str
  replies: tuple[Post, ...]


@dataclasses.dataclass(frozen=True)
class Address:
  street: str
  city: str
  state: str
  zip: str

  def line(self) -> str:
    return f'{self.street}, {self.city}, {self.state} {self.zip}'


@dataclasses.dataclass(frozen=True)
class Customer:
  id: int
  name: str
  email: str


@dataclasses.dataclass(frozen=True)
class Order:
  id: int
  customer: int      # Customer.id
  date: str
  status: str
  total: float
  address: Address


@dataclasses.dataclass(frozen=True, eq=False)
class World:
  seed: int
  products: tuple[Product, ...]
  threads: tuple[Thread, ...]
  users: tuple[str, ...]
  customers: tuple[Customer, ...]
  orders: tuple[Order, ...]          # newest (highest id) last

  def __post_init__(self):  # id lookups, built once (the world is immutable)
    for field in ('products', 'threads', 'customers', 'orders'):
      object.__setattr__(self, f'_{field}', {x.id: x for x in getattr(self, field)})

  def product(self, pid: int) -> Product | None:
    return self._products.get(pid)

  def thread(self, tid: int) -> Thread | None:
    return self._threads.get(tid)

  def order(self, oid: int) -> Order | None:
    return self._orders.get(oid)

  def customer(self, cid: int) -> Customer | None:
    return self._customers.get(cid)


def money(x: float) -> str:
  return f'${x:,.2f}'


def random_address(rng: random.Random) -> Address:
  return Address(f'{rng.randint(1, 999)} {rng.choice(STREETS)}', rng.choice(CITIES),
                 rng.choice(STATES), f'{rng.randint(10000, 99999)}')


def _products(rng: random.Random) -> tuple[Product, ...]:
  combos = [(c, a, cat, n) for cat, nouns in CATEGORIES.items() for n in nouns
            for c in COLORS for a in ADJECTIVES]
  picked = rng.sample(combos, N_PRODUCTS)
  cents = rng.sample(range(299, 6000), N_PRODUCTS)  # distinct prices: one cheapest per query
  return tuple(Product(FIRST_PRODUCT + i, f'{color} {adj} {noun}', color, cat, c / 100)
               for i, ((color, adj, cat, noun), c) in enumerate(zip(picked, cents)))


def _threads(rng: random.Random, users: tuple[str, ...]) -> tuple[Thread, ...]:
  out, tid = [], FIRST_THREAD
  times = rng.sample(range(1000, 100000), len(BOARDS) * THREADS_PER_BOARD)
  for board in BOARDS:
    topics = rng.sample(TOPICS[board], THREADS_PER_BOARD)
    for topic in topics:
      replies = tuple(Post(rng.choice(users), rng.choice(REPLIES))
                      for _ in range(rng.randint(0, 4)))
      out.append(Thread(tid, board, rng.choice(TITLE_FORMS).format(topic), rng.choice(users),
                        times[tid - FIRST_THREAD], f'Anyone into {topic}?', replies))
      tid += 1
  return tuple(out)


def _customers(rng: random.Random) -> tuple[Customer, ...]:
  names = rng.sample([f'{f} {l}' for f, l in itertools.product(FIRST_NAMES, LAST_NAMES)],
                     N_CUSTOMERS)
  return tuple(Customer(i + 1, n, n.lower().replace(' ', '.') + '@mail.com')
               for i, n in enumerate(names))


def _orders(rng: random.Random, customers: tuple[Customer, ...]) -> tuple[Order, ...]:
  days = sorted(rng.sample(range(0, 365), N_ORDERS))
  out = []
  for i, day in enumerate(days):
    month, mday = 1 + day // 31 % 12, 1 + day % 28
    out.append(Order(FIRST_ORDER + i, rng.choice(customers).id, f'2024-{month:02d}-{mday:02d}',
                     rng.choice(STATUSES), rng.randint(1000, 40000) / 100, random_address(rng)))
  return tuple(out)


@functools.lru_cache(maxsize=8)
def generate(seed: int) -> World:
  """The world of `seed` (cached: worlds are immutable)."""
  rng = random.Random(seed)
  users = tuple(rng.sample([f'{a}_{b}' for a, b in itertools.product(USER_FIRST, USER_LAST)], 16))
  customers = _customers(rng)
  return World(seed, _products(rng), _threads(rng, users), users, customers,
               _orders(rng, customers))
