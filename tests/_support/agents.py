"""Agents and chat models that reach a scripted server, and the tools the scripts call."""

from __future__ import annotations

from typing import Any

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


def chat_model(cls: type[ChatOpenAI], server: ScriptedOpenAIServer, **kwargs: Any) -> ChatOpenAI:
    """A streaming chat model of class ``cls`` (``ChatOpenAI`` or the streamagent client)
    reaching ``server``, without retries, reporting usage."""
    return cls(
        model="gpt-4o",
        base_url=server.base_url,
        api_key=SecretStr("sk-test"),
        max_retries=0,
        streaming=True,
        stream_usage=True,
        **kwargs,
    )


@tool
def lookup(text: str) -> str:
    """Look a word up (returns it upper-cased)."""
    return text.upper()


@tool
def echo(text: str) -> str:
    """Repeat the text."""
    return text
