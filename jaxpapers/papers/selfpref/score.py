r"""Self-preference metrics of judgment files in the llm-sp artifact format (ours or the
published ones), pooled per judge:

  python -m jaxpapers.papers.selfpref.score --group='(.*?)_' sp/math500/qwen/*.jsonl

`--group` is a regex whose first group, searched in each file name, names the judge (files
of one judge against several other models are pooled item by item); without it each file
is its own row.
"""
from __future__ import annotations

import collections
import pathlib
import re

from absl import app
from absl import flags

from jaxpapers.papers.selfpref import metrics

_GROUP = flags.DEFINE_string('group', '', 'regex; group 1 of its match in a file name = judge')
_BOOTSTRAP = flags.DEFINE_integer('bootstrap', 1000, 'bootstrap draws for the intervals')


def group_files(paths, pattern: str) -> dict[str, list[pathlib.Path]]:
  groups = collections.defaultdict(list)
  for p in map(pathlib.Path, paths):
    m = re.search(pattern, p.name) if pattern else None
    if pattern and m is None:
      raise ValueError(f'--group {pattern!r} does not match {p.name}')
    groups[m.group(1) if m else p.name].append(p)
  return dict(groups)


def _pct(v) -> str:
  return '   n/a' if v is None else f'{100 * v:5.1f}%'


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError('give judgment .jsonl files')
  print(f'{"judge":>34} {"files":>5} {"items":>6} {"gen acc":>7} {"D_diff":>6} {"SPR":>6} '
        f'{"judge acc":>9} {"LSPR":>6} {"HSPP":>6} {"HSPP 95% CI":>15} {"HOPP":>6}')
  for name, files in sorted(group_files(paths, _GROUP.value).items()):
    rows = metrics.read_rows(files)
    m = metrics.summarize(rows, _BOOTSTRAP.value)
    ci = '' if m['hspp_ci'] is None else f'[{_pct(m["hspp_ci"][0])}, {_pct(m["hspp_ci"][1])}]'
    print(f'{name:>34} {len(files):>5} {m["n"]:>6} {_pct(metrics.generator_accuracy(rows))} '
          f'{m["n_diff"]:>6} {_pct(m["spr"])} {_pct(m["accuracy"]):>9} {_pct(m["lspr"])} '
          f'{_pct(m["hspp"])} {ci:>15} {_pct(m["hopp"])}')


if __name__ == '__main__':
  app.run(main)
