"""The study's two figures in one png: judge accuracy vs generator accuracy (one point per
judge and mode) and HSPP per judge, direct vs CoT (with bootstrap intervals)."""
from __future__ import annotations

import pathlib
from typing import Mapping


def study_plot(results: Mapping[str, Mapping], out_png: str | pathlib.Path, title: str = ''):
  """`results['<mode>/<judge>']` = metrics.summarize(...) plus 'generator_accuracy'."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  modes = sorted({k.split('/', 1)[0] for k in results})
  judges = sorted({k.split('/', 1)[1] for k in results},
                  key=lambda j: max(results[f'{m}/{j}']['generator_accuracy'] or 0
                                    for m in modes if f'{m}/{j}' in results))
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  for mode, marker in zip(modes, 'os^'):
    pts = [(results[f'{mode}/{j}']['generator_accuracy'], results[f'{mode}/{j}']['accuracy'], j)
           for j in judges if f'{mode}/{j}' in results]
    pts = [p for p in pts if p[0] is not None and p[1] is not None]
    left.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=mode)
    for x, y, name in pts:
      left.annotate(name, (x, y), fontsize=6, alpha=0.7)
  left.set_xlabel('generator accuracy')
  left.set_ylabel('judge accuracy on D_diff')
  left.legend()
  width = 0.8 / max(len(modes), 1)
  for k, mode in enumerate(modes):
    xs, ys, errs = [], [], [[], []]
    for i, j in enumerate(judges):
      r = results.get(f'{mode}/{j}', {})
      if r.get('hspp') is None:
        continue
      lo, hi = r['hspp_ci'] or (r['hspp'], r['hspp'])
      xs.append(i + k * width)
      ys.append(r['hspp'])
      errs[0].append(r['hspp'] - lo)
      errs[1].append(hi - r['hspp'])
    right.bar(xs, ys, width, yerr=errs, label=mode, capsize=2)
  right.set_xticks([i + width * (len(modes) - 1) / 2 for i in range(len(judges))])
  right.set_xticklabels(judges, rotation=30, ha='right', fontsize=7)
  right.set_ylabel('HSPP')
  right.set_ylim(0, 1)
  right.legend()
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(out_png, dpi=120)
  plt.close(fig)
