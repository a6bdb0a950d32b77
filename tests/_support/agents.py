"""Agents and chat models that reach a scripted server, and the tools the scripts call."""

from __future__ import annotations

from typing import Any

import openai
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import SecretStr

from streamagent import build_agent
from streamagent.testing import ScriptedOpenAIServer
from tests.conftest import config_for


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def lookup(text: str) -> str:
    """Look a word up (returns it upper-cased)."""
    return text.upper()


@tool
def echo(text: str) -> str:
    """Repeat the text."""
    return text


def agent_for(
    server: ScriptedOpenAIServer, *, tools: Any = (), saver: Any = None, **overrides: Any
) -> Any:
    """``build_agent`` reaching ``server`` (``config_for`` options), with an in-memory saver
    unless ``saver`` is given."""
    return build_agent(
        tools=list(tools),
        config=config_for(server, **overrides),
        checkpointer=saver if saver is not None else InMemorySaver(),
    )


def chat_model(
    server: ScriptedOpenAIServer, *, cls: type[ChatOpenAI] = ChatOpenAI, **overrides: Any
) -> ChatOpenAI:
    """A chat model of class ``cls`` (``ChatOpenAI`` or the streamagent client) reaching
    ``server``: streaming with usage, no retries, a 10 s timeout (and an HTTP client of its
    own), the key ``config_for`` gives; ``overrides`` replace any of these or add options."""
    options: dict[str, Any] = {
        "model": "gpt-4o",
        "base_url": server.base_url,
        "api_key": SecretStr("sk-test-not-a-real-key"),
        "max_retries": 0,
        "streaming": True,
        "stream_usage": True,
        # an SDK Timeout is unhashable, so langchain-openai builds this model a client of its
        # own: its process-wide client per (base URL, timeout) would carry a closed test loop's
        # connections to the next test whose server got the same port
        "timeout": openai.Timeout(10.0),
        **overrides,
    }
    if isinstance(options["timeout"], int | float):  # hashable: would share that client again
        options["timeout"] = openai.Timeout(float(options["timeout"]))
    return cls(**options)
