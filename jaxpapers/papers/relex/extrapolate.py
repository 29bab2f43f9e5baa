"""RELEX: stream every tensor of a trajectory through the temporal SVD and write predictions.

Per tensor (../shared/papers/relex.md; weizhepei/RELEX scripts/svd_extrapolation.py):
  pass 1  read θ₀ and the same chunk at every row step, G += M_c M_cᵀ (jitted, fp32)
  host    eigh(G) → U, S; c = S·u; fit c over the window index; ĉ at each target
  pass 2  θ̂ = θ₀ + Mᵀ w per chunk (w = U diag(keep/S) ĉ), cast to output_dtype, written
A tensor of at most HOLD_CHUNKS chunks is read once (its chunks stay on device between
passes); larger ones are read twice, never whole. Tensors are spread over `streams` threads.
Every floating tensor gets its own prediction;
tensors matched by `skip_pattern` and non-float tensors are copied from θ₀; with tied
embeddings `lm_head` is skipped and re-tied to the `embed_tokens` prediction (reference).
Checkpoint headers are checked before any compute; non-finite values are reported with the
tensor and step after pass 1.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import threading
import time
from concurrent import futures

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import metrics
from jaxpapers.core.config import ConfigError
from jaxpapers.papers.relex import base_trajectory
from jaxpapers.papers.relex import output
from jaxpapers.papers.relex import plan as plan_lib
from jaxpapers.papers.relex import report
from jaxpapers.papers.relex import streaming
from jaxpapers.papers.relex import svd
from jaxpapers.papers.relex import trajectory

HF_TIED = ('model.embed_tokens.weight', 'lm_head.weight')


@dataclasses.dataclass(frozen=True)
class Job:
  name: str
  shape: tuple[int, ...]
  predict: bool                      # False: copied from θ₀
  sharded: bool                      # chunks go to the mesh (d sharded) vs one device
  chunks: tuple[streaming.Chunk, ...]
  hold: bool                         # pass 2 reuses pass 1's blocks (no second read)


def run(config, workdir, mesh=None) -> dict:
  """Runs RELEX as configured; returns a JSON-ready summary (also written to `workdir`)."""
  source = trajectory.open_trajectory(config.trajectory_dir, config.base_dir or None)
  try:
    return _run(source, config, pathlib.Path(workdir), mesh)
  finally:
    source.close()


def _run(source, config, workdir: pathlib.Path, mesh) -> dict:
  start = time.time()
  plan = plan_lib.make_plan(source.steps, config)
  mesh = mesh if mesh is not None else mesh_lib.make_mesh(config.mesh)
  hf_config, copy_from, key_of = _hf_layout(source, config)
  tied = (source.format == 'hf' and hf_config.get('tie_word_embeddings', True)
          and all(n in source.tensor_names() for n in HF_TIED))
  jobs = _jobs(source, config, plan, mesh, tied)
  source.check_steps(plan.rows, [j.name for j in jobs if j.predict])
  out_dtype = jnp.dtype(config.output_dtype)
  specs = [_spec(source, j, out_dtype, key_of, tied) for j in jobs]
  outputs = _open_outputs(workdir, plan, specs, hf_config, copy_from, config, source)
  try:
    stats, nbytes = _process(source, jobs, plan, mesh, outputs, config, out_dtype)
    paths = [str(o.commit()) for group in outputs for o in group]
  except BaseException:
    for o in (o for group in outputs for o in group):
      o.abort()
    raise
  result = {'outputs': paths, 'seconds': round(time.time() - start, 3), 'bytes_read': nbytes,
            'fit_steps': list(plan.fit_steps), 'targets': list(plan.targets),
            **report.summary(stats)}
  metrics.write_json(workdir / 'relex_report.json', {'summary': result, 'tensors': stats})
  if config.plot_tensors > 0 and stats:
    report.plot_coefficients(stats, plan, workdir / 'relex_coefficients.png',
                             config.plot_tensors)
  metrics.MetricWriter(workdir).write(plan.fit_steps[-1], {
      k: v for k, v in result.items() if isinstance(v, (int, float))})
  logging.info('RELEX: %d tensors, %.1f s, wrote %s', result['tensors'], result['seconds'],
               paths)
  return result


def _hf_layout(source, config):
  """(config.json dict, tokenizer dir, source name -> (HF key, transpose))."""
  if source.format == 'hf':
    return hf.read_config(source.base_dir), source.base_dir, lambda n: (n, False)
  if not config.save_hf:
    return {}, None, lambda n: (n, False)
  if not config.hf_config_dir:
    raise ConfigError('config.hf_config_dir: required to write HF output from an Orbax '
                      'trajectory (a dir with config.json); or set config.save_hf=False')
  table = hf.KEY_TABLES.get(config.hf_key_table)

  def key_of(name):
    try:
      return hf.hf_key(name, table)
    except hf.CheckpointKeyError as e:
      raise ConfigError(f'config.hf_key_table: {config.hf_key_table!r}: {e}') from None
  return hf.read_config(config.hf_config_dir), pathlib.Path(config.hf_config_dir), key_of


HOLD_CHUNKS = 8  # a tensor of at most this many chunks' bytes is held for pass 2, not re-read


def chunk_mb(config, mesh) -> float:
  """config.chunk_mb, or for 0: 16 MB blocks on CPU (fastest measured at 110M params: 8, 12,
  24 and 32 MB ran 1.1-1.8x slower), 128 MB on accelerators (fewer dispatches)."""
  if config.chunk_mb:
    return config.chunk_mb
  return 16.0 if mesh.devices.flat[0].platform == 'cpu' else 128.0


def num_streams(config, mesh) -> int:
  """config.streams, or for 0 on CPU one stream per two cores (a stream keeps about two busy:
  its jitted steps and its reader), at most 4 (each holds its own chunks in memory); one on
  accelerators, where the device is not the bottleneck."""
  if config.streams:
    return config.streams
  if mesh.devices.flat[0].platform != 'cpu':
    return 1
  return max(1, min(4, len(os.sched_getaffinity(0)) // 2))


def _jobs(source, config, plan, mesh, tied) -> list[Job]:
  rows = len(plan.rows)
  elems = config.chunk_size or max(1, int(chunk_mb(config, mesh) * 2**20) // (4 * rows))
  skip = re.compile(config.skip_pattern) if config.skip_pattern else None
  block = svd.gram_block(mesh.devices.flat[0].platform)
  jobs = []
  for name in source.tensor_names():
    if tied and name == HF_TIED[1]:
      continue
    shape = source.shape(name)
    predict = (jnp.issubdtype(source.dtype(name), jnp.floating) and int(np.prod(shape)) > 0
               and not (skip and skip.search(name)))
    first = streaming.chunks(name, shape, elems)[0]
    sharded = predict and mesh.size > 1 and first.size >= config.shard_min_size
    chunks = tuple(streaming.chunks(name, shape, elems, mesh.size if sharded else 1,
                                    block if predict else 1))
    jobs.append(Job(name, shape, predict, sharded, chunks, len(chunks) <= HOLD_CHUNKS))
  return jobs


def _spec(source, job: Job, out_dtype, key_of, tied) -> output.TensorSpec:
  dtype = source.dtype(job.name)
  dtype = np.dtype(out_dtype) if jnp.issubdtype(dtype, jnp.floating) else dtype
  hf_name, transpose = key_of(job.name)
  aliases = (HF_TIED[1],) if tied and job.name == HF_TIED[0] else ()
  return output.TensorSpec(job.name, job.shape, dtype, hf_name, transpose, aliases)


def _open_outputs(workdir, plan, specs, hf_config, copy_from, config, source):
  if config.save_orbax and source.format != 'orbax':
    raise ConfigError('config.save_orbax: needs an Orbax trajectory (HF trajectories are '
                      'written as HF directories; load those with core.hf)')
  hf_config = dict(hf_config)
  hf_config['torch_dtype' if 'dtype' not in hf_config else 'dtype'] = config.output_dtype
  outputs = []  # one group (HF and/or Orbax) per target
  for target in plan.targets:
    info = {'relex': {'mode': plan.mode, 'target_step': target, 'rank': plan.rank,
                      'fit': plan.fit, 'degree': plan.degree, 'window': plan.window,
                      'step_scale': config.step_scale, 'refit_every': plan.refit_every,
                      'fit_steps': list(plan.fit_steps), 'trajectory': str(source.base_dir.parent)}}
    group = []
    if config.save_hf:
      group.append(output.HFOutput(workdir / 'extrapolated' / f'step_{target}', specs,
                                   hf_config, copy_from, info))
    if config.save_orbax:
      group.append(output.OrbaxOutput(workdir / 'extrapolated_orbax' / str(target), specs))
    outputs.append(group)
  return outputs


def _process(source, jobs, plan, mesh, outputs, config, out_dtype):
  """Streams every job into `outputs` ([J] groups of writers); returns (stats, bytes read).

  Tensors are split over `num_streams` streams run in threads, each with its own reader:
  the jitted steps release the GIL, so streams compute side by side (on 2 CPU cores, two
  threads of Gram steps alone ran 1.5x the throughput of one; the whole run, whose one
  stream already keeps both cores busy with its reader, was no faster).
  """
  kernels = {False: svd.make_kernels(mesh.devices.flat[0], out_dtype, config.delta_dtype)}
  if mesh.size > 1:
    kernels[True] = svd.make_kernels(mesh, out_dtype, config.delta_dtype)
  for job in jobs:
    if not job.predict:
      _copy(source, job, outputs)
  svd_jobs = [j for j in jobs if j.predict]
  streams = split_streams([j.chunks[0].padded * len(j.chunks) for j in svd_jobs],
                          num_streams(config, mesh))
  # Room for the chunks in flight (queued, being read, in use) of the largest block size.
  pool = streaming.BufferPool(int(len(streams) * (config.prefetch + 3 + HOLD_CHUNKS)
                                  * chunk_mb(config, mesh) * 2**20))
  bar = metrics.progress(len(svd_jobs), desc='relex')
  failed = threading.Event()  # one stream's error stops the others at their next tensor

  def run_stream(indices):
    requests = (r for i in indices
                for r in _requests(source, svd_jobs[i], plan, kernels[svd_jobs[i].sharded]))
    loader = (streaming.Prefetcher(source, requests, config.prefetch, pool)
              if config.prefetch > 0 else (streaming.load(source, r, pool) for r in requests))
    done = []
    try:
      for i in indices:
        if failed.is_set():
          break
        job = svd_jobs[i]
        done.append((i, *_process_tensor(job, loader, plan, kernels[job.sharded], outputs)))
        bar.update(1)
    except BaseException:
      failed.set()
      raise
    finally:
      if isinstance(loader, streaming.Prefetcher):
        loader.close()
    return done

  try:
    if len(streams) == 1:
      results = run_stream(streams[0])
    else:
      with futures.ThreadPoolExecutor(len(streams), thread_name_prefix='relex') as pool_exec:
        running = [pool_exec.submit(run_stream, s) for s in streams]
        results = [r for f in running for r in f.result()]
  finally:
    bar.close()
  results.sort(key=lambda r: r[0])
  return [s for _, s, _ in results], sum(n for _, _, n in results)


def split_streams(sizes: list[int], streams: int) -> list[list[int]]:
  """Job indices per stream, in order, each job to the stream with the least work so far."""
  load = [0] * max(1, min(streams, len(sizes)))
  out = [[] for _ in load]
  for i, size in enumerate(sizes):
    k = load.index(min(load))
    out[k].append(i)
    load[k] += size
  return out


def _requests(source, job: Job, plan, kernels):
  """Pass-1 reads (all rows), then pass-2 re-reads (fit rows) unless the job is held. Only
  pass 1 runs the Gram step, so only its chunks are also placed as bf16 pairs."""
  passes = [plan.rows] + ([] if job.hold else [plan.fit_steps])
  for first, steps in zip((True, False), passes):
    dtype = streaming.block_dtype(source, job.name, steps)
    for chunk in job.chunks:
      yield streaming.Request(chunk, steps, dtype, kernels.sharding, kernels.rows_sharding,
                              kernels.bf16_pairs and first)


def _process_tensor(job: Job, loader, plan, kernels, writers) -> tuple[dict, int]:
  """Pass 1, eigen + fit on the host, pass 2 with writes; returns (stats, bytes read).
  A held job keeps its pass-1 blocks for pass 2; others read their fit rows again."""
  t, nbytes, held = len(plan.fit_steps), 0, []
  num_rows = len(plan.rows)
  gram = jax.device_put(np.zeros((num_rows, num_rows), np.float32), kernels.acc_sharding)
  bad = np.zeros(num_rows + 1, np.int64)
  for _ in job.chunks:
    item = next(loader)
    gram = kernels.gram_step(gram, *item.gram_inputs)
    # Waiting here bounds the buffers alive (async dispatch would queue every chunk of the
    # tensor); the reader thread still overlaps the next read. A NaN/inf in any Δ_i makes
    # G_ii non-finite from this chunk on: only then are entries counted.
    if not np.isfinite(np.diagonal(np.asarray(gram))).all():
      bad += np.asarray(kernels.count_nonfinite(item.theta0, item.rows))
    nbytes += item.nbytes
    if job.hold:
      held.append(item)
    else:
      item.release()
  gram = np.asarray(gram)
  _check_finite(job.name, gram, bad, plan.rows)
  eig = svd.top_eigen(gram[:t, :t], plan.rank)
  c_fit = svd.coefficients(eig)
  c_extra = svd.coefficients(eig, gram[t:, :t]) if plan.extra_steps else None
  c_pred = plan_lib.predict_coefficients(plan, c_fit, c_extra)
  weights = svd.mixing_weights(eig, c_pred)  # [J, T]
  if job.hold:  # the held blocks also have the extra rows; they get zero weight
    weights = np.pad(weights, ((0, 0), (0, len(plan.extra_steps))))
  weights = jax.device_put(weights, kernels.acc_sharding)
  row_shape = job.shape[1:]
  for i, chunk in enumerate(job.chunks):
    if job.hold:
      item = held[i]
    else:
      item = next(loader)
      nbytes += item.nbytes
    out = np.asarray(kernels.project(item.theta0, item.rows, weights))[:, :chunk.size]
    item.release()
    for j, group in enumerate(writers):
      block = out[j].reshape((-1, *row_shape) if job.shape else ())
      for w in group:
        w.write(job.name, block, chunk.rows.start)
  return report.tensor_stats(job.name, job.shape, plan, eig, c_fit, c_extra, c_pred), nbytes


def _check_finite(name: str, gram: np.ndarray, counts: np.ndarray, rows) -> None:
  labels = [base_trajectory.step_label(s) for s in rows] + [base_trajectory.step_label(
      base_trajectory.BASE)]
  bad = [(labels[i], int(n)) for i, n in enumerate(counts) if n]
  if bad:
    raise ConfigError(f'trajectory: tensor {name!r} has non-finite values at '
                      + ', '.join(f'{label} ({n})' for label, n in bad[:5]))
  if not np.isfinite(gram).all():
    raise ConfigError(f'trajectory: tensor {name!r}: the Gram matrix of its deltas overflows '
                      'float32 (|θ_t − θ₀| too large; with delta_dtype=float16, above 65504)')


def _copy(source, job: Job, writers) -> None:
  """Keys without a prediction: θ₀ chunk by chunk, cast like the predictions (reference)."""
  for chunk in job.chunks:
    block = source.read(job.name, base_trajectory.BASE, chunk.rows)
    for group in writers:
      for w in group:
        w.write(job.name, np.asarray(block), chunk.rows.start)
