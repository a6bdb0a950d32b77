"""Shared fixtures: the scripted OpenAI server and agent configs pointing at it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from streamagent.config import AgentConfig, ModelConfig, RetryConfig

if TYPE_CHECKING:
    from streamagent.testing import ScriptedOpenAIServer


@pytest.fixture
def make_server() -> Iterator[Callable[..., ScriptedOpenAIServer]]:
    """Start scripted servers on demand; all are stopped at teardown."""
    from streamagent.testing import ScriptedOpenAIServer

    started: list[ScriptedOpenAIServer] = []

    def factory(script: Any = (), **kwargs: Any) -> ScriptedOpenAIServer:
        server = ScriptedOpenAIServer(script, **kwargs).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


def config_for(server: ScriptedOpenAIServer, **overrides: Any) -> AgentConfig:
    """An AgentConfig reaching ``server`` with fast, jitter-free retries.

    ``overrides`` named after a ``ModelConfig`` field (``model`` is the model's name,
    ``fast_path``, ``use_responses_api``, ``temperature`` ...) configure the model; the others
    are ``AgentConfig`` fields."""
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"model"}
    model_options = {name: overrides.pop(name) for name in model_fields & overrides.keys()}
    model = ModelConfig(
        model=overrides.pop("model", "gpt-4o"),
        **{
            "base_url": server.base_url,
            "api_key": "sk-test-not-a-real-key",
            "timeout_seconds": 10.0,
            "context_window": None,
            "max_tokens": 4096,
            **model_options,
        },
    )
    retry = overrides.pop(
        "retry",
        RetryConfig(max_retries=3, initial_delay_seconds=0.01, max_delay_seconds=0.2, jitter=False),
    )
    return AgentConfig(model=model, retry=retry, **overrides)


#: Modules the floors' quick run takes whole (besides the unit tier and ``smoke`` tests).
_FLOORS_MODULES = ("test_memory_saver.py", "test_models_work_from_any_event_loop.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what ``./dev test-floors`` runs: the unit tier, ``smoke`` tests, the Redis saver."""
    for item in items:
        path = item.path
        if (
            "unit_tests" in path.parts
            or path.name in _FLOORS_MODULES
            or item.get_closest_marker("smoke") is not None
        ):
            item.add_marker(pytest.mark.floors)
