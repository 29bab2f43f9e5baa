"""Benchmarks: `python -m jaxpapers.bench.<name>` prints the anchor, ours, and the ratio."""
