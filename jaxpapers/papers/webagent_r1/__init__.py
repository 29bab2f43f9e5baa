"""WebAgent-R1: multi-turn RL for web agents (../shared/papers/webagent_r1.md)."""
