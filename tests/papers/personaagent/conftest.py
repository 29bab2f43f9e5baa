"""Shared fixtures: the MovieLens tasks for a few users (built once per module)."""
import pytest

from jaxpapers.papers.personaagent import tasks


@pytest.fixture(scope='module')
def small_tasks():
  return tasks.build(num_users=12, queries_per_user=4, seed=1)
