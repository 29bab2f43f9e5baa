"""Metrics: one `metrics.jsonl` per workdir, a tqdm bar, and PNG plots at the end."""
from __future__ import annotations

import json
import math
import os
import pathlib
import time
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np

METRICS_FILE = 'metrics.jsonl'


def is_due(step: int, every: int, total: int | None = None) -> bool:
  """True on multiples of `every` (1-based steps) and on the final step; every<=0 = never."""
  if total is not None and step == total:
    return True
  return every > 0 and step % every == 0


def _scalar(v: Any):
  v = np.asarray(jax.device_get(v))
  if v.size != 1:
    raise ValueError(f'metric value of shape {v.shape} is not a scalar')
  v = v.item()
  return v if isinstance(v, (int, bool)) or math.isfinite(v) else str(v)


class MetricWriter:
  """Appends `{"step", "time", **scalars}` lines; only process 0 writes."""

  def __init__(self, workdir: str | os.PathLike, filename: str = METRICS_FILE):
    self.path = pathlib.Path(workdir) / filename
    self.enabled = jax.process_index() == 0
    self._start = time.time()
    if self.enabled:
      self.path.parent.mkdir(parents=True, exist_ok=True)

  def write(self, step: int, scalars: Mapping[str, Any]) -> dict:
    row = {'step': int(step), 'time': round(time.time() - self._start, 3)}
    row.update({k: _scalar(v) for k, v in scalars.items()})
    if self.enabled:
      with self.path.open('a') as f:
        f.write(json.dumps(row) + '\n')
    return row

  def truncate_after(self, step: int) -> None:
    """Drops rows past `step` (a resumed run rewrites them)."""
    if not (self.enabled and self.path.exists()):
      return
    rows = [r for r in read_metrics(self.path) if r.get('step', 0) <= step]
    self.path.write_text(''.join(json.dumps(r) + '\n' for r in rows))


def read_metrics(path: str | os.PathLike) -> list[dict]:
  path = pathlib.Path(path)
  if path.is_dir():
    path = path / METRICS_FILE
  rows = []
  for line in path.read_text().splitlines():
    line = line.strip()
    if line:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue  # a line cut by a kill; the rest of the file is intact
  return rows


def progress(total: int, initial: int = 0, desc: str = 'train'):
  """tqdm bar on process 0 (disabled elsewhere)."""
  import tqdm  # local: keeps import time of non-training tools low
  return tqdm.tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True,
                   disable=jax.process_index() != 0, mininterval=1.0)


def plot_curves(rows: Sequence[Mapping[str, Any]], keys: Iterable[str], out_png,
                x: str = 'step', title: str | None = None, series: str | None = None) -> pathlib.Path:
  """One subplot per key; with `series`, one line per distinct value of that field."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  keys = [k for k in keys if any(k in r for r in rows)]
  fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4.5 * max(len(keys), 1), 3.5),
                           squeeze=False)
  groups = sorted({r.get(series) for r in rows}, key=str) if series else [None]
  for ax, key in zip(axes[0], keys):
    for g in groups:
      pts = [(r[x], r[key]) for r in rows
             if key in r and x in r and isinstance(r[key], (int, float))
             and (series is None or r.get(series) == g)]
      if pts:
        xs, ys = zip(*pts)
        ax.plot(xs, ys, label=None if g is None else str(g))
    ax.set_xlabel(x)
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    if series:
      ax.legend(fontsize=8)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  out_png = pathlib.Path(out_png)
  out_png.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out_png, dpi=110)
  plt.close(fig)
  return out_png


def write_json(path: str | os.PathLike, obj: Any) -> pathlib.Path:
  path = pathlib.Path(path)
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float) + '\n')
  return path
