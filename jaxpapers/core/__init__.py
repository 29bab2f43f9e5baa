"""Shared stack: models, sampler, trainers, mesh, checkpoints, data, metrics."""
