"""Action grammar, prompt strings and history compression, pinned against weizhepei/WebAgent-R1."""
import hashlib

import pytest

from jaxpapers.papers.webagent_r1 import actions
from jaxpapers.papers.webagent_r1 import prompts

A = actions.Action

EVERY_ACTION = [
    ('do(action="Click", element="7")', A('Click', element='7')),
    ('do(action="Right Click", element="3")', A('Right Click', element='3')),
    ('do(action="Type", argument="01/01/2023", element="22")', A('Type', element='22', argument='01/01/2023')),
    ('do(action="Search", argument="red shoes", element="13")', A('Search', element='13', argument='red shoes')),
    ('do(action="Hover", element="4")', A('Hover', element='4')),
    ('do(action="Scroll Up")', A('Scroll Up')),
    ('do(action="Scroll Down")', A('Scroll Down')),
    ('do(action="Press Enter")', A('Press Enter')),
    ('do(action="Switch Tab", argument="1")', A('Switch Tab', argument='1')),
    ('do(action="Select Dropdown Option", argument="Month", element="20")',
     A('Select Dropdown Option', element='20', argument='Month')),
    ('do(action="Wait")', A('Wait')),
    ('exit(message="The top-3 best-selling products in January 2023 are: 1")',
     A('exit', message='The top-3 best-selling products in January 2023 are: 1')),
    ('go_backward()', A('go_backward')),
    ('go_forward()', A('go_forward')),
]


@pytest.mark.parametrize('text, expected', EVERY_ACTION)
def test_every_action_parses_and_round_trips(text, expected):
  assert actions.parse_action(text) == expected
  assert actions.format_action(expected) == text
  assert actions.parse_answer(f'<think> # Element: x </think>\n<answer> {text} </answer>') == expected


def test_every_kind_is_covered():
  assert {a.kind for _, a in EVERY_ACTION} == set(actions.KINDS)


@pytest.mark.parametrize('text, expected', [
    ("do(action='Click', element='7')", A('Click', element='7')),  # single quotes
    ('do(action="Type", argument="say \\"hi\\"", element="5")', A('Type', element='5', argument='say "hi"')),
    ("do(action='Type', argument='it\\'s', element='5')", A('Type', element='5', argument="it's")),
    ('do(action="Type", argument="it\'s", element="5")', A('Type', element='5', argument="it's")),
    ('do(action="Type", argument="", element="5")', A('Type', element='5', argument='')),  # clears
    ('do(element="7", action="click")', A('Click', element='7')),  # order, case as the reference
    ('do(action="Go Backward")', A('go_backward')),  # the reference's do() spelling
    ('exit(message="")', A('exit', message='')),
    ('exit()', A('exit', message='')),  # message is optional in the prompt
    ('exit(message="a \\\\ b\\nc")', A('exit', message='a \\ b\nc')),
])
def test_quotes_and_spellings(text, expected):
  assert actions.parse_action(text) == expected
  assert actions.parse_action(actions.format_action(expected)) == expected


@pytest.mark.parametrize('value', ['', 'x', 'say "hi" \\ there', "it's", 'a\nb\tc\r\x00', 'café ✓', '{}()"\'',
                                   'exit(message="x")'])
def test_format_round_trips_any_text(value):
  for action in (A('Type', element='1', argument=value), A('exit', message=value)):
    assert actions.parse_action(actions.format_action(action)) == action


@pytest.mark.parametrize('text, says', [
    ('<think>no tag</think> do(action="Click", element="7")', 'no <answer>'),
    ('<answer>do(action="Click", element="7")', 'no <answer>'),
    ('<answer>   </answer>', 'empty action'),
    ('<answer>Click element 7</answer>', 'exactly one call'),
    ('<answer>I will do(action="Click", element="7")</answer>', 'exactly one call'),  # extra text
    ('<answer>do(action="Click", element="7") then exit</answer>', 'exactly one call'),
    ('<answer>do(action="Click", element="7"); go_backward()</answer>', 'exactly one call'),
    ('<answer>do(action="Search", argument="x", element="13" </answer>', 'exactly one call'),  # no ")"
    ('<answer>do(action="Click", element="7"</answer>', 'exactly one call'),
    ('<answer>```do(action="Click", element="7")```</answer>', 'exactly one call'),
    ('<answer>[do(action="Wait")]</answer>', 'exactly one call'),
    ('<answer>click(element="7")</answer>', 'unknown function click()'),
    ('<answer>do("Exit", "x", None)</answer>', 'keyword arguments only'),
    ('<answer>do(action="Fly", element="7")</answer>', "unknown action 'Fly'"),
    ('<answer>do(action="Exit", argument="x")</answer>', "unknown action 'Exit'"),
    ('<answer>do(element="7")</answer>', 'needs action='),
    ('<answer>do(action="Click")</answer>', 'Click needs element='),
    ('<answer>do(action="Type", element="5")</answer>', 'Type needs argument='),
    ('<answer>do(action="Type", argument="x")</answer>', 'Type needs element='),
    ('<answer>do(action="Select Dropdown Option", element="20")</answer>', 'needs argument='),
    ('<answer>do(action="Switch Tab")</answer>', 'Switch Tab needs argument='),
    ('<answer>do(action="Switch Tab", argument="next")</answer>', 'tab index'),
    ('<answer>do(action="Scroll Down", element="3")</answer>', 'Scroll Down takes no element='),
    ('<answer>do(action="Click", argument="x", element="7")</answer>', 'Click takes no argument='),
    ('<answer>do(action="Click", element="abc")</answer>', 'element id'),
    ('<answer>do(action="Click", element="")</answer>', 'element id'),
    ('<answer>do(action="Click", element=7)</answer>', 'quoted string'),
    ('<answer>do(action="Click", element=None)</answer>', 'quoted string'),
    ('<answer>do(action="Type", argument=f"{x}", element="5")</answer>', 'quoted string'),
    ('<answer>do(action="Click", element="7", elem="8")</answer>', 'unexpected argument elem='),
    ('<answer>do(action="Click", element="7", element="8")</answer>', 'element= twice'),
    ('<answer>do(action="Click", **kw)</answer>', 'no **kwargs'),
    ('<answer>go_backward(steps="2")</answer>', 'unexpected argument steps='),
    ('<answer>exit(answer="x")</answer>', 'unexpected argument answer='),
    ('<answer>os.system("ls")</answer>', 'exactly one call'),
])
def test_malformed_answers_name_the_problem(text, says):
  with pytest.raises(actions.ParseError) as err:
    actions.parse_answer(text)
  assert says in str(err.value)


def test_unknown_element_on_the_page():
  ids = {'1', '2', '7'}
  assert actions.parse_action('do(action="Click", element="7")', ids) == A('Click', element='7')
  with pytest.raises(actions.ParseError, match='unknown element 9'):
    actions.parse_action('do(action="Click", element="9")', ids)


def test_last_answer_block_wins():
  text = ('<think>I could answer <answer>do(action="Wait")</answer> but no.</think>\n'
          '<answer>do(action="Scroll Down")</answer>')
  assert actions.parse_answer(text) == A('Scroll Down')
  assert actions.extract_answer('<answer> <answer> x </answer>') == 'x'


@pytest.mark.parametrize('text', [
    None, 7, '', '\x00', '(' * 10000, 'do(' * 5000, '"""', '<answer>\x00</answer>',
    '<answer>' + 'a' * 100000 + '</answer>', '</answer><answer>', '<answer>\ud800</answer>',
    '<answer>lambda: 0</answer>', '<answer>do(action="Click", element="7")()</answer>'])
def test_parser_is_total(text):
  with pytest.raises(actions.ParseError):
    actions.parse_answer(text)


# --- prompts: strings copied from the reference ---

def test_turns_match_the_reference():
  # Eval/agent/prompts/prompt_constructor.py, WebRLChatPromptConstructor.construct
  assert prompts.first_turn('Buy a mug', '<html>') == 'Task Instruction: Buy a mug\n\nRound 0\n\n<html>'
  assert prompts.next_turn(3, '<html>') == 'Round 3\n\n<html>'
  assert prompts.PLACEHOLDER == '** Simplified html **'


def test_error_replies_match_the_reference():
  # Train/verifiers/verifiers/envs/webarena_env.py, WebArenaEnv.env_response
  assert prompts.NO_ANSWER_ERROR == ('Error: cannot parse action from generated contents.\n'
                                     'Make sure there is only one action enclosed by <answer> and </answer>.')
  assert prompts.invalid_action_error('do(action="Fly")') == (
      'Error: invalid action do(action="Fly").\n'
      'Make sure there is only one action enclosed by <answer> and </answer>.')
  assert prompts.next_turn(1, 'p', error='E.') == 'E.Round 1\n\np'


def test_system_prompt_is_the_reference_verbatim():
  # Train/verifiers/verifiers/prompts/system_prompts.py, WEBARENA_SYS_PROMPT (4829 characters)
  text = prompts.SYSTEM_PROMPT
  assert len(text) == 4829
  assert hashlib.sha256(text.encode()).hexdigest() == (
      'a8a4e1b054599b6532b7d77654eec8b418ad3ff66ffcccb56ffecef3ddd9bb6c')
  assert text.startswith("You are a professional web browsing agent assistant that can fulfill user's high-level "
                         'instructions. Given simplified html of the browsed webpage')
  assert ':param action: one of the actions from ["Click", "Right Click", "Type", "Search", "Hover", "Scroll Up", ' \
         '"Scroll Down", "Press Enter", "Switch Tab", "Select Dropdown Option", "Wait"].' in text
  assert text.endswith('the param element must not be None.\n')


def test_prompt_examples_parse():
  """Every `<answer>` example in the system prompt parses, except the one the prompt itself misquotes."""
  blocks = prompts.SYSTEM_PROMPT.split('Here are some examples:')[1].split('REMEMBER')[0].split('\n- ')
  results = []
  for block in blocks[1:]:
    try:
      results.append(actions.parse_answer(block).kind)
    except actions.ParseError:
      results.append('error')
  assert results == ['Click', 'Select Dropdown Option', 'Type', 'Scroll Down', 'exit', 'error', 'Type']


# --- history compression ---

def _episode():
  return [
      {'role': 'system', 'content': prompts.SYSTEM_PROMPT},
      {'role': 'user', 'content': prompts.first_turn('Buy a mug', '<page 0>')},
      {'role': 'assistant',
       'content': '<think>search</think>\n<answer>do(action="Search", argument="mug", element="3")</answer>'},
      {'role': 'user', 'content': prompts.next_turn(1, '<page 1>', error=prompts.invalid_action_error('x'))},
      {'role': 'assistant', 'content': '<think>open it</think>\n<answer>do(action="Click", element="9")</answer>'},
      {'role': 'user', 'content': prompts.next_turn(2, '<page 2>')},
  ]


def test_compress_history_keeps_actions_and_drops_old_pages():
  turns = _episode()
  out = prompts.compress_history(turns)
  assert out[0] == turns[0]
  assert out[1]['content'] == 'Task Instruction: Buy a mug\n\nRound 0\n\n** Simplified html **'
  assert out[2] == turns[2] and out[4] == turns[4]
  assert out[3]['content'] == prompts.invalid_action_error('x') + 'Round 1\n\n** Simplified html **'
  assert out[5] == turns[5]  # the current page stays
  assert not any(f'<page {k}>' in t['content'] for k in (0, 1) for t in out)
  assert prompts.compress_history(out) == out  # idempotent
  assert turns[1]['content'].endswith('<page 0>')  # input untouched


def test_compress_history_simplified_thinking():
  out = prompts.compress_history(_episode(), simplify_thinking=True)
  assert out[2]['content'] == ('<think> simplified reasoning process </think>\n'
                               '<answer> do(action="Search", argument="mug", element="3") </answer>')
  assert out[4]['content'].startswith('<think> simplified')


def test_compress_history_needs_round_headers():
  with pytest.raises(ValueError, match='Round 0'):
    prompts.compress_history([{'role': 'user', 'content': 'no header'}, {'role': 'assistant', 'content': 'a'},
                              {'role': 'user', 'content': 'Round 1\n\nx'}])
