"""Registers the self-preference experiments with the launcher:
'selfpref_models' (real checkpoints judging each other, models_study.py) and
'selfpref_family' (a trained family of tiny generator-judges, family.py)."""
from jaxpapers.papers.selfpref import models_study  # noqa: F401 - registers 'selfpref_models'
from jaxpapers.papers.selfpref import family  # noqa: F401 - registers 'selfpref_family'
