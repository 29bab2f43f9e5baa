"""Shared fixtures: the MiniLM tokenizer (tokenisation only) and the tiny config."""
import pytest

from configs import disbert_stsb


@pytest.fixture(scope='package')
def tokenizer():
  from jaxpapers.core.models import bert
  return bert.load_tokenizer()


@pytest.fixture
def tiny_config():
  return disbert_stsb.get_config('tiny')
