"""Timing helpers shared by the benchmarks: wall and process-CPU seconds.

CPU seconds (all threads of this process) are reported beside wall time because on a small
shared machine wall time swings with other jobs' load while CPU time stays steadier.
"""
from __future__ import annotations

import resource
import statistics
import time


def cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def summary(walls, cpus) -> dict:
  """{'times': walls, 'median_s': median wall, 'cpu_s': median CPU} of repeated runs."""
  return {'times': list(walls), 'median_s': statistics.median(walls),
          'cpu_s': statistics.median(cpus)}


def timed(fn, repeats: int) -> dict:
  """`summary` of `repeats` calls of fn()."""
  walls, cpus = [], []
  for _ in range(repeats):
    t0, c0 = time.perf_counter(), cpu_seconds()
    fn()
    walls.append(time.perf_counter() - t0)
    cpus.append(cpu_seconds() - c0)
  return summary(walls, cpus)
