"""Usage and cost of every chat model in a composed graph, with a per-agent breakdown.

LangChain's ``create_agent`` (the ``middleware`` extra, installed for the tests), LangGraph's
prebuilt ReAct agent and a plain ``ChatOpenAI`` node run next to a streamagent agent; all
reach the scripted server over real HTTP.
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from typing import Any

from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph

from streamagent import create_agent_graph, stream_chunks
from streamagent.accounting.cost import CostCalculator, Usage
from streamagent.testing import Reply
from tests._support.agents import chat_model
from tests._support.streams import collect
from tests.conftest import config_for


def _llm(server: Any, model: str = "gpt-4o") -> ChatOpenAI:
    return chat_model(server, model=model, streaming=False)


def _one_after_the_other(**nodes: Any) -> Any:
    """A ``MessagesState`` graph running ``nodes`` in the order given."""
    builder = StateGraph(MessagesState)
    for name, node in nodes.items():
        builder.add_node(name, node)
    names = [START, *nodes]
    for a, b in zip(names, names[1:]):
        builder.add_edge(a, b)
    return builder.compile()


def _cost(input_tokens: int, output_tokens: int, model: str = "gpt-4o") -> Decimal:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, requests=1)
    cost = CostCalculator().cost(usage, model=model)
    assert cost is not None
    return cost


async def test_a_prebuilt_react_agent_next_to_a_streamagent_agent_is_counted(
    make_server: Any,
) -> None:
    server = make_server(
        [
            Reply("draft", prompt_tokens=100, completion_tokens=10),
            Reply("final", prompt_tokens=200, completion_tokens=20),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of langchain's create_agent
        from langgraph.prebuilt import create_react_agent

        writer = create_react_agent(_llm(server), tools=[], name="writer")
    editor = create_agent_graph(config=config_for(server), name="editor").compile(name="editor")
    graph = _one_after_the_other(writer=writer, editor=editor)

    chunks = await collect(graph, "write something", thread_id=None)
    done = chunks[-1]
    assert done.type == "done", done
    assert done.usage is not None
    assert done.usage["requests"] == 2
    assert done.usage["input_tokens"] == 300 and done.usage["output_tokens"] == 30
    assert done.cost_usd == _cost(100, 10) + _cost(200, 20)
    assert done.agents is not None
    assert done.agents["writer"]["usage"]["requests"] == 1
    assert done.agents["writer"]["cost_usd"] == _cost(100, 10)
    assert done.agents["editor"]["usage"]["input_tokens"] == 200
    assert done.agents["editor"]["cost_usd"] == _cost(200, 20)
    assert done.to_dict()["agents"]["writer"]["cost_usd"] == str(_cost(100, 10))


async def test_langchain_create_agent_next_to_a_streamagent_agent_is_counted(
    make_server: Any,
) -> None:
    """The issue's row: a ``create_agent`` graph composed next to streamagent's agent was
    reported as ``requests=0`` and ``$0``."""
    from langchain.agents import create_agent

    server = make_server(
        [
            Reply("draft", prompt_tokens=120, completion_tokens=12),
            Reply("final", prompt_tokens=220, completion_tokens=22),
        ]
    )
    writer = create_agent(_llm(server), tools=[], name="writer")
    editor = create_agent_graph(config=config_for(server), name="editor").compile(name="editor")
    graph = _one_after_the_other(writer=writer, editor=editor)

    done = (await collect(graph, "write something", thread_id=None))[-1]
    assert done.type == "done", done
    assert done.usage is not None and done.usage["requests"] == 2
    assert done.cost_usd == _cost(120, 12) + _cost(220, 22)
    assert done.agents is not None
    assert done.agents["writer"]["usage"]["requests"] == 1
    assert done.agents["writer"]["cost_usd"] == _cost(120, 12)


def test_a_model_without_usage_or_price_makes_the_cost_unknown(make_server: Any) -> None:
    server = make_server(
        [
            Reply("summary", prompt_tokens=50, completion_tokens=5),
            Reply("answer", prompt_tokens=60, completion_tokens=6),
        ]
    )
    summariser = _llm(server, model="house-model-without-a-price")

    def summarise(state: MessagesState) -> dict[str, list[AIMessage]]:
        reply = summariser.invoke(state["messages"])
        assert isinstance(reply, AIMessage)
        return {"messages": [reply]}

    agent = create_agent_graph(config=config_for(server), name="agent").compile(name="agent")
    chunks = list(stream_chunks(_one_after_the_other(summarise=summarise, agent=agent), "hello"))
    done = chunks[-1]
    assert done.type == "done", done
    assert done.usage is not None and done.usage["requests"] == 2
    assert done.cost_usd is None  # unknown, never a silent $0
    assert done.agents is not None
    assert done.agents["summarise"]["cost_usd"] is None
    assert done.agents["summarise"]["usage"]["input_tokens"] == 50
    assert done.agents["agent"]["cost_usd"] == _cost(60, 6)
