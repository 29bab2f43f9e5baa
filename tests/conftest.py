"""Test setup: 8 fake CPU devices (set before jax is imported) and shared tiny fixtures."""
import os

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = REPO / 'tests' / 'golden'


@pytest.fixture(scope='session')
def golden_dir() -> pathlib.Path:
  return GOLDEN


@pytest.fixture(scope='session')
def tiny_qwen3():
  from jaxpapers.core.models import qwen
  return qwen.preset('qwen3-tiny', vocab_size=256)
