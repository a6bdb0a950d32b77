"""LangSmith tracing with the standard ``LANGSMITH_*`` variables and nothing else.

``streamagent.testing.langsmith.LangSmithCapture`` stands in for LangSmith: it answers
``GET /info`` and records what the real ``langsmith`` client posts (``/runs/multipart``,
zstd-compressed as the client does by default, or ``/runs/batch`` / ``/runs``). The traced conversation runs in a fresh Python process
whose environment holds only the standard variables, so nothing but those variables can have
turned tracing on (and no cached client of this test process interferes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from streamagent.testing.langsmith import LangSmithCapture

THREAD_ID = "thread-trace-1"
OPENAI_KEY = "sk-proj-TRACEsecret0123456789abcdef"
LANGSMITH_KEY = "lsv2_pt_fakeTRACEkey0123456789"
REDIS_PASSWORD = "r3d1s-TRACE-pw"
PROJECT = "streamagent-trace-test"


CHILD = textwrap.dedent(
    """
    import json, sys
    from langchain_core.runnables import RunnableLambda
    from langchain_core.tools import tool
    from langchain_core.tracers.langchain import get_client, wait_for_all_tracers
    from langgraph.checkpoint.memory import InMemorySaver
    from streamagent import AgentConfig, ModelConfig, build_agent, stream_chunks
    from streamagent.testing import Reply, ScriptedOpenAIServer, ToolCall
    from streamagent.observability.tracing import annotate_current_run

    @tool
    def multiply(a: int, b: int) -> int:
        '''Multiply two integers.'''
        return a * b

    # the tokenizer loaded first: START -> model is then decided on counts, not on timing
    from streamagent.accounting.tokens import TokenCounter
    TokenCounter("gpt-4o").count_text("warm up")

    script = [
        Reply(tool_calls=[ToolCall("multiply", {"a": 6, "b": 7}, id="m1")], prompt_tokens=120),
        Reply("The product is 42.", prompt_tokens=150, completion_tokens=6),
    ]
    with ScriptedOpenAIServer(script) as server:
        # the API key comes from OPENAI_API_KEY, as for any user
        config = AgentConfig(model=ModelConfig(model="gpt-4o", base_url=server.base_url))
        agent = build_agent(tools=[multiply], config=config, checkpointer=InMemorySaver())
        chunks = list(stream_chunks(agent, "6 times 7?", thread_id=sys.argv[1]))

    def annotated(x: int) -> bool:
        return annotate_current_run({"probe": "yes"}, tags=["probe-tag"])

    probe = RunnableLambda(annotated, name="annotation_probe").invoke(1)
    wait_for_all_tracers()
    get_client().flush()
    print(json.dumps({"chunks": [c.type for c in chunks], "probe": probe}))
    """
)


def children_of(capture: LangSmithCapture, parent_id: str) -> list[dict[str, Any]]:
    found = [r for r in capture.runs.values() if r.get("parent_run_id") == parent_id]
    return sorted(found, key=lambda r: r.get("dotted_order", ""))


def descendants(capture: LangSmithCapture, parent_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for child in children_of(capture, parent_id):
        out.append(child)
        out.extend(descendants(capture, str(child["id"])))
    return out


def child_env(endpoint: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "OPENAI_", "REDIS_"))
    }
    env.update(
        LANGSMITH_TRACING="true",
        LANGSMITH_ENDPOINT=endpoint,
        LANGSMITH_API_KEY=LANGSMITH_KEY,
        LANGSMITH_PROJECT=PROJECT,
        OPENAI_API_KEY=OPENAI_KEY,
        REDIS_URL=f"redis://agent:{REDIS_PASSWORD}@127.0.0.1:6399/0",
    )
    return env


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[LangSmithCapture, dict[str, Any]]]:
    fake = LangSmithCapture().start()
    try:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, THREAD_ID],
                env=child_env(fake.endpoint),
                capture_output=True,
                text=True,
                timeout=40,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the traced child process hung: {str(exc.stderr)[-2000:]}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        yield fake, result
    finally:
        fake.stop()


def root_of(capture: LangSmithCapture) -> dict[str, Any]:
    roots = [r for r in capture.runs.values() if not r.get("parent_run_id")]
    agents = [r for r in roots if r.get("name") == "agent"]
    assert len(agents) == 1, [r.get("name") for r in roots]
    return agents[0]


def test_conversation_ran_and_the_real_client_posted_runs(traced):
    capture, result = traced
    assert result["chunks"][-1] == "done"
    assert "GET /info" in capture.paths
    assert any(p.startswith("POST /runs") for p in capture.paths)
    assert len(capture.runs) >= 8


def test_run_tree_is_graph_then_nodes_then_model_and_tool_runs(traced):
    # agent → one run per node and step ("graph:step:N")
    #       → ChatOpenAI under model, one run per tool (named after it) under tools
    capture, _ = traced
    root = root_of(capture)
    assert root["run_type"] == "chain" and root["session_name"] == PROJECT
    runs = children_of(capture, str(root["id"]))
    # LangGraph posts its input step, hidden in LangSmith's UI, when the entry is a conditional
    # edge (START -> prune or model); prune runs only when the thread needs it (this one not)
    assert runs[0]["name"] == "__start__" and "langsmith:hidden" in runs[0]["tags"]
    steps = runs[1:]
    assert [r["name"] for r in steps] == ["model", "tools", "model"]
    assert [r["tags"] for r in steps] == [[f"graph:step:{i}"] for i in range(1, 4)]
    # each step's run is the node's run (as for LangGraph's own function nodes): the model
    # run and the tool runs hang directly under it
    children = {s["name"]: [r["name"] for r in children_of(capture, str(s["id"]))] for s in steps}
    assert children["model"] == ["ChatOpenAI"]
    assert children["tools"] == ["multiply"]
    for step in (s for s in steps if s["name"] == "model"):
        llms = [r for r in descendants(capture, str(step["id"])) if r["run_type"] == "llm"]
        assert [r["name"] for r in llms] == ["ChatOpenAI"]
        assert "streamagent:agent" in llms[0]["tags"]
    (tools_step,) = [s for s in steps if s["name"] == "tools"]
    tool_runs = [r for r in descendants(capture, str(tools_step["id"])) if r["run_type"] == "tool"]
    assert [r["name"] for r in tool_runs] == ["multiply"]
    assert "6" in json.dumps(tool_runs[0]["inputs"]) and "7" in json.dumps(tool_runs[0]["inputs"])
    assert "42" in json.dumps(tool_runs[0]["outputs"])
    assert all(r.get("end_time") for r in capture.runs.values()), "every run was closed"


def test_every_run_carries_the_thread_id_and_model_runs_the_model(traced):
    capture, _ = traced
    agent_runs = [r for r in capture.runs.values() if r.get("name") != "annotation_probe"]
    for run in agent_runs:
        metadata = run["extra"]["metadata"]
        assert metadata["thread_id"] == THREAD_ID, run["name"]
    llm_runs = [r for r in agent_runs if r["run_type"] == "llm"]
    assert len(llm_runs) == 2
    for run in llm_runs:
        metadata = run["extra"]["metadata"]
        assert metadata["ls_model_name"] == "gpt-4o" and metadata["ls_provider"] == "openai"
        assert metadata["langgraph_node"] == "model"
    usage = [json.dumps(r["outputs"]) for r in llm_runs]
    assert '"input_tokens": 120' in usage[0] or '"input_tokens":120' in usage[0]
    assert "150" in usage[1]


def test_annotation_helper_adds_metadata_and_tags_to_the_current_run(traced):
    capture, result = traced
    assert result["probe"] is True
    (probe,) = [r for r in capture.runs.values() if r.get("name") == "annotation_probe"]
    assert probe["extra"]["metadata"]["probe"] == "yes"
    assert "probe-tag" in probe["tags"]


def test_model_node_runs_carry_usage_and_cost_metadata(traced):
    # needs ModelNode.state_update to call streamagent.observability.tracing.annotate_current_run (see report)
    capture, _ = traced
    root = root_of(capture)
    steps = [s for s in children_of(capture, str(root["id"])) if s["name"] == "model"]
    expected_input = [120, 150]
    for step, input_tokens in zip(steps, expected_input, strict=True):
        metadata = step["extra"]["metadata"]  # the step's run is the model node's run
        assert metadata.get("model") == "gpt-4o", metadata
        assert metadata["usage"]["input_tokens"] == input_tokens
        assert metadata["cost_usd"] is not None and float(metadata["cost_usd"]) > 0
        assert metadata["attempts"] == 1


def test_no_secret_appears_in_anything_sent_to_langsmith(traced):
    capture, _ = traced
    everything = b"\n".join(capture.bodies)
    assert len(everything) > 1000
    for secret in (OPENAI_KEY, LANGSMITH_KEY, REDIS_PASSWORD):
        assert secret.encode() not in everything, secret
    # nor a recognisable fragment of the model key
    assert b"TRACEsecret" not in everything
