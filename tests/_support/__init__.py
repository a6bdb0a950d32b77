"""Helpers shared by the test files (one copy each; fixtures stay in ``conftest.py``).

- :mod:`tests._support.streams`: run an agent and read its chunks (``collect``, ``text``,
  ``kinds``, ``tool_results``, ``observable``).
- :mod:`tests._support.agents`: agents and chat models reaching a scripted server
  (``agent_for``, ``chat_model``) and the tools the scripts call (``add``).
- :mod:`tests._support.callbacks`: callback handlers that record what a model run reports.
"""
