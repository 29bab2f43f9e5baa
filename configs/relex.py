r"""RELEX: rank-1 trajectory extrapolation of RL checkpoints (reference: github weizhepei/RELEX).

Reproduces the reference tool `scripts/svd_extrapolation.py` (../shared/papers/relex.md):
per tensor, a temporal uncentred SVD of the deltas θ_t − θ₀ of the first N checkpoints, an
OLS line through the top coefficient over the checkpoint index, and θ̂ = θ₀ + ĉ·v at the
target steps — streamed tensor by tensor and chunk by chunk (never the whole trajectory).

  python -m jaxpapers.launch --config=configs/relex.py --workdir=W \
      --config.trajectory_dir=DIR --config.history_steps=75 --config.target_steps=100,500

DIR holds `base/` (θ₀) and `step_<k>/` (or `<k>/`) checkpoints, all HF safetensors dirs or
all Orbax checkpoints of core/checkpoint.py. Writes W/extrapolated/step_<M>/ (HF dir, bf16,
tokenizer copied), W/relex_report.json (singular values, coefficients, R² per tensor),
W/relex_coefficients.png and W/metrics.jsonl.
Variants: `--config=configs/relex.py:mode=reconstruct,rank=5`.
Expected: seconds for tiny trajectories; 110M params x 20 bf16 steps: ~4.8 s and ~0.36 GB
peak RSS on a 2-core CPU (python -m jaxpapers.bench.relex; numbers in README).
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, mode='extrapolate', rank=1, fit='linear')
  c = ml_collections.ConfigDict()
  c.experiment = 'relex'          # registered in jaxpapers/papers/relex/experiment.py

  # Trajectory.
  c.trajectory_dir = ''           # DIR with base/ and step_<k>/ (required)
  c.base_dir = ''                 # θ₀ directory if not DIR/base (e.g. the HF base model)
  c.history_steps = -1            # N: observe every saved step <= N (required) [--history_steps]
  c.target_steps = ''             # 'M[,M2,...]': output labels [--target_steps]

  # Method (reference flags in brackets).
  c.mode = arg.mode               # extrapolate | reconstruct | fit_reconstruct [--mode]
  c.rank = arg.rank               # k temporal components; -1 = T (per-parameter baseline) [--rank]
  c.fit = arg.fit                 # linear | polynomial: fit of c_t over the index [--fit_method]
  c.degree = 2                    # polynomial degree [--degree]
  c.window = -1                   # W: fit on the last W observed checkpoints; -1 = all [--window]
  c.step_scale = 1.0              # target index = round(M * step_scale); 2.0 for Qwen2.5-Math-1.5B
  c.refit_every = -1              # F: autoregressive refit every F predicted steps; -1 = fit once
  #                                 [--future_extrapolation_window]
  c.delta_dtype = 'float32'       # float32, or float16 to round deltas like the reference's files

  # Output.
  c.output_dtype = 'bfloat16'     # written dtype: bfloat16 (reference) | float32 | float16
  c.save_hf = True                # write W/extrapolated/step_<M>/ as an HF directory
  c.save_orbax = False            # also write W/extrapolated_orbax/<M>/state (Orbax trajectories)
  c.hf_config_dir = ''            # config.json + tokenizer for HF output of an Orbax trajectory
  c.hf_key_table = 'decoder'      # core.hf key table mapping Orbax param paths to HF keys
  c.skip_pattern = ''             # regex of tensor names copied from θ₀ (no prediction)
  c.project_heldout = False       # also project saved steps after N onto v (out-of-sample R²)
  c.plot_tensors = 4              # W/relex_coefficients.png: c_t + fit of the N largest tensors

  # Streaming and placement.
  c.chunk_mb = 0.0                # fp32 size of one [rows, chunk] block; 0 = 16 on CPU (fastest
                                  # measured at 110M params), 128 elsewhere
  c.chunk_size = 0                # elements of d per chunk; 0 = from chunk_mb
  c.prefetch = 1                  # chunks read ahead in a background thread; 0 = inline
  c.streams = 0                   # tensors processed at once (threads, each with its own
                                  # reader); 0 = one per 2 CPU cores (<= 4), 1 elsewhere
  c.shard_min_size = 1 << 20      # chunks at least this big are sharded along d over the mesh
  c.mesh = common.mesh(data=-1)   # axis sizes; -1 = remaining devices
  return c
