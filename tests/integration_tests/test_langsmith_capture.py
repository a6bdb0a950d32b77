"""``streamagent.testing.langsmith.LangSmithCapture``: a user asserts their agent's trace in
their own test — in-process, offline, through the real ``langsmith`` client."""

from __future__ import annotations

import doctest
import json

from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

import streamagent.testing.langsmith as capture_module
from streamagent import build_agent
from streamagent.testing import Reply, ToolCall
from streamagent.testing.langsmith import LangSmithCapture
from tests._support.streams import collect
from tests.conftest import config_for


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


async def test_a_traced_agent_run_reads_back_as_graph_nodes_model_and_tools(make_server):
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("multiply", {"a": 6, "b": 7}, id="m1")], prompt_tokens=120),
            Reply("The product is 42.", prompt_tokens=150, completion_tokens=6),
        ]
    )
    agent = build_agent(tools=[multiply], config=config_for(server), checkpointer=InMemorySaver())
    with LangSmithCapture() as capture:
        with capture.tracing(project_name="my-tests"):
            chunks = await collect(agent, "6 times 7?", thread_id="t-1")
        assert chunks[-1].type == "done"
        roots = [r for r in capture.tree() if r.name == "agent"]
    assert len(roots) == 1, [r.name for r in capture.tree()]
    root = roots[0]
    steps = [c for c in root.children if c.name in ("prune", "model", "tools")]
    assert [s.name for s in steps if s.name != "prune"] == ["model", "tools", "model"]
    model_steps = root.find("model")
    assert [m.children[0].name for m in model_steps] == ["ChatOpenAI", "ChatOpenAI"]
    first = model_steps[0].metadata
    assert first["model"] == "gpt-4o" and first["usage"]["input_tokens"] == 120
    assert first["attempts"] == 1 and float(first["cost_usd"]) > 0
    (tool_run,) = root.find("multiply")
    assert tool_run.run_type == "tool" and "42" in json.dumps(tool_run.outputs)
    assert all(r["session_name"] == "my-tests" for r in capture.runs.values())
    assert ("multiply", []) in [c for s in root.outline()[1] for c in s[1]]


def test_the_env_variables_and_the_endpoint_point_a_child_process_here():
    capture = LangSmithCapture()
    with capture:
        env = capture.env(project_name="p")
        assert env["LANGSMITH_ENDPOINT"] == capture.endpoint and capture.port > 0
        assert env["LANGSMITH_TRACING"] == "true" and env["LANGSMITH_PROJECT"] == "p"
    assert capture.tree() == []


def test_the_module_example_runs():
    failures, tried = doctest.testmod(capture_module)
    assert tried > 0 and failures == 0
