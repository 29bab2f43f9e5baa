"""Test-time alignment with a recording fake LLM: exactly the last n interactions are
simulated, feedback and rewrite follow, personas persist and reload; semantic memory
regenerates only when the history grew."""
import pytest

from jaxpapers.papers.personaagent import alignment
from jaxpapers.papers.personaagent import llm_experiment
from jaxpapers.papers.personaagent import prompts
from jaxpapers.papers.personaagent import semantic
from jaxpapers.papers.personaagent import tasks


class FakeLLM:
  """Records every chat; answers '3' to questions, fixed texts to feedback / rewrites."""

  def __init__(self, rewrite='You love dramas.'):
    self.calls, self.rewrite = [], rewrite

  def __call__(self, chats, max_new_tokens):
    self.calls.append((list(chats), max_new_tokens))
    out = []
    for system, user in chats:
      if user.startswith('What is the score'):
        out.append('3')
      elif 'Output only the new persona' in user:
        out.append(self.rewrite)
      elif 'Predicted vs true' in user:
        out.append('The persona rates too low.')
      else:
        out.append('You like comedies.')
    return out


def test_alignment_simulates_exactly_the_last_n_history_interactions(small_tasks):
  users = small_tasks.users[:3]
  targets = llm_experiment.targets(small_tasks, users, n=3)
  llm = FakeLLM()
  initial = {u: f'persona of {u}' for u in users}
  by_it, logs = alignment.align(llm, initial, targets, alignment.AlignConfig(iterations=2))
  sims = [chats for chats, budget in llm.calls if budget == 3]
  assert len(sims) == 2 and len(llm.calls) == 6          # simulate, feedback, rewrite x E
  for u, chat in zip(users, [sims[0][3 * i:3 * i + 3] for i in range(3)]):
    last = small_tasks.splits[u].history[-3:]
    want = [tasks.RATING_PROMPT.format(text=small_tasks.movies[x.item].text) for x in last]
    assert [c[1] for c in chat] == want                  # the last 3, oldest first
    assert all(c[0] == initial[u] for c in chat)         # with the current persona
    assert all(x.time <= q.time for x in last for q in small_tasks.splits[u].queries)
  assert all(c[0] == 'You love dramas.' for c in sims[1])  # iteration 2 uses the rewrite
  feedback = llm.calls[1][0][0][1]
  last = small_tasks.splits[users[0]].history[-1]
  assert f'predicted 3, true {last.rating}' in feedback
  assert by_it[2] == {u: 'You love dramas.' for u in users} and by_it[0] == initial
  assert logs[0]['rows'][0]['true'] == [str(x.rating) for x in
                                        small_tasks.splits[users[0]].history[-3:]]


def test_empty_rewrite_keeps_the_persona():
  targets = {1: [alignment.Target('1-1', 'M (1990). Genres: drama.', 'q', '4')]}
  by_it, logs = alignment.align(FakeLLM(rewrite='  '), {1: 'old'}, targets,
                                alignment.AlignConfig(iterations=1))
  assert by_it[1] == {1: 'old'} and logs[0]['rows'][0]['kept']


def test_personas_round_trip(tmp_path):
  saved = {0: {5: 'You like "noir".\nTwo lines.', 7: ''}, 1: {5: 'ünïcode', 7: 'x'}}
  alignment.save_personas(tmp_path / 'p.jsonl', saved)
  assert alignment.load_personas(tmp_path / 'p.jsonl') == saved


def test_align_saves_every_iteration(tmp_path):
  targets = {1: [alignment.Target('1-1', 'M', 'What is the score', '4')]}
  by_it, _ = alignment.align(FakeLLM(), {1: 'p0'}, targets, alignment.AlignConfig(iterations=2),
                             tmp_path / 'personas.jsonl')
  assert alignment.load_personas(tmp_path / 'personas.jsonl') == by_it


def test_semantic_memory_regenerates_only_when_history_grew(small_tasks, tmp_path):
  u = small_tasks.users[0]
  history = small_tasks.splits[u].history
  mem = semantic.SemanticMemory(max_items=5, refresh_every=3)
  llm = FakeLLM()
  assert mem.update(llm, {u: history[:-3]}, small_tasks.movies) == [u]
  prompt = llm.calls[0][0][0][1]
  assert small_tasks.movies[history[-4].item].text in prompt          # newest item shown
  assert small_tasks.movies[history[-1].item].text not in prompt      # later ones are not
  assert mem.update(llm, {u: history[:-1]}, small_tasks.movies) == []  # grew by 2 < 3
  assert mem.update(llm, {u: history}, small_tasks.movies) == [u]
  mem.save(tmp_path / 's.jsonl')
  again = semantic.SemanticMemory()
  again.load(tmp_path / 's.jsonl')
  assert again.entries == mem.entries and again.summary(u) == 'You like comedies.'
  assert prompts.initial_persona(again.summary(u)).startswith('You are a movie viewer.')
