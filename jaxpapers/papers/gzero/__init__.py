"""G-Zero: verifier-free co-evolution of a Proposer and a Generator (Hint-δ, GRPO, DPO)."""
