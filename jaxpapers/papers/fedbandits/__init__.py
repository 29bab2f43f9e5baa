"""Federated linear bandits: LinUCB baselines, Inc-FedUCB and Truth-FedBan.

Inc-FedUCB: Wei et al., "Incentivized Communication for Federated Bandits" (NeurIPS 2023).
Truth-FedBan: Wei et al., "Incentivized Truthful Communication for Federated Bandits"
(ICLR 2024). Neither has public code; the ancestor is github cyrilli/Async-LinUCB. Every
client acts in every round; per-client updates are vmapped, rounds run under `lax.scan`,
and clients may be sharded over the mesh's data axis (`federation.py`).
"""
