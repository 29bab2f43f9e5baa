r"""RELEX on the GRPO toy trajectory: extrapolate early checkpoints, score held-out accuracy.

Issue "RELEX", Experiments (reference: github weizhepei/RELEX; ../shared/papers/relex.md).
Observes the checkpoints up to step N of a `configs/grpo_toy.py` run, extrapolates to later
steps with RELEX (and ablations: rank, fit, window, per-parameter baseline), and compares
the greedy held-out accuracy of each prediction with the real checkpoint at that step and
with the last observed one; also parameter-space distances and the denoising analysis
(top-component energy, in- and out-of-sample R² of c_t). Writes W/results.json,
W/results.md, W/accuracy.png, W/coefficients_h<N>.png.

  python -m jaxpapers.launch --config=configs/grpo_toy.py --workdir=/tmp/relex_grpo_toy
  python -m jaxpapers.launch --config=configs/relex_grpo_toy.py --workdir=/tmp/relex_exp \
      --config.grpo_workdir=/tmp/relex_grpo_toy

Variants: `:test` (a `grpo_toy.py:test` model, 2 checkpoints observed; used by the tests).
Expected: ~2 min on a shared 2-core CPU (95 greedy evals of 256 prompts, 14 RELEX runs).
Result (README "RELEX"): no prediction beats the last observed checkpoint's accuracy; the
top component holds ~95% of the trajectory energy, but c_t grows sublinearly past N.
"""
import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, test=False)
  c = ml_collections.ConfigDict()
  c.experiment = 'relex_grpo_toy'  # registered in jaxpapers/papers/relex/toy_experiments.py

  # Trajectory: the GRPO run and the config that produced it (model, task, eval prompts).
  c.grpo_workdir = ''             # workdir of the GRPO run: checkpoints/<k>/state (required)
  c.grpo_config = 'grpo_toy'      # configs/<name>.py of that run
  c.grpo_config_arg = ''          # its variant argument ('test' for grpo_toy.py:test)

  # What is observed and predicted.
  c.history_steps = '20,40'       # N: each observes every saved step <= N, separately
  c.target_steps = '30,40,60,80,100,120'  # predicted steps; those > N that were saved are used
  c.variants = 'rank1,rank2,rank5,per_parameter,polynomial,window2,window3'  # VARIANTS keys

  # RELEX settings shared by every variant (configs/relex.py documents them).
  c.degree = 2                    # polynomial degree of the `polynomial` variant
  c.output_dtype = 'float32'      # predictions kept in fp32: only the fit is compared
  c.chunk_mb = 32.0
  c.plot_tensors = 4              # tensors in W/coefficients_h<N>.png
  c.mesh = common.mesh(data=-1)

  if arg.test:
    c.grpo_config_arg = 'test'
    c.history_steps, c.target_steps = '4', '8,12'
    c.variants = 'rank1,per_parameter,window2'
    c.plot_tensors = 2
  return c
