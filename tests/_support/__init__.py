"""Helpers shared by the test files (one copy each; fixtures stay in ``conftest.py``).

- :mod:`tests._support.streams`: run an agent and read its chunks (``collect``, ``text``,
  ``kinds``, ``tool_results``, ``observable``), run one script several ways to compare
  (``run_each_way``), stop a reader early (``stop_at_the_first_token``).
- :mod:`tests._support.agents`: the tools the scripts call (``add``, ``lookup``, ``echo``),
  agents and chat models reaching a scripted server (``agent_for``, ``chat_model``).
- :mod:`tests._support.callbacks`: callback handlers that record what a model run reports
  (``ModelRunRecorder``, ``SyncTokenRecorder``).
- :mod:`tests._support.servers`: the scripted server in a process of its own
  (``start_standalone``).

``tests/conftest.py`` keeps the fixtures (``make_server``) and ``config_for``.
"""
