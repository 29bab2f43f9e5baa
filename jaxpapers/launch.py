r"""The one entry point: `python -m jaxpapers.launch --config=configs/<exp>.py --workdir=W`.

  --config=configs/grpo.py:size=0.6b,quick   the argument goes to get_config(arg)
  --config.optimizer.learning_rate=3e-4      overrides any leaf
  --workdir=/tmp/run                         checkpoints, metrics.jsonl, plots

Multi-host: with --coordinator_address (or JAX_COORDINATOR_ADDRESS / SLURM / TPU env that
`jax.distributed.initialize()` detects) the launcher initialises `jax.distributed` first.
Config mistakes print one line `error: ...` naming the field, and exit with status 2.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from jaxpapers.core.config import ConfigError

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory (checkpoints, metrics).')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None,
                                   'host:port of process 0 for multi-host jax.distributed.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes in a multi-host run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process index (multi-host).')
_CPU_COLLECTIVES = flags.DEFINE_string('cpu_collectives', None,
                                       "'gloo' for multi-process CPU runs.")


def discover_experiments() -> None:
  """Imports every module that registers experiments (core runners, papers' experiment.py)."""
  import jaxpapers.core.runners as runners
  import jaxpapers.papers as papers
  for mod in pkgutil.iter_modules(runners.__path__):
    importlib.import_module(f'{runners.__name__}.{mod.name}')
  for pkg in pkgutil.iter_modules(papers.__path__):
    if pkg.ispkg and importlib.util.find_spec(f'{papers.__name__}.{pkg.name}.experiment'):
      importlib.import_module(f'{papers.__name__}.{pkg.name}.experiment')


def _fail(message: str) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def _parse_flags(argv):
  """absl parsing, with config mistakes turned into one line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).replace('\n', ' '))
  except (AttributeError, KeyError, ValueError, TypeError) as e:
    bad = next((a for a in argv if a.startswith('--config.') and
                a.split('=', 1)[0][len('--config.'):].split('.')[-1] in str(e)), None)
    _fail(f'{bad or "--config"}: {str(e).strip(chr(34)).strip(chr(39))} is not a config field '
          f'(check the spelling against the config file)' if bad else str(e))


def _maybe_init_distributed() -> None:
  import jax
  if _CPU_COLLECTIVES.value:
    jax.config.update('jax_cpu_collectives_implementation', _CPU_COLLECTIVES.value)
  if _COORDINATOR.value or os.environ.get('JAX_COORDINATOR_ADDRESS'):
    jax.distributed.initialize(
        coordinator_address=_COORDINATOR.value or os.environ['JAX_COORDINATOR_ADDRESS'],
        num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  elif os.environ.get('SLURM_NTASKS', '1') != '1' or os.environ.get('TPU_WORKER_HOSTNAMES'):
    jax.distributed.initialize()


def run(config, workdir: str):
  """Looks up `config.experiment`, validates, runs; returns the experiment's results."""
  from jaxpapers.core import registry
  discover_experiments()
  if 'experiment' not in config:
    raise ConfigError('config.experiment: missing; every config names its experiment')
  try:
    fn = registry.EXPERIMENTS.get(config.experiment)
  except ValueError as e:
    raise ConfigError(f'config.experiment: {e}') from None
  return fn(config, workdir)


def main(argv):
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}')
  if _CONFIG.value is None:
    _fail('--config is required, e.g. --config=configs/quickstart.py')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)   # library INFO logs (Orbax) drown the progress bar
  workdir = _WORKDIR.value or os.path.join('workdirs', _CONFIG.value.get('experiment', 'run'))
  _maybe_init_distributed()
  import jax
  print(f'jax {jax.__version__}: {jax.process_count()} process(es), {jax.device_count()} '
        f'{jax.devices()[0].platform} device(s)', flush=True)
  try:
    run(_CONFIG.value, workdir)
  except ConfigError as e:
    _fail(str(e))


def entry():
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  entry()
