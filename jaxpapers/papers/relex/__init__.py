"""RELEX: rank-1 temporal-SVD extrapolation of RL checkpoints (../shared/papers/relex.md)."""
