"""LoRA adapters over a frozen decoder (Hu et al. 2021, https://arxiv.org/abs/2106.09685).

Every targeted Linear kernel W [in, out] gets a pair A [in, r], B [r, out] and is used as
W + scale * A @ B with scale = alpha / r (alpha / sqrt(r) with rsLoRA, Kalajdzievski 2023,
https://arxiv.org/abs/2312.03732). Semantics and defaults follow PEFT's `LoraConfig`
(peft: `tuners/lora/config.py`, `tuners/lora/layer.py`): `rank` is PEFT's `r`, `alpha` its
`lora_alpha`, `rslora` its `use_rslora`; A is kaiming-uniform(a=sqrt(5)) and B is zero, so
a fresh adapter leaves the model unchanged.

The adapters are a pure-dict tree mirroring the param tree down to the adapted modules,
e.g. `layers.0.self_attn.q_proj.{a, b}`. A train state holds only that tree, so only the
adapters reach the optimizer and the checkpoints; the base params are an ordinary jit
argument of the step, never differentiated, never donated.

Choices where PEFT differs or is silent:
- Adapters are float32 whatever the kernel dtype: they are small, and Adam updates of a
  zero-initialised B are far below bf16 resolution for the first steps.
- The forward merges (W + scale * A @ B, in float32, cast to W's dtype) instead of PEFT's
  unmerged x @ W + scale * (x @ A) @ B, so the decoder needs no LoRA-aware layer. Gradients
  are the same; with bf16 kernels the merged weight is rounded to bf16, so a delta below
  W's resolution is not seen until it grows. Memory: one merged copy of the adapted kernels
  is live through the step (the base itself is never copied into the optimizer).
- An entry of `target_modules` that matches no module is an error (PEFT only errors when
  none matches), so a typo cannot silently train fewer modules.
- No LoRA dropout (PEFT's default `lora_dropout=0.0`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxpapers.core import hf
from jaxpapers.core import mesh as mesh_lib
from jaxpapers.core import train as train_lib
from jaxpapers.core.models import families
from jaxpapers.core.models import layers

# PEFT's init_lora_weights: True -> 'kaiming', 'gaussian' -> A ~ N(0, 1/r).
_INITS = ('kaiming', 'gaussian')
_ALL_LINEAR = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')


@dataclasses.dataclass(frozen=True)
class LoraConfig:
  """Which kernels get adapters and how they are scaled and initialised."""
  rank: int = 8                        # r: inner dimension of A @ B
  alpha: float = 16.0                  # lora_alpha: delta scale is alpha / r
  target_modules: tuple[str, ...] = _ALL_LINEAR  # module names (or dotted path suffixes)
  init: str = 'kaiming'                # 'kaiming' (PEFT default) | 'gaussian'; B is zero
  rslora: bool = False                 # scale alpha / sqrt(r) (rsLoRA) instead of alpha / r

  def __post_init__(self):
    if isinstance(self.target_modules, str):  # a bare name, not its characters
      object.__setattr__(self, 'target_modules', (self.target_modules,))
    object.__setattr__(self, 'target_modules', tuple(self.target_modules))
    if not isinstance(self.rank, int) or self.rank <= 0:
      raise ValueError(f'lora.rank: must be a positive int, got {self.rank!r}')
    if not self.alpha > 0:
      raise ValueError(f'lora.alpha: must be > 0, got {self.alpha!r}')
    if not self.target_modules or not all(isinstance(t, str) and t
                                          for t in self.target_modules):
      raise ValueError(f'lora.target_modules: need one or more module names, got '
                       f'{self.target_modules!r}')
    if self.init not in _INITS:
      raise ValueError(f'lora.init: {self.init!r} unknown; valid: {", ".join(_INITS)}')

  @property
  def scale(self) -> float:
    return self.alpha / (math.sqrt(self.rank) if self.rslora else self.rank)


# ----------------------------------------------------------------------------- tree paths


def _kernels(tree: Mapping, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
  """(module path, kernel leaf) for every Linear-like module (one with a `kernel` leaf)."""
  for key, sub in tree.items():
    if key == 'kernel' and not isinstance(sub, Mapping):
      yield path, sub
    elif isinstance(sub, Mapping):
      yield from _kernels(sub, path + (key,))


def _pairs(adapters: Mapping, path: tuple = ()) -> Iterator[tuple[tuple, Mapping]]:
  """(module path, {'a', 'b'}) for every adapter in the tree."""
  for key, sub in adapters.items():
    if set(sub) == {'a', 'b'} and not isinstance(sub['a'], Mapping):
      yield path + (key,), sub
    else:
      yield from _pairs(sub, path + (key,))


def _dotted(path: tuple) -> str:
  return '.'.join(str(k) for k in path)


def _matches(name: str, target: str) -> bool:
  # PEFT's rule: the full name, or a suffix that starts at a module boundary.
  return name == target or name.endswith('.' + target)


def _get(tree: Mapping, path: tuple) -> Any:
  for key in path:
    tree = tree[key]
  return tree


def _set(tree: dict, path: tuple, value) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def _replaced(tree: Mapping, path: tuple, value) -> dict:
  """A copy of `tree` with `tree[path] = value`; only the dicts along `path` are copied."""
  if len(path) == 1:
    return {**tree, path[0]: value}
  return {**tree, path[0]: _replaced(tree[path[0]], path[1:], value)}


def targets(params: Mapping, cfg: LoraConfig) -> list[tuple[tuple, Any]]:
  """(module path, kernel) of every adapted module, in tree order.

  Works on any tree shaped like the params (arrays, ShapeDtypeStructs, shardings).
  Raises ValueError naming `lora.target_modules` when an entry matches nothing.
  """
  kernels = list(_kernels(params))
  names = [_dotted(p) for p, _ in kernels]
  unmatched = [t for t in cfg.target_modules if not any(_matches(n, t) for n in names)]
  if unmatched:
    available = sorted({p[-1] for p, _ in kernels if p})
    raise ValueError(f'lora.target_modules: {unmatched} match no module; available: '
                     f'{", ".join(available)}')
  return [(p, k) for (p, k), n in zip(kernels, names)
          if any(_matches(n, t) for t in cfg.target_modules)]


# ----------------------------------------------------------------------------- adapters


def _init_pair(rng, shape, cfg: LoraConfig) -> dict:
  din, dout = shape
  if cfg.init == 'kaiming':
    # torch kaiming_uniform_(a=sqrt(5)) on lora_A [r, in]: bound = 1 / sqrt(fan_in).
    bound = 1.0 / math.sqrt(din)
    a = jax.random.uniform(rng, (din, cfg.rank), jnp.float32, -bound, bound)
  else:
    a = jax.random.normal(rng, (din, cfg.rank), jnp.float32) / cfg.rank
  return {'a': a, 'b': jnp.zeros((cfg.rank, dout), jnp.float32)}


def init_adapters(params: Mapping, cfg: LoraConfig, rng: jax.Array) -> dict:
  """Fresh adapters for `params` (only shapes are read, so abstract params work too).

  Args:
    params: pure-dict param tree (arrays or ShapeDtypeStructs).
    cfg: which kernels to adapt.
    rng: PRNG key; one subkey per adapted kernel.
  Returns:
    {path...: {'a': [in, r] float32, 'b': [r, out] float32 zeros}} for each target.
  """
  found = targets(params, cfg)
  keys = jax.random.split(rng, len(found))
  out: dict = {}
  for key, (path, kernel) in zip(keys, found):
    _set(out, path, _init_pair(key, kernel.shape, cfg))
  return out


def merge(params: Mapping, adapters: Mapping, cfg: LoraConfig) -> dict:
  """params with every adapted kernel replaced by W + scale * A @ B (pure; jittable).

  The sum is taken in float32 and cast back to the kernel's dtype; `params` is not changed.
  """
  out = dict(params)
  for path, pair in _pairs(adapters):
    kernel = _get(params, path + ('kernel',))
    # HIGHEST: TPUs would otherwise run this f32 dot in bf16 passes.
    delta = jnp.dot(pair['a'].astype(jnp.float32), pair['b'].astype(jnp.float32),
                    precision=jax.lax.Precision.HIGHEST)
    merged = (kernel.astype(jnp.float32) + cfg.scale * delta).astype(kernel.dtype)
    out = _replaced(out, path + ('kernel',), merged)
  return out


def num_trainable(adapters: Mapping) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(adapters)))


# ----------------------------------------------------------------------------- sharding


def pair_sharding(kernel_sharding: NamedSharding) -> dict:
  """A follows the kernel's input axis, B its output axis; the rank axis is replicated."""
  spec = tuple(kernel_sharding.spec) + (None,) * (2 - len(kernel_sharding.spec))
  mesh = kernel_sharding.mesh
  return {'a': NamedSharding(mesh, P(spec[0], None)), 'b': NamedSharding(mesh, P(None, spec[1]))}


def adapter_shardings(param_shardings: Mapping, cfg: LoraConfig) -> dict:
  """Adapter tree of NamedShardings from the params' (e.g. `mesh.param_shardings`)."""
  out: dict = {}
  for path, sharding in targets(param_shardings, cfg):
    _set(out, path, pair_sharding(sharding))
  return out


# ----------------------------------------------------------------------------- training


def lora_loss(loss_fn: Callable, cfg: LoraConfig) -> Callable:
  """`loss_fn(params, *args)` -> `fn(adapters, base_params, *args)` on the merged params.

  Differentiate `fn` w.r.t. its first argument: gradients reach only the adapters, and the
  base params stay a traced argument (a closed-over base would be baked into the program).
  """
  def fn(adapters, base_params, *args):
    return loss_fn(merge(base_params, adapters, cfg), *args)
  return fn


def make_train_step(loss_fn: Callable, optimizer, cfg: LoraConfig) -> Callable:
  """`step(state, base_params, batch, rng) -> (state, metrics)` updating only adapters.

  Args:
    loss_fn: `loss_fn(params, batch) -> (loss, metrics dict)` on full params, e.g.
      `lambda p, b: sft.sft_loss(p, graphdef, b)`.
    optimizer: optax transformation; `state.opt_state` is over the adapters only.
    cfg: the adapters' config (its scale enters the merge).
  Returns:
    The step; `state` is a `train.TrainState` whose `params` are the adapters.
  """
  grad_fn = jax.value_and_grad(lora_loss(loss_fn, cfg), has_aux=True)

  def step(state: train_lib.TrainState, base_params, batch, rng) -> tuple[Any, dict]:
    del rng  # deterministic objectives, as the full-parameter steps
    (loss, metrics), grads = grad_fn(state.params, base_params, batch)
    state, opt_metrics = train_lib.apply_gradients(state, grads, optimizer)
    return state, {**metrics, 'loss': loss, **opt_metrics}
  return step


def compile_step(step_fn: Callable, base_params, state_shardings, base_shardings, mesh,
                 batch_ndims: Mapping[str, int] | None = None) -> Callable:
  """jit(step) with the state donated (the base is not) and bound to `base_params`.

  Returns `step(state, batch, rng) -> (state, metrics)`, the signature `train.run_loop` calls.
  """
  replicated = mesh_lib.replicated(mesh)
  batch_shardings = None if batch_ndims is None else {
      k: mesh_lib.batch_sharding(mesh, n) for k, n in batch_ndims.items()}
  jitted = jax.jit(step_fn, in_shardings=(state_shardings, base_shardings, batch_shardings,
                                          replicated),
                   out_shardings=(state_shardings, replicated), donate_argnums=(0,))
  return lambda state, batch, rng: jitted(state, base_params, batch, rng)


@dataclasses.dataclass
class Trainable:
  """What a policy's optimizer updates: the full params (`cfg` None) or LoRA adapters over
  a frozen `base`, behind one interface, so a trainer with several policies (G-Zero's
  Proposer and Generator share one base) is written once for both."""
  cfg: LoraConfig | None
  param_shardings: Any          # shardings of the full params
  base: Any = None              # frozen full params (LoRA only)

  def init_fn(self, full_params_fn: Callable, abstract_pure, seed: int) -> Callable:
    """fn() -> initial trainable params (full params, or fresh adapters, B = 0)."""
    if self.cfg is None:
      return full_params_fn
    return lambda: init_adapters(abstract_pure, self.cfg, jax.random.PRNGKey(seed))

  @property
  def shardings(self):
    return (self.param_shardings if self.cfg is None
            else adapter_shardings(self.param_shardings, self.cfg))

  def full(self, params):
    """The full params a forward pass needs (the base with the adapters merged in)."""
    return params if self.cfg is None else _merge(self.base, params, self.cfg)

  def compile(self, loss_fn: Callable, optimizer, state_shardings, mesh) -> Callable:
    """jit `step(state, batch, rng)` for `loss_fn(full params, batch) -> (loss, metrics)`."""
    if self.cfg is None:
      return train_lib.compile_step(train_lib.loss_step(loss_fn, optimizer), state_shardings,
                                    mesh)
    return compile_step(make_train_step(loss_fn, optimizer, self.cfg), self.base,
                        state_shardings, self.param_shardings, mesh)


_merge = jax.jit(merge, static_argnums=2)


# ----------------------------------------------------------------------------- export


def export_merged(path, base_params: Mapping, adapters: Mapping, cfg: LoraConfig,
                  model_config: layers.DecoderConfig, dtype: str | None = None,
                  tokenizer_dir=None):
  """Writes the merged model as an HF safetensors dir (the family's `save_pretrained`)."""
  merged = jax.jit(merge, static_argnums=2)(base_params, adapters, cfg)
  graphdef, _, _ = hf.abstract_params(lambda: layers.Decoder(model_config, nnx.Rngs(0)))
  model = nnx.merge(graphdef, merged)
  module = families.module_for(model_config.family)
  return module.save_pretrained(model, path, dtype=dtype, tokenizer_dir=tokenizer_dir)
