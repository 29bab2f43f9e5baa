"""RELEX: rank-1 temporal-SVD extrapolation of RL checkpoint trajectories (../shared/papers/relex.md)."""
