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


def router(world: world_lib.World, sessions: common.Sessions, per_page: int) -> fastapi.APIRouter:
  r = fastapi.APIRouter(prefix='/forum')
  next_time = max(t.time for t in world.threads) + 1

  def session(request) -> common.Session:
    return sessions.get(request.state.sid)[1]

  def doc(title: str, body: str, status: int = 200):
    return common.page_response(common.document(title, link('/forum/', 'Forum'), body), status)

  def threads_of(s: common.Session, board: str) -> list[world_lib.Thread]:
    threads = [t for t in (*world.threads, *s.new_threads) if t.board == board]
    return sorted(threads, key=lambda t: -t.time)

  def find(s: common.Session, tid: str) -> world_lib.Thread | None:
    if not tid.isdigit():
      return None
    return world.thread(int(tid)) or next((t for t in s.new_threads if t.id == int(tid)), None)

  @r.get('/')
  async def home(request: fastapi.Request):
    boards = ' '.join(link(f'/forum/b/{b}', b) for b in world_lib.BOARDS)
    return doc('Forum', f'<p>Boards: {boards}</p>')

  @r.get('/b/{board}')
  async def board(request: fastapi.Request, board: str, page: str = '1'):
    if board not in world_lib.BOARDS:
      return doc('Not found', '<p>No such board.</p>', 404)
    threads = threads_of(session(request), board)
    shown, footer = common.paginate(threads, common.int_arg(page), per_page, f'/forum/b/{board}')
    rows = [f'{link(f"/forum/t/{t.id}", t.title)} by {esc(t.author)}' for t in shown]
    new = link(f'/forum/b/{board}/new', 'New thread')
    return doc(board, f'<p>{new}</p>{common.lines(rows)}{footer}')

  @r.get('/b/{board}/latest')
  async def latest(request: fastapi.Request, board: str):
    threads = threads_of(session(request), board) if board in world_lib.BOARDS else []
    if not threads:
      return doc('Not found', '<p>No such board.</p>', 404)
    return common.redirect(f'/forum/t/{threads[0].id}')

  @r.get('/b/{board}/new')
  async def new_form(request: fastapi.Request, board: str):
    if board not in world_lib.BOARDS:
      return doc('Not found', '<p>No such board.</p>', 404)
    form = (f'<form action="/forum/b/{board}/new" method="post">'
            f'{common.text_input("title", "Title")}'
            f'<textarea name="body" aria-label="Body"></textarea><button>Post</button></form>')
    return doc(f'New thread in {board}', form)

  @r.post('/b/{board}/new')
  async def new_post(request: fastapi.Request, board: str):
    nonlocal next_time
    fields = await common.form_fields(request)
    title, body = fields.get('title', '').strip(), fields.get('body', '').strip()
    if board not in world_lib.BOARDS or not title:
      return common.redirect(f'/forum/b/{board}/new')
    s = session(request)
    tid = world_lib.FIRST_THREAD + len(world.threads) + len(s.new_threads)
    next_time += 1
    s.new_threads.append(world_lib.Thread(tid, board, title, ME, next_time, body, ()))
    return common.redirect(f'/forum/t/{tid}')

  @r.get('/t/{tid}')
  async def thread(request: fastapi.Request, tid: str):
    s = session(request)
    t = find(s, tid)
    if t is None:
      return doc('Not found', '<p>No such thread.</p>', 404)
    posts = [*t.replies, *s.replies.get(t.id, [])]
    rows = [f'{esc(p.author)}: {esc(p.text)}' for p in posts]
    form = (f'<form action="/forum/t/{t.id}/reply" method="post">'
            f'<textarea name="text" aria-label="Reply"></textarea><button>Reply</button></form>')
    body = (f'<p>{link(f"/forum/b/{t.board}", t.board)} by {esc(t.author)}: {esc(t.body)}</p>'
            f'<p>Replies: {len(posts)}</p><div id="replies">{common.lines(rows)}</div>{form}')
    return doc(t.title, body)

  @r.post('/t/{tid}/reply')
  async def reply(request: fastapi.Request, tid: str):
    fields = await common.form_fields(request)
    s = session(request)
    t = find(s, tid)
    text = fields.get('text', '').strip()
    if t is not None and text:
      s.replies.setdefault(t.id, []).append(world_lib.Post(ME, text))
    return common.redirect(f'/forum/t/{tid}')

  return r
