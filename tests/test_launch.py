"""The launcher: config mistakes are one line on stderr with a non-zero exit."""
import pathlib
import subprocess
import sys

import pytest

from configs import common

REPO = pathlib.Path(__file__).resolve().parents[1]


def _launch(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'jaxpapers.launch', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


def _one_error_line(proc):
  assert proc.returncode != 0
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1, proc.stderr
  assert 'Traceback' not in proc.stderr
  return lines[0]


def test_launch_unknown_field_one_line_naming_it(tmp_path):
  line = _one_error_line(_launch('--config=configs/quickstart.py', '--config.optimzer.lr=1',
                                 f'--workdir={tmp_path}'))
  assert 'optimzer' in line and line.startswith('error:')


def test_launch_indivisible_batch_one_line_naming_field(tmp_path):
  line = _one_error_line(_launch('--config=configs/quickstart.py', '--config.batch_size=7',
                                 f'--workdir={tmp_path}'))
  assert 'config.batch_size' in line and 'divisible by 8' in line


def test_launch_unknown_experiment_lists_valid(tmp_path):
  line = _one_error_line(_launch('--config=configs/quickstart.py', '--config.experiment=nope',
                                 f'--workdir={tmp_path}'))
  assert "unknown experiment 'nope'" in line and 'sft' in line


def test_launch_bad_value_type_one_line(tmp_path):
  line = _one_error_line(_launch('--config=configs/quickstart.py', '--config.steps=many',
                                 f'--workdir={tmp_path}'))
  assert 'steps' in line


def test_parse_arg_casts_and_rejects_unknown():
  arg = common.parse_arg('size=2,quick', size=1, quick=False)
  assert arg.size == 2 and arg.quick is True
  with pytest.raises(ValueError, match='unknown'):
    common.parse_arg('nope=1', size=1)


def test_parse_arg_keeps_commas_inside_a_value():
  arg = common.parse_arg('seeds=0,1,2,quick', seeds='0', quick=False)
  assert arg.seeds == '0,1,2' and arg.quick is True
  with pytest.raises(ValueError, match="'quik'"):
    common.parse_arg('seeds=0,1,quik', seeds='0', quick=False)
