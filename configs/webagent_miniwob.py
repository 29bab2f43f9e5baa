"""WebAgent-R1 on MiniWoB++: the real-browser benchmark, with a scripted oracle and random actions.

Paper: WebAgent-R1 (arXiv 2505.16421) trains on WebArena-Lite; MiniWoB++ (Liu et al. 2018,
PyPI `miniwob`) is our real-browser check that observations, element ids, actions and rewards
work in headless Chromium (jaxpapers/papers/webagent_r1/miniwob.py). Each task runs at each seed
once with the agent's own observation (simplified HTML) and action grammar; success is
MiniWoB's raw reward > 0. The oracle reads only the page text and solves its tasks
(`miniwob_eval.ORACLE_TASKS`); the random policy is the floor. Model policies on the same
tasks: configs/webagent_zero_shot.py (instruct models) and configs/webagent_r1.py (the
trained ones); any `policy_fn` plugs into `miniwob_eval.evaluate_policy(policy_fn, ...)`.

  python -m jaxpapers.launch --config=configs/webagent_miniwob.py --workdir=/tmp/miniwob

Needs Debian chromium + chromium-driver and `pip install --no-deps miniwob`. Variants: `:test`
(3 tasks, 1 seed). Runtime: about 75 s on 2 CPU cores (26 tasks x 5 seeds x 2 policies; a step
~0.07 s, a new episode ~0.1 s, Chromium starts once in ~1 s). Result: results.json,
`miniwob_success` (raw reward > 0) and `miniwob_perfect` per task for `oracle` and `random`:
oracle 1.00 on its 25 tasks (also over 40 other seeds), random about 0.3.
"""
import ml_collections

from configs import common

# Tasks whose widgets are links, buttons, inputs, selects or textareas (what the element
# grammar can act on); each loads with an instruction and interactive elements.
TASKS = (
    'click-test', 'click-test-2', 'click-button', 'click-button-sequence', 'click-dialog',
    'click-dialog-2', 'click-tab', 'click-widget', 'click-checkboxes', 'click-checkboxes-large',
    'click-checkboxes-soft', 'click-checkboxes-transfer', 'click-option', 'choose-list',
    'focus-text', 'focus-text-2', 'enter-text', 'enter-text-2', 'enter-text-dynamic',
    'enter-password', 'login-user', 'read-table', 'unicode-test', 'text-transform',
    'simple-arithmetic', 'odd-or-even',
)


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False, seeds=5)
  c = ml_collections.ConfigDict()
  c.experiment = 'webagent_miniwob'   # jaxpapers/papers/webagent_r1/miniwob_eval.py
  c.tasks = list(TASKS)               # MiniWoB++ task names (html/miniwob/<name>.html)
  c.seeds = list(range(arg.seeds))    # Math.seedrandom seeds, one episode each per task
  c.policies = ['oracle', 'random']   # miniwob_eval.POLICIES; oracle runs on ORACLE_TASKS only
  c.random_seed = 0                   # the random policy's own seed

  # Environment (miniwob.MiniWoBEnv).
  c.env = ml_collections.ConfigDict(dict(
      max_steps=15,                   # policy turns per episode (paper: 15; tasks take 1-13)
      episode_s=600.0,                # MiniWoB's episode timer (its own default is 10 s)
      call_timeout_s=30.0))           # a browser call past this kills the browser

  if arg.test:
    c.tasks, c.seeds = ['click-button', 'enter-text', 'login-user'], [0]
  return c
