"""``import streamagent`` works, and an agent turn streams, when an installed library lacks a
private name the fast path uses — in a fresh interpreter where the name is gone *before*
streamagent is imported (as after an upstream release that removed it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys
    import langchain_openai, langgraph.graph  # the libraries themselves are loaded as usual
    for module, attr in {removals!r}:
        delattr(importlib.import_module(module), attr)

    import streamagent  # must not fail
    from streamagent import AgentConfig, ModelConfig, build_agent, stream_chunks
    from streamagent.testing import ScriptedOpenAIServer

    with ScriptedOpenAIServer(["All good, no fast path needed."]) as server:
        config = AgentConfig(model=ModelConfig(base_url=server.base_url, api_key="t"))
        agent = build_agent(config=config, checkpointer=False)
        chunks = list(stream_chunks(agent, "hi", thread_id="t"))
    text = "".join(c.content or "" for c in chunks if c.type == "content")
    print(json.dumps({{"last": chunks[-1].type, "text": text}}))
    """
)


@pytest.mark.parametrize(
    "removals",
    [
        [("langchain_openai.chat_models.base", "_handle_openai_api_error")],
        [("langchain_core.utils.utils", "LC_ID_PREFIX")],
        [("langgraph.pregel._messages", "StreamMessagesHandler")],
    ],
    ids=["langchain-openai", "langchain-core", "langgraph"],
)
def test_import_and_a_turn_work_without_a_private_name(removals):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGSMITH_"))}
    env.pop("STREAMAGENT_FAST_PATH", None)
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(removals=removals)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["last"] == "done" and out["text"] == "All good, no fast path needed."
    module, attr = removals[0]
    assert f"{module}.{attr} is missing" in result.stderr, result.stderr
    assert "fast path is off" in result.stderr
