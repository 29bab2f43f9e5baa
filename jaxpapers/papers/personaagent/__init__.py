"""PersonaAgent: personalised memory, actions and test-time persona alignment.

Zhang et al., "PersonaAgent: When Large Language Model Agents Meet Personalization at Test
Time" (2025; no public code). This package holds the LaMP-style tasks built from
MovieLens-100K (`tasks.py`), LaMP's metric rules (`metrics.py`), the episodic memory and
LaMP's BM25 profile retrieval (`memory.py`), the non-LLM reference rows (`baselines.py`),
and the LLM half: the local LLM (`llm.py`), prompts (`prompts.py`), semantic memory
(`semantic.py`), tool actions (`actions.py`), the agent and its ablations (`agent.py`),
test-time persona alignment (`alignment.py`) and the experiment (`llm_experiment.py`).
"""
