"""The action grammar: tool calls run, malformed calls get an error observation, answers end
the episode; answer extraction and LaMP parsing count garbage as a parse failure."""
import pytest

from jaxpapers.core import env as env_lib
from jaxpapers.papers.personaagent import actions
from jaxpapers.papers.personaagent import memory as memory_lib
from jaxpapers.papers.personaagent import metrics
from jaxpapers.papers.personaagent import tasks


@pytest.fixture(scope='module')
def env():
  movies = {1: tasks.Movie(1, 'Toy Story', '1995', ('animation', 'comedy')),
            2: tasks.Movie(2, 'Heat', '1995', ('action', 'crime'))}
  mem = memory_lib.EpisodicMemory(memory_lib.hashing_embed_fn(64))
  mem.add(('LaMP_3', 7), [memory_lib.Record('Heat (1995). Genres: action, crime.', '5', 1)])
  e = actions.PersonaEnv(actions.movie_search(movies, 1), mem, k=1)
  e.reset([env_lib.Task('p', meta={'memory_key': ('LaMP_3', 7)})])
  return e


@pytest.mark.parametrize('turn, why', [
    ('Action: search_movies(toy story)', 'malformed action'),
    ('Action: search_movies[toy story', 'malformed action'),
    ('Action: google[toy story]', "unknown tool 'google'"),
    ('Action: search_history[ ]', 'search_history needs search words'),
])
def test_malformed_tool_call_gets_error_observation(env, turn, why):
  (obs,) = env.step([0], [turn])
  assert obs.invalid and not obs.done and not obs.tool_call
  assert 'Error: ' in obs.text and why in obs.text and 'Action: search_movies[words]' in obs.text


def test_tool_calls_answer_from_movies_and_history(env):
  movie, history = env.step([0, 0], ['Action: search_movies[toy story]',
                                     'Thought.\nAction: search_history[heat]'])
  assert movie.tool_call and 'Toy Story (1995)' in movie.text and not movie.done
  assert history.tool_call and 'Heat (1995). Genres: action, crime. -> 5' in history.text


def test_history_tool_without_memory_is_an_error_observation():
  e = actions.PersonaEnv(lambda q: 'x', None, k=1)
  e.reset([env_lib.Task('p', meta={'memory_key': ('LaMP_3', 1)})])
  (obs,) = e.step([0], ['Action: search_history[heat]'])
  assert 'not available' in obs.text and not obs.done


def test_answer_or_plain_text_ends_the_episode(env):
  a, b = env.step([0, 0], ['Answer: 4', '4'])
  assert a.done and b.done


@pytest.mark.parametrize('text, task, want', [
    ('Action: search_movies[x]\nObservation: y\nAnswer: 4.', 'LaMP_3', '4'),
    ('4', 'LaMP_3', '4'), ('Answer: "Drama"', 'LaMP_2', 'drama'),
    ('I think [Comedy].', 'LaMP_2', 'i think [comedy]'), ('', 'LaMP_3', ''),
    ('Action', 'LaMP_2', ''), ('Action: search_movies[x', 'LaMP_2', ''),
])
def test_final_answer(text, task, want):
  assert actions.final_answer(text, task) == want


def test_garbage_answers_are_counted_parse_failures_not_crashes():
  garbage = ['.entrySet%^\u27eb', '', 'Answer: five', 'nan', None, 'Answer: 4']
  answers = [actions.final_answer(g or '', 'LaMP_3') for g in garbage]
  r = metrics.evaluate_rating(answers, ['1', '5', '2', '3', '4', '4'], bootstrap=0)
  assert r['parse_failures'] == 5 and r['n'] == 6
  assert r['mae'] == pytest.approx((4 + 4 + 3 + 2 + 3 + 0) / 6)
