"""Rewards: correct on real answer formats, total and time-bounded on adversarial input."""
import concurrent.futures
import gc
import re
import signal
import sys
import time

import pytest

from jaxpapers.core import rewards

GSM8K_GOLD = 'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72'
TIME_LIMIT_S = 5.0   # the reward stops itself after ~1 s; headroom for a loaded CI machine

ADVERSARIAL = [
    '', None, 12345, b'\\boxed{72}', [], [{'role': 'assistant'}], {'content': 'x'},
    '\\boxed{', '\\boxed{}', '}' * 10_000, '\\boxed{' * 5_000, '{' * 10_000 + '\\boxed{1',
    '\\boxed{' + '9' * 100_000 + '}', '#### ' + '9' * 100_000,
    '\\boxed{10^{100000}}', '\\boxed{10^{10^{10}}}', '\\boxed{9^{9^{9}}}',
    '\\boxed{2^{2^{2^{2^{5}}}}}', '\\boxed{(1+x)^{2000}}', '\\boxed{100000!}',
    '\\boxed{10**100000}', '\\boxed{\\frac{1}{0}}', '\\boxed{\\sqrt{-1}^{99999}}',
    'x' * 10_000, '<think>' + 'a' * 9_000 + '<answer>' * 500,
    '<answer>' * 2_000 + '</think>' * 500, '\\boxed{\\left(' * 2_000,
    'The answer is ' + '1+' * 5_000 + '1',
]


@pytest.fixture(scope='module', autouse=True)
def _warm_math_verify():
  """The first math reward imports sympy/math-verify (seconds, once); keep it out of timings."""
  assert rewards.REWARDS.get('math')('\\boxed{\\frac{1}{2}}', '0.5') == 1.0


def _timed(fn, *args):
  start = time.perf_counter()
  value = fn(*args)
  return value, time.perf_counter() - start


@pytest.mark.parametrize('completion,gold,expected', [
    ('so she sold 72 in total. \\boxed{72}', GSM8K_GOLD, 1.0),
    ('48 + 24 = 72\n#### 72', GSM8K_GOLD, 1.0),
    ('#### 1,000.', '#### 1000', 1.0),
    ('\\boxed{$72$}', '72', 1.0),
    ('first \\boxed{72}, then I fixed it: \\boxed{71}', GSM8K_GOLD, 0.0),
    ('first \\boxed{71}, then I fixed it: \\boxed{72}', GSM8K_GOLD, 1.0),
    ('\\boxed{72} and a truncated \\boxed{7', GSM8K_GOLD, 1.0),
    ('\\boxed{\\dfrac{14}{3}}', '\\frac{14}{3}', 1.0),
    ('\\boxed{14/3}', 'The answer is $\\boxed{\\frac{14}{3}}$.', 1.0),
    ('\\boxed{4.6666667}', '\\frac{14}{3}', 1.0),
    ('\\boxed{3\\sqrt{2}}', '\\sqrt{18}', 1.0),
    ('\\boxed{\\{1,2\\}}', '\\{2,1\\}', 1.0),
    ('\\boxed{\\frac{14}{5}}', '\\frac{14}{3}', 0.0),
    ('<answer>0.5</answer>', '\\frac{1}{2}', 1.0),
    ('no final answer here: 72', GSM8K_GOLD, 0.0),
    ([{'role': 'assistant', 'content': '\\boxed{72}'}], GSM8K_GOLD, 1.0),
])
def test_math_reward_grades_real_answer_formats(completion, gold, expected):
  value, seconds = _timed(rewards.REWARDS.get('math'), completion, gold)
  assert value == expected
  assert seconds < TIME_LIMIT_S


@pytest.mark.parametrize('name', ['math', 'format', 'think_format', 'exact_match', 'f1',
                                  'substring_recall'])
def test_every_reward_is_total_and_fast_on_adversarial_input(name):
  fn = rewards.REWARDS.get(name)
  for completion in ADVERSARIAL:
    for gold in (GSM8K_GOLD, '\\boxed{' + '1' * 50, ['x', None, 3], None):
      value, seconds = _timed(fn, completion, gold)
      assert value == 0.0, (name, str(completion)[:40], str(gold)[:40])
      assert seconds < TIME_LIMIT_S, (name, str(completion)[:40], seconds)


def test_math_reward_adversarial_in_worker_threads_is_total_and_fast():
  fn = rewards.REWARDS.get('math')
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    start = time.perf_counter()
    out = list(pool.map(lambda c: _timed(fn, c, '1024'), ADVERSARIAL))
    correct = pool.submit(fn, '\\boxed{\\frac{1}{2}}', '0.5').result()
  assert all(value == 0.0 and seconds < TIME_LIMIT_S for value, seconds in out), out
  assert correct == 1.0
  assert time.perf_counter() - start < TIME_LIMIT_S * 5


def test_math_reward_deadline_leaves_no_timer_and_restores_handler():
  before = signal.getsignal(signal.SIGALRM)
  value, seconds = _timed(rewards.REWARDS.get('math'), '\\boxed{(1+x)^{2000}}', '\\sqrt{2}')
  assert value == 0.0 and seconds < TIME_LIMIT_S
  assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
  assert signal.getsignal(signal.SIGALRM) is before


def test_deadline_never_fires_inside_gc_callbacks_or_finalisers():
  """A tick landing in a gc callback or __del__ must wait: raised there it is 'unraisable'."""
  started, finished, unraisable = [], [], []

  def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
      pass

  def slow_callback(phase, info):
    if phase == 'start':
      started.append(1)
      busy(0.12)            # longer than the 50 ms tick: without the guard a tick lands here
      finished.append(1)

  class SlowFinaliser:
    def __del__(self):
      started.append(1)
      busy(0.12)
      finished.append(1)

  def work():
    while True:
      busy(0.03)            # the reward's own work, between collections
      SlowFinaliser()
      gc.collect()

  old_hook = sys.unraisablehook
  sys.unraisablehook = unraisable.append
  gc.callbacks.append(slow_callback)
  try:
    with pytest.raises(rewards._Deadline):
      rewards._with_deadline(work, 0.1)   # expires inside the first __del__
  finally:
    gc.callbacks.remove(slow_callback)
    sys.unraisablehook = old_hook
  assert len(started) >= 2 and len(finished) == len(started)
  assert not unraisable, [u.exc_value for u in unraisable]


def test_last_boxed_handles_nesting_and_unbalanced():
  assert rewards.last_boxed('\\boxed{\\frac{1}{2}} x') == '\\frac{1}{2}'
  assert rewards.last_boxed('\\boxed{a} \\fbox{b} \\boxed{c') == 'b'
  assert rewards.last_boxed('\\boxed{') is None


@pytest.mark.parametrize('text,expected', [
    ('<think>reason</think><answer>42</answer>', 1.0),
    ('  <think>\nreason\n</think>\n<answer>42</answer>\n', 1.0),
    ('<think>reason</think> text <answer>42</answer>', 0.0),
    ('<think>a</think><answer>1</answer><answer>2</answer>', 0.0),
    ('<answer>42</answer><think>r</think>', 0.0),
    ('<think>r<think>r</think><answer>42</answer>', 0.0),
    ('<think>reason</think><answer>42</answer> trailing', 0.0),
])
def test_format_reward(text, expected):
  assert rewards.REWARDS.get('format')(text) == expected


@pytest.mark.parametrize('text,expected', [
    ('<think>\nreasoning\n</think>\nanswer', 1.0),
    ('<think>a</think><think>b</think>', 0.0),
    ('no think', 0.0),
    (' <think>a</think>', 0.0),
    ('<think>unclosed', 0.0),
])
def test_think_format_reward_follows_trl(text, expected):
  assert rewards.REWARDS.get('think_format')(text) == expected


def test_regex_format_reward_is_configurable_and_total():
  fn = rewards.make_regex_format_reward(r'Answer: \d+')
  assert fn('Answer: 12 ') == 1.0
  assert fn('Answer: twelve') == 0.0
  assert fn(None) == 0.0


@pytest.mark.parametrize('name,completion,golds,expected', [
    ('exact_match', 'The Eiffel Tower!', ['eiffel tower'], 1.0),
    ('exact_match', 'It is <answer>Paris</answer>', ['Paris', 'City of Light'], 1.0),
    ('exact_match', 'the Eiffel Tower in Paris', 'Eiffel Tower', 0.0),
    ('f1', 'Eiffel Tower in Paris', ['The Eiffel Tower'], 2 * (2 / 4) * 1 / (2 / 4 + 1)),
    ('f1', 'tower', ['eiffel tower', 'tower'], 1.0),
    ('f1', '', ['eiffel tower'], 0.0),
    ('substring_recall', 'I think it is the Eiffel Tower, in Paris.', ['Eiffel Tower'], 1.0),
    ('substring_recall', 'the year 2010', ['201'], 0.0),
    ('substring_recall', 'anything', [''], 0.0),
])
def test_qa_rewards_use_squad_normalisation(name, completion, golds, expected):
  assert rewards.REWARDS.get(name)(completion, golds) == pytest.approx(expected)


def test_normalize_answer_matches_squad():
  assert rewards.normalize_answer('  The  Cat, a DOG & an emu. ') == 'cat dog emu'


def test_reward_registry_lists_names_on_unknown():
  with pytest.raises(ValueError, match=re.escape('valid: exact_match, f1, format, math')):
    rewards.REWARDS.get('bleu')
