"""`config.load_file`: config files by path from any working directory, as the launcher reads
them, without the top-level `configs` package on sys.path."""
import os
import pathlib
import subprocess
import sys

import pytest

from jaxpapers.core import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_load_file_from_other_cwd_runs_get_config_with_arg(tmp_path):
  # A fresh process started outside the checkout has no `configs` on sys.path; the bench
  # helper reads configs/fedbandits_synthetic.py by path.
  code = ('from jaxpapers.bench import fedbandits; fedbandits.setup(4, 3); '
          'from jaxpapers.core import config; '
          'print(config.load_file("configs/generate.py", "greedy").temperature)')
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH='')
  proc = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.split() == ['0.0']


def test_load_file_restores_sys_path_and_reads_defaults():
  before = list(sys.path)
  cfg = config_lib.load_file(REPO / 'configs' / 'convert.py')
  assert cfg.experiment == 'convert' and sys.path == before


def test_load_file_missing_raises_naming_path(tmp_path):
  with pytest.raises(FileNotFoundError, match='configs/nope.py'):
    config_lib.load_file('configs/nope.py')
