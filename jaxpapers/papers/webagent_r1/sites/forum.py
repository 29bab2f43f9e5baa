"""The forum (/forum): boards, threads newest first with pagination, replies and new threads.

Pages: `/forum/` (boards), `/forum/b/{board}?page=N` (threads, newest first, 'title by user'),
`/forum/b/{board}/new` (title + body form), `/forum/t/{id}` (opening post, replies, a reply form),
`/forum/b/{board}/latest` (redirects to the board's newest thread; the checker reads it).
Threads and replies written in a session are by the user 'me'.
"""
from __future__ import annotations

import fastapi

from jaxpapers.papers.webagent_r1.sites import common
from jaxpapers.papers.webagent_r1.sites import world as world_lib

esc, link = common.esc, common.link
ME = 'me'  # the author of what the agent posts


class Forum(common.Site):
  PREFIX = '/forum'
  ROUTES = (('GET', '/', 'home'), ('GET', '/b/{board}', 'board'),
            ('GET', '/b/{board}/latest', 'latest'), ('GET', '/b/{board}/new', 'new_form'),
            ('POST', '/b/{board}/new', 'new_thread'), ('GET', '/t/{tid}', 'thread'),
            ('POST', '/t/{tid}/reply', 'reply'))

  def __init__(self, world, sessions, per_page):
    super().__init__(world, sessions, per_page)
    self.next_time = max(t.time for t in world.threads) + 1  # new threads are the newest

  def doc(self, title: str, body: str, status: int = 200):
    return common.page_response(common.document(title, link('/forum/', 'Forum'), body), status)

  def not_found(self, what: str):
    return self.doc('Not found', f'<p>No such {what}.</p>', 404)

  def threads_of(self, s: common.Session, board: str) -> list[world_lib.Thread]:
    threads = [t for t in (*self.world.threads, *s.new_threads) if t.board == board]
    return sorted(threads, key=lambda t: -t.time)

  def find(self, s: common.Session, tid: str) -> world_lib.Thread | None:
    if not tid.isdigit():
      return None
    return (self.world.thread(int(tid))
            or next((t for t in s.new_threads if t.id == int(tid)), None))

  async def home(self, request: fastapi.Request):
    boards = ' '.join(link(f'/forum/b/{b}', b) for b in world_lib.BOARDS)
    return self.doc('Forum', f'<p>Boards: {boards}</p>')

  async def board(self, request: fastapi.Request, board: str, page: str = '1'):
    if board not in world_lib.BOARDS:
      return self.not_found('board')
    threads = self.threads_of(self.session(request), board)
    shown, footer = common.paginate(threads, common.int_arg(page), self.per_page,
                                    f'/forum/b/{board}')
    rows = [f'{link(f"/forum/t/{t.id}", t.title)} by {esc(t.author)}' for t in shown]
    new = link(f'/forum/b/{board}/new', 'New thread')
    return self.doc(board, f'<p>{new}</p>{common.lines(rows)}{footer}')

  async def latest(self, request: fastapi.Request, board: str):
    if board not in world_lib.BOARDS:
      return self.not_found('board')
    return common.redirect(f'/forum/t/{self.threads_of(self.session(request), board)[0].id}')

  async def new_form(self, request: fastapi.Request, board: str):
    if board not in world_lib.BOARDS:
      return self.not_found('board')
    form = (f'<form action="/forum/b/{board}/new" method="post">'
            f'{common.text_input("title", "Title")}'
            f'<textarea name="body" aria-label="Body"></textarea><button>Post</button></form>')
    return self.doc(f'New thread in {board}', form)

  async def new_thread(self, request: fastapi.Request, board: str):
    fields = await common.form_fields(request)
    title, body = fields.get('title', '').strip(), fields.get('body', '').strip()
    if board not in world_lib.BOARDS or not title:
      return common.redirect(f'/forum/b/{board}/new')
    s = self.session(request)
    tid = world_lib.FIRST_THREAD + len(self.world.threads) + len(s.new_threads)
    self.next_time += 1
    s.new_threads.append(world_lib.Thread(tid, board, title, ME, self.next_time, body, ()))
    return common.redirect(f'/forum/t/{tid}')

  async def thread(self, request: fastapi.Request, tid: str):
    s = self.session(request)
    t = self.find(s, tid)
    if t is None:
      return self.not_found('thread')
    posts = [*t.replies, *s.replies.get(t.id, [])]
    rows = [f'{esc(p.author)}: {esc(p.text)}' for p in posts]
    form = (f'<form action="/forum/t/{t.id}/reply" method="post">'
            f'<textarea name="text" aria-label="Reply"></textarea><button>Reply</button></form>')
    body = (f'<p>{link(f"/forum/b/{t.board}", t.board)} by {esc(t.author)}: {esc(t.body)}</p>'
            f'<p>Replies: {len(posts)}</p><div id="replies">{common.lines(rows)}</div>{form}')
    return self.doc(t.title, body)

  async def reply(self, request: fastapi.Request, tid: str):
    fields = await common.form_fields(request)
    s = self.session(request)
    t = self.find(s, tid)
    text = fields.get('text', '').strip()
    if t is not None and text:
      s.replies.setdefault(t.id, []).append(world_lib.Post(ME, text))
    return common.redirect(f'/forum/t/{tid}')


def router(world: world_lib.World, sessions: common.Sessions, per_page: int) -> fastapi.APIRouter:
  return Forum(world, sessions, per_page).router()
