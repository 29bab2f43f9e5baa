"""The agent's action grammar: a total parser of `<answer>` text into `Action`, and its inverse.

The grammar is the reference's (weizhepei/WebAgent-R1, system prompt in
`Train/verifiers/verifiers/prompts/system_prompts.py`): `do(action=..., argument=..., element=...)`,
`exit(message=...)`, `go_backward()`, `go_forward()`. Like the reference
(`browser_env/actions.py` `create_webrl_id_based_action`) the call is read with Python's own
parser, so single or double quotes and escaped quotes work as in Python. Anything else raises
`ParseError` naming what is wrong; the env turns it into an error observation, so no model output
can crash a rollout.

Stricter than the reference on purpose: it skips text before the last `do(`/`exit(` and ignores
arguments an action does not take; here both are errors, so a malformed answer is never run as a
guess. It also accepts `go_backward()`, `go_forward()`, Right Click, Switch Tab and Wait, which the
prompt offers but its parser rejects.
"""
import ast
import dataclasses
import json
import re

DO_ACTIONS = ('Click', 'Right Click', 'Type', 'Search', 'Hover', 'Scroll Up', 'Scroll Down',
              'Press Enter', 'Switch Tab', 'Select Dropdown Option', 'Wait')
EXIT, GO_BACKWARD, GO_FORWARD = 'exit', 'go_backward', 'go_forward'
KINDS = DO_ACTIONS + (EXIT, GO_BACKWARD, GO_FORWARD)

# Which `do` actions need an element / an argument, from the reference system prompt; any other
# action must not be given one. Switch Tab's argument is the tab index.
NEEDS_ELEMENT = frozenset({'Click', 'Right Click', 'Type', 'Search', 'Select Dropdown Option', 'Hover'})
NEEDS_ARGUMENT = frozenset({'Type', 'Search', 'Select Dropdown Option', 'Switch Tab'})

_BY_LOWER = {a.lower(): a for a in DO_ACTIONS}  # the reference matches action names case-blind
_BY_LOWER.update({'go backward': GO_BACKWARD, 'go forward': GO_FORWARD})  # as the reference does
_PARAMS = {'do': ('action', 'argument', 'element'), EXIT: ('message',), GO_BACKWARD: (),
           GO_FORWARD: ()}
_EXAMPLE = 'do(action="Click", element="7")'


class ParseError(ValueError):
  """The answer is not one well-formed action; the message says why, for the error observation."""


@dataclasses.dataclass(frozen=True)
class Action:
  kind: str  # one of KINDS
  element: str | None = None  # element id in the simplified html, e.g. '12'
  argument: str | None = None  # text to type/search, option to select, tab index
  message: str | None = None  # exit's answer; '' when the task asks no question


def extract_answer(text: str) -> str:
  """The stripped text inside the last `<answer>...</answer>`.

  The reference (`verifiers/parsers/xml_parser.py` `XMLParser.parse`) takes the first match of
  `<answer>\\s*(.*?)\\s*</answer>`; here the last one wins, so a quoted tag in the reasoning does not
  shadow the final answer. With no closed tag the reference skips the browser step and replies
  `prompts.NO_ANSWER_ERROR` with the page unchanged; here that is a `ParseError`.
  """
  if not isinstance(text, str):
    raise ParseError(f'expected text, got {type(text).__name__}')
  end = text.rfind('</answer>')
  start = text.rfind('<answer>', 0, max(end, 0))
  if end < 0 or start < 0:
    raise ParseError('no <answer>...</answer> block in the response')
  return text[start + len('<answer>'):end].strip()


def parse_answer(text: str, element_ids=None) -> Action:
  """`parse_action` of the last `<answer>` block of a model response."""
  return parse_action(extract_answer(text), element_ids)


def parse_action(text: str, element_ids=None) -> Action:
  """One call of the grammar, with nothing around it; `element_ids` (if given) are the page's ids."""
  if not isinstance(text, str) or not text.strip():
    raise ParseError(f'empty action; expected one call such as {_EXAMPLE}')
  text = text.strip()
  try:
    call = ast.parse(text, mode='eval').body
  except Exception as e:  # SyntaxError, and ValueError/RecursionError/MemoryError on odd input
    raise ParseError(f'expected exactly one call such as {_EXAMPLE} with nothing around it, '
                     f'got {_clip(text)} ({type(e).__name__})') from None
  if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
    raise ParseError(f'expected exactly one call such as {_EXAMPLE}, got {_clip(text)}')
  name = call.func.id
  if name not in _PARAMS:
    raise ParseError(f'unknown function {name}(); use do(...), exit(message="..."), '
                     'go_backward() or go_forward()')
  kwargs = _string_kwargs(name, call)
  if name == 'do':
    return _do_action(kwargs, element_ids)
  if name == EXIT:
    return Action(EXIT, message=kwargs.get('message', ''))
  return Action(name)


def _string_kwargs(name: str, call: ast.Call) -> dict[str, str]:
  """Keyword arguments as strings; positional, repeated, unknown or non-string ones are errors."""
  if call.args:
    raise ParseError(f'{name}() takes keyword arguments only, e.g. {_EXAMPLE}')
  kwargs = {}
  for kw in call.keywords:
    if kw.arg is None:
      raise ParseError(f'{name}() takes no **kwargs')
    if kw.arg not in _PARAMS[name]:
      allowed = ', '.join(f'{p}=' for p in _PARAMS[name]) or 'no arguments'
      raise ParseError(f'{name}() got an unexpected argument {kw.arg}=; it takes {allowed}')
    if kw.arg in kwargs:
      raise ParseError(f'{name}() got {kw.arg}= twice')
    if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)):
      raise ParseError(f'{kw.arg}= must be a quoted string, e.g. {kw.arg}="7"')
    kwargs[kw.arg] = kw.value.value
  return kwargs


def _do_action(kwargs: dict[str, str], element_ids) -> Action:
  """Checks `do(...)` arguments against what its action takes."""
  if 'action' not in kwargs:
    raise ParseError(f'do() needs action=, e.g. {_EXAMPLE}')
  kind = _BY_LOWER.get(kwargs['action'].lower())
  if kind is None:
    raise ParseError(f'unknown action {kwargs["action"]!r}; expected one of {", ".join(DO_ACTIONS)}')
  element, argument = kwargs.get('element'), kwargs.get('argument')
  for field, value, needed in (('element', element, kind in NEEDS_ELEMENT),
                               ('argument', argument, kind in NEEDS_ARGUMENT)):
    if needed and value is None:
      raise ParseError(f'{kind} needs {field}=')
    if not needed and value is not None:
      raise ParseError(f'{kind} takes no {field}=')
  if element is not None:
    if not re.fullmatch(r'[0-9]+', element):
      raise ParseError(f'element= must be an element id such as "7", got {_clip(element)}')
    if element_ids is not None and element not in element_ids:
      raise ParseError(f'unknown element {element}: no such id on the current page')
  if kind == 'Switch Tab' and not re.fullmatch(r'[0-9]+', argument):
    raise ParseError(f'Switch Tab argument= must be a tab index such as "0", got {_clip(argument)}')
  return Action(kind, element=element, argument=argument)


def format_action(action: Action) -> str:
  """The canonical text of an action; `parse_action(format_action(a)) == a` for parsed actions."""
  if action.kind == EXIT:
    return f'exit(message={_quote(action.message or "")})'
  if action.kind in (GO_BACKWARD, GO_FORWARD):
    return f'{action.kind}()'
  parts = [f'action={_quote(action.kind)}']
  if action.argument is not None:
    parts.append(f'argument={_quote(action.argument)}')
  if action.element is not None:
    parts.append(f'element={_quote(action.element)}')
  return f'do({", ".join(parts)})'


def _quote(s: str) -> str:
  """A double-quoted literal that Python reads back as `s` (JSON escapes are Python escapes)."""
  return json.dumps(s, ensure_ascii=False)


def _clip(s: str, n: int = 120) -> str:
  return repr(s if len(s) <= n else s[:n] + '...')
