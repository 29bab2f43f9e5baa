"""Every config file loads, names a registered experiment, and passes its validation."""
import importlib
import pathlib

import pytest

from jaxpapers import launch
from jaxpapers.core import registry

CONFIGS = sorted(p.stem for p in (pathlib.Path(__file__).parents[1] / 'configs').glob('*.py')
                 if p.stem not in ('__init__', 'common'))


@pytest.mark.parametrize('name', CONFIGS)
def test_config_loads_and_names_registered_experiment(name):
  launch.discover_experiments()
  config = importlib.import_module(f'configs.{name}').get_config()
  assert config.experiment in registry.EXPERIMENTS, config.experiment
