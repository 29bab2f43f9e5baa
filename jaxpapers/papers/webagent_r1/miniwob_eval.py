"""MiniWoB++ evaluation of a text policy, with a scripted oracle and a random-action baseline.

A policy is `policy_fn(messages) -> str`: `messages` are the chat turns the reference's agent sees
(system prompt, then user/assistant turns with earlier pages compressed to
`prompts.PLACEHOLDER`, `prompts.compress_history`), and the reply holds
`<answer>action</answer>`. An LLM plugs in as a function that formats `messages` with its chat
template and generates; the two policies here read the same text:

- `oracle_policy`: hand-written rules that read the instruction and the current simplified page
  (never the DOM or MiniWoB's internals) and pick the next action from the page state; it proves
  the pipeline (observation, ids, actions, rewards) can succeed on `ORACLE_TASKS`.
- `random_policy(seed)`: a uniformly random element; a text field gets a random word of the
  instruction, a dropdown a random option, anything else a click.

`evaluate_policy` runs each task at each seed once and returns per-task success rates
(`miniwob_success`; `miniwob_perfect` counts only full rewards) plus step latencies; the
`webagent_miniwob` experiment writes both policies' numbers to results.json.
"""
from __future__ import annotations

import json
import os
import random
import re
import statistics
import time

from jaxpapers.core import registry
from jaxpapers.papers.webagent_r1 import miniwob
from jaxpapers.papers.webagent_r1 import prompts

_ELEMENT = re.compile(r'<(a|button|input|select|textarea) id="(\d+)"([^>]*)>([^<\n]*)')


def page_elements(page_text: str) -> list[dict]:
  """The elements of a simplified page as the policy reads them: id, tag, attributes, the text
  inside the tag and the rest of its line (a checkbox's label follows it)."""
  out = []
  for m in _ELEMENT.finditer(page_text):
    tag, k, attrs, inner = m.groups()
    line_end = page_text.find('\n', m.end())
    after = page_text[m.end():None if line_end < 0 else line_end]
    after = re.sub(r'^</\w+>', '', after).split('<')[0].strip()
    value = re.search(r'value="([^"]*)"', attrs)
    out.append({'id': k, 'tag': tag, 'attrs': attrs, 'text': inner.strip(), 'after': after,
                'value': value.group(1) if value else '', 'checked': ' checked' in attrs})
  return out


def split_messages(messages: list[dict]) -> tuple[str, str, int]:
  """(instruction, current page text, round) from the chat turns."""
  first = next(m['content'] for m in messages if m['role'] == 'user')
  last = [m['content'] for m in messages if m['role'] == 'user'][-1]
  instruction = first.split('Task Instruction: ', 1)[-1].split('\n\nRound 0', 1)[0]
  round_k = sum(m['role'] == 'assistant' for m in messages)
  page = last.split(f'Round {round_k}\n\n', 1)[-1]
  return instruction, page, round_k


def answer(action: str) -> str:
  return f'<think>scripted</think>\n<answer>{action}</answer>'


def click(el: dict) -> str:
  return answer(f'do(action="Click", element="{el["id"]}")')


def type_into(el: dict, text: str) -> str:
  return answer(f'do(action="Type", argument={json.dumps(text)}, element="{el["id"]}")')


# -- the oracle: (instruction pattern, rule(match, elements) -> reply | None)

def _find(els, tag=None, text=None, after=None):
  for el in els:
    if ((tag is None or el['tag'] == tag) and (text is None or el['text'] == text)
        and (after is None or el['after'] == after)):
      return el
  return None


def _button(els, label):
  return _find(els, 'button', label) or next(
      (e for e in els if e['tag'] == 'button' and e['text'].lower() == label.lower()), None)


def _fill(els, values, submit):
  """Types each value into its text field in turn, then clicks `submit`."""
  fields = [e for e in els if e['tag'] in ('input', 'textarea') and 'checkbox' not in e['attrs']
            and 'radio' not in e['attrs']]
  for field, value in zip(fields, values):
    if field['value'] != value:
      return type_into(field, value)
  return click(_button(els, submit))


def _checkboxes(els, wanted):
  for el in els:
    if 'checkbox' in el['attrs'] or 'radio' in el['attrs']:
      if ((el['after'] or el['text']) in wanted) != el['checked']:
        return click(el)
  return click(_button(els, 'Submit'))


def _nth_input(m, els, page, k):
  nth = int(re.match(r'\d+', m.group(1)).group()) if m.group(1) else 1
  return click([e for e in els if e['tag'] == 'input'][nth - 1])


def _table_value(m, els, page, k):
  row = re.search(rf'^{re.escape(m.group(1))} (.+)$', page, re.M)
  return _fill(els, [row.group(1).strip()], 'Submit')


def _choose(m, els, page, k):
  select = _find(els, 'select')
  if select['value'] == m.group(1):
    return click(_button(els, 'Submit'))
  return answer(f'do(action="Select Dropdown Option", argument={json.dumps(m.group(1))}, '
                f'element="{select["id"]}")')


def _first_line(m, els, page, k):
  """Types the page's first line (the text to copy) and submits."""
  return _fill(els, [page.strip().splitlines()[0].strip()], 'Submit')


def _arithmetic(m, els, page, k):
  a, op, b = re.search(r'^(-?\d+) ([-+x*]) (-?\d+) =$', page, re.M).groups()
  value = int(a) + int(b) if op == '+' else int(a) - int(b) if op == '-' else int(a) * int(b)
  return _fill(els, [str(value)], 'Submit')


def _odd_or_even(m, els, page, k):
  """Round k marks the k-th number (the line between its Odd and Even buttons)."""
  numbers = re.findall(r'>Odd</button>\n(-?\d+)\n<button', page)
  if k >= len(numbers):
    return click(_button(els, 'Submit'))
  odd_buttons = [e for e in els if e['text'] == 'Odd']
  even_buttons = [e for e in els if e['text'] == 'Even']
  return click((odd_buttons if int(numbers[k]) % 2 else even_buttons)[k])


def _widget(m, els, page, k):
  kind = m.group(1)
  if kind == 'text':  # MiniWoB's text widget is an <input type="input">
    return click(next(e for e in els if 'type="input"' in e['attrs']))
  return click(next(e for e in els if e['tag'] == kind or f'type="{kind}"' in e['attrs']))


# (instruction pattern, rule(match, elements, page text, round) -> reply); a rule reads the page
# state, so it can be asked again at any step.
ORACLE_RULES = [
    (r'Click the button\.', lambda m, els, p, k: click(_find(els, 'button'))),
    (r'Click button ONE\.', lambda m, els, p, k: click(_button(els, 'ONE'))),
    (r'Click button ONE, then click button TWO\.',
     lambda m, els, p, k: click(_button(els, 'ONE' if k == 0 else 'TWO'))),
    (r'Click on the "(.+)" button\.', lambda m, els, p, k: click(_button(els, m.group(1)))),
    (r'Close the dialog box by clicking the "x"\.',
     lambda m, els, p, k: click(_button(els, 'Close'))),
    (r'Click the button in the dialog box labeled "(.+)"\.',  # "x": the close button
     lambda m, els, p, k: click(_button(els, 'Close' if m.group(1) == 'x' else m.group(1)))),
    (r'Click on (Tab #\d+)\.', lambda m, els, p, k: click(_find(els, 'a', m.group(1)))),
    (r'Select (.+) from the list and click Submit\.', _choose),
    (r'Select (.*) and click Submit\.',
     lambda m, els, p, k: _checkboxes(els, set(m.group(1).split(', ')) - {'nothing'})),
    (r'Focus into the textbox\.', lambda m, els, p, k: click(_find(els, 'input'))),
    (r'Focus into the (\d+\w\w)? ?input textbox\.', _nth_input),
    (r'Enter "(.+)" into the text field and press Submit\.',
     lambda m, els, p, k: _fill(els, [m.group(1)], 'Submit')),
    (r'Type "(.+)" in all (upper|lower) case letters in the text input and press Submit\.',
     lambda m, els, p, k: _fill(els, [m.group(1).upper() if m.group(2) == 'upper'
                                      else m.group(1).lower()], 'Submit')),
    (r'Enter the password "(.+)" into both text fields and press submit\.',
     lambda m, els, p, k: _fill(els, [m.group(1)] * 2, 'Submit')),
    (r'Enter the username "(.+)" and the password "(.+)" into the text fields and press login\.',
     lambda m, els, p, k: _fill(els, [m.group(1), m.group(2)], 'Login')),
    (r'Enter the value of (.+) into the text field and press Submit\.', _table_value),
    (r'Click on a "(\w+)" widget\.', _widget),
    (r'Type the text below into the text field and press Submit\.', _first_line),
    (r'Solve the math problem and type your answer into the textbox\. Press submit when done\.',
     _arithmetic),
    (r'Mark the numbers below as odd or even and press submit when done\.', _odd_or_even),
]
# Tasks the oracle solves; the rules above match their instructions.
ORACLE_TASKS = ('click-test', 'click-test-2', 'click-button', 'click-button-sequence',
                'click-dialog', 'click-dialog-2', 'click-tab', 'click-checkboxes',
                'click-checkboxes-large', 'click-checkboxes-transfer', 'click-option',
                'choose-list', 'focus-text', 'focus-text-2', 'enter-text', 'enter-text-2',
                'enter-text-dynamic', 'enter-password', 'login-user', 'read-table', 'click-widget',
                'unicode-test', 'text-transform', 'simple-arithmetic', 'odd-or-even')


def oracle_policy(messages: list[dict]) -> str:
  """The scripted expert's next reply (exit when no rule knows the instruction)."""
  instruction, page, k = split_messages(messages)
  els = page_elements(page)
  for pattern, rule in ORACLE_RULES:
    m = re.fullmatch(pattern, instruction)
    if m:
      try:
        return rule(m, els, page, k)
      except (StopIteration, TypeError, IndexError, AttributeError):
        break  # the page is not as the rule expects
  return answer('exit(message="")')


def random_policy(seed: int = 0):
  """A policy that acts uniformly at random on the current page's elements."""
  rng = random.Random(seed)

  def policy(messages: list[dict]) -> str:
    instruction, page, _ = split_messages(messages)
    els = page_elements(page)
    if not els:
      return answer('do(action="Wait")')
    el = rng.choice(els)
    if el['tag'] == 'select':
      option = rng.choice(el['text'].split('|'))
      return answer(f'do(action="Select Dropdown Option", argument={json.dumps(option)}, '
                    f'element="{el["id"]}")')
    if el['tag'] == 'textarea' or (el['tag'] == 'input' and not re.search(
        r'type="(checkbox|radio|button|submit)"', el['attrs'])):
      return type_into(el, rng.choice(re.findall(r'[\w-]+', instruction) or ['x']))
    return click(el)
  return policy


def run_episode(env: miniwob.MiniWoBEnv, policy_fn, task: str, seed: int) -> dict:
  """One episode on row 0 of `env`; returns its outcome and per-step latencies."""
  env.reset([miniwob.make_task(task, seed)])
  messages = [{'role': 'system', 'content': prompts.SYSTEM_PROMPT},
              {'role': 'user', 'content': env.first_turn(0)}]
  step_s = []
  while True:
    reply = policy_fn(prompts.compress_history(messages))
    start = time.perf_counter()
    obs = env.step([0], [reply])[0]
    step_s.append(time.perf_counter() - start)
    messages.append({'role': 'assistant', 'content': reply})
    if obs.done:
      break
    messages.append({'role': 'user', 'content': obs.text})
  outcome = env.score(0)
  return {'task': task, 'seed': seed, 'success': outcome.reward,
          'perfect': outcome.components['perfect'],
          'raw_reward': outcome.components['raw_reward'], 'steps': outcome.info['steps'],
          'step_s': step_s, 'reset_s': env.reset_s[-1]}


def evaluate_policy(policy_fn, tasks, seeds, max_steps: int = miniwob.MAX_STEPS,
                    env: miniwob.MiniWoBEnv | None = None) -> dict:
  """Per-task success rate (raw reward > 0) and perfect rate (raw reward 1) of `policy_fn` over
  `seeds`, and step/reset latency (seconds).

  A given `env` is reused (and its own max_steps applies); otherwise one is made and closed.
  """
  own = env is None
  env = env or miniwob.MiniWoBEnv(_Config(max_steps=max_steps))
  try:
    episodes = [run_episode(env, policy_fn, t, s) for t in tasks for s in seeds]
  finally:
    if own:
      env.close()
  rate = lambda key: {t: statistics.fmean(e[key] for e in episodes if e['task'] == t)  # noqa: E731
                      for t in tasks}
  success = rate('success')
  steps = [s for e in episodes for s in e['step_s']]
  return {'miniwob_success': success, 'miniwob_perfect': rate('perfect'),
          'mean_success': statistics.fmean(success.values()),
          'step_s_median': statistics.median(steps), 'step_s_mean': statistics.fmean(steps),
          'reset_s_median': statistics.median(e['reset_s'] for e in episodes),
          'browser_start_s': env.start_s, 'episodes': episodes}


POLICIES = registry.Registry('miniwob policy')  # name -> factory(seed) -> policy_fn
POLICIES.register('oracle')(lambda seed: oracle_policy)
POLICIES.register('random')(random_policy)


class _Config:
  def __init__(self, **kw):
    self.__dict__.update(kw)


@registry.experiment('webagent_miniwob')
def run(config, workdir: str) -> dict:
  """Oracle and random policies on `config.tasks` x `config.seeds`; writes results.json."""
  tasks, seeds = list(config.tasks), list(config.seeds)
  env = miniwob.MiniWoBEnv(config.env)
  results = {}
  try:
    for name in config.policies:
      policy = POLICIES.get(name)(config.random_seed)
      task_list = [t for t in tasks if t in ORACLE_TASKS] if name == 'oracle' else tasks
      start = time.perf_counter()
      r = evaluate_policy(policy, task_list, seeds, env=env)
      r['wall_s'] = time.perf_counter() - start
      results[name] = r
      print(f'{name}: mean success {r["mean_success"]:.3f} over {len(task_list)} tasks, '
            f'step {1000 * r["step_s_median"]:.0f} ms median', flush=True)
  finally:
    env.close()
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(results, f, indent=1)
  return results
