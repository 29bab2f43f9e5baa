"""Experiments of the core stack (each module registers one with `registry.experiment`)."""
