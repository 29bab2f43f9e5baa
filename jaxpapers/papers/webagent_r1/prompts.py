"""The reference's prompt text and turn layout, with its history compression.

Strings are copied from weizhepei/WebAgent-R1: the training system prompt
(`Train/verifiers/verifiers/prompts/system_prompts.py` `WEBARENA_SYS_PROMPT`), the chat turns of
`Eval/agent/prompts/prompt_constructor.py` `WebRLChatPromptConstructor.construct`, and the error
replies of `Train/verifiers/verifiers/envs/webarena_env.py` `WebArenaEnv.env_response`. Earlier
pages become `PLACEHOLDER` while earlier answers stay, which bounds the context over 15 steps.
"""
import re

from jaxpapers.papers.webagent_r1 import actions

PLACEHOLDER = '** Simplified html **'  # stands in for every page but the current one

# Error replies; the reference puts one in front of the next turn's `Round {k}` with no separator.
NO_ANSWER_ERROR = ('Error: cannot parse action from generated contents.\n'
                   'Make sure there is only one action enclosed by <answer> and </answer>.')

# The training system prompt, verbatim (the eval prompt `p_webrl_chat_think.json` differs only in
# spelling the <think>/<answer> format over several lines).
SYSTEM_PROMPT = (
    "You are a professional web browsing agent assistant that can fulfill user's high-level "
    'instructions. Given simplified html of the browsed webpage at each step, you plan '
    'operations in python-style pseudo code using provided functions. \n'
    'You first think about the reasoning process as an internal monologue and then decide an '
    'action. The reasoning process and answer are enclosed within <think> </think> and '
    '<answer> </answer> tags, respectively, i.e., responding in the following format: <think> '
    '... </think>\n'
    '<answer> ... </answer>. \n'
    '\n'
    '# More details about the code action\n'
    'Your action should be readable, simple. Please generate **ONLY ONE ACTION** in one round. '
    'Predefined functions are as follow:\n'
    '\n'
    '```\n'
    'def do(action, argument, element):\n'
    '\t"""A single browsing operation on the webpage.\n'
    '\tArgs:\n'
    '\t\t:param action: one of the actions from ["Click", "Right Click", "Type", "Search", '
    '"Hover", "Scroll Up", "Scroll Down", "Press Enter", "Switch Tab", "Select Dropdown '
    'Option", "Wait"].\n'
    '\t\t:param argument: optional. Only for "Type", "Search", "Switch Page", and "Select '
    'Dropdown Option", indicating the content to type in, page number(start from 0) to switch, '
    'or key to press.\n'
    '\t\t                           "Search" action is equivalent to "Type" action plus "Enter" '
    'key press.\n'
    '\t\t:param element: optional. Only for "Click", "Right Click", "Type", "Search", "Select '
    'Dropdown Option", and "Hover". Should be specific element id in the html.\n'
    '\tReturns:\n'
    '\t\tNone. The webpage will be updated after executing the action.\n'
    '\t"""\n'
    '\n'
    'def exit(message):\n'
    '\t"""Ending the browsing process if the assistant think it has fulfilled the goal.\n'
    '\tArgs:\n'
    "\t\t:param message: optional. If user's instruction is a question, return assistant's "
    'answer in the message based on the browsing content.\n'
    '\tReturns:\n'
    '\t\tNone.\n'
    '\t"""\n'
    '\n'
    'def go_backward():\n'
    '\t"""Go back to the previous page.\n'
    '\t"""\n'
    '\n'
    'def go_forward():\n'
    '  """Go forward to the next page.\n'
    '  """\n'
    '```\n'
    '\n'
    'Here are some examples:\n'
    "- <think> # Element: the 'REPORTS' section on the left sidebar </think>\n"
    '<answer> do(action="Click", element="7")</answer>\n'
    "- <think> # Element: the 'Period' dropdown, middle center </think>\n"
    '<answer> do(action="Select Dropdown Option", argument="Month", element="20") </answer>\n'
    "- <think> # Element: the 'From' date picker input field, middle center </think>\n"
    '<answer> do(action="Type", argument="01/01/2023", element="22") </answer>\n'
    '- <think> reasoning process here </think>\n'
    '<answer> do(action="Scroll Down") </answer>\n'
    '- <think> reasoning process here </think>\n'
    '<answer> exit(message="The top-3 best-selling products in January 2023 are: 1") </answer>\n'
    '- <think> # Element: The search bar </think>\n'
    '<answer> do(action="Search", argument="international airport near Carnegie Mellon '
    'University within a driving distance of 50 km", element="13" </answer>\n'
    '- <think> # Note: Pittsburgh International Airport, Southern Beltway, Findlay Township, '
    'Allegheny County, 15231, United States\n'
    "# Element: The field labeled 'Pittsburgh International Airport' in the top left corner "
    '</think>\n'
    '<answer> do(action="Type", argument="Cleveland Hopkins International Airport", '
    'element="14") </answer>\n'
    '\n'
    'REMEMBER: \n'
    '- you can generate **ONLY ONE ACTION** in one round. \n'
    '- If you have multiple potential actions to explore, you should generate other actions in '
    'separate rounds.\n'
    "- Don't generate an operation element that you do not see in the screenshot.\n"
    '- Use "# Element" to describe the element you choose in the html.\n'
    '- Use \'# Note" to record information useful to answer the instruction if needed.\n'
    '- If you find yourself fallen into some sort of loop, try to use another method or change '
    'your action.\n'
    '- If you think a page is still loading or still playing animation and you want to wait a '
    'while, use "Wait" action.\n'
    "- You are acting in a real world, try your best not to reject user's demand. Solve all "
    'the problem you encounter.\n'
    "- If you think you didn't get expected webpage, you should try using more precise and "
    'locative description of the element.\n'
    '- You must make sure the target element of `find_element*` exists on current screenshot, '
    'if not, you should navigate to the target place first.\n'
    '- You must identify potential errors or mistakes made by `find_element*` function and '
    'correct them. If the webpage is not as expected, you should try to re-do or un-do the '
    'operation.\n'
    "- You should **NEVER** try to use the browser's address bar at the top of the page to "
    'navigate.\n'
    "- Your action shouldn't be in a code snippet format. Just write the function name and its "
    'arguments.\n'
    '- For exit, go_backward, go_forward request, you should strictly follow the format of '
    'exit, go_backward, go_forward functions, actions like do("Exit", xxx, None) or do("exit", '
    'xxx, None) are not allowed.\n'
    '- If you use do() function to perform "Click", "Right Click", "Type", "Search", "Select '
    'Dropdown Option", and "Hover", the param element must not be None.\n'
)


def invalid_action_error(action_text: str) -> str:
  """The reply to an answer that does not parse or cannot be run."""
  return (f'Error: invalid action {action_text}.\n'
          'Make sure there is only one action enclosed by <answer> and </answer>.')


def read_turn(turn: str, element_ids) -> tuple[actions.Action | None, str]:
  """(the turn's action, '') or (None, the reference's error reply) when it has no
  `<answer>` or its action does not parse against the page's `element_ids`."""
  try:
    return actions.parse_answer(turn, element_ids), ''
  except actions.ParseError as e:
    if 'no <answer>' in str(e):
      return None, NO_ANSWER_ERROR
    try:
      text = actions.extract_answer(turn)
    except actions.ParseError:
      text = turn.strip()
    return None, invalid_action_error(text)


def first_turn(intent: str, obs: str) -> str:
  """The first user turn: the task and the start page."""
  return f'Task Instruction: {intent}\n\nRound 0\n\n{obs}'


def next_turn(k: int, obs: str, error: str = '') -> str:
  """User turn `k` >= 1; `error` (if any) is prefixed as the reference does, without a separator."""
  return f'{error}Round {k}\n\n{obs}'


def compress_history(turns: list[dict], simplify_thinking: bool = False) -> list[dict]:
  """`turns` (chat messages) with every user turn but the last showing `PLACEHOLDER` as its page.

  User turn k keeps what precedes its `Round {k}` header (task instruction, error reply) and the
  header, as the reference's compressed turns `Task Instruction: {intent}\n\nRound 0\n\n** Simplified
  html **` and `Round {k}\n\n** Simplified html **`. Assistant turns are kept; with
  `simplify_thinking` an earlier answer becomes `<think> simplified reasoning process </think>`
  plus its action (the reference's `do_simplification`). System messages pass through.
  """
  last_user = max((i for i, t in enumerate(turns) if t['role'] == 'user'), default=-1)
  out, k = [], 0
  for i, turn in enumerate(turns):
    content = turn['content']
    if turn['role'] == 'user':
      if i != last_user:
        header = f'Round {k}\n\n'
        at = content.find(header)
        if at < 0:
          raise ValueError(f'user turn {k} has no {header!r} header: {content[:80]!r}')
        content = content[:at + len(header)] + PLACEHOLDER
      k += 1
    elif turn['role'] == 'assistant' and simplify_thinking and i < last_user:
      content = _simplified(content)
    out.append({**turn, 'content': content})
  return out


def _simplified(response: str) -> str:
  """The reference's `do_simplification`: keep the action, drop the reasoning."""
  match = re.search(r'<answer>\s*(.*?)\s*</answer>', response, re.DOTALL)
  if not match:
    return response
  action = match.group(1).strip()
  if not action:
    return action
  return f'<think> simplified reasoning process </think>\n<answer> {action} </answer>'
