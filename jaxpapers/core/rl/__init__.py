"""Pure losses and jitted train steps: SFT, GRPO, DPO."""
