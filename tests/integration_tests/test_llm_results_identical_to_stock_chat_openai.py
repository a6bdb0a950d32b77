"""The streamagent chat model reports a streamed reply to its callbacks exactly as ``ChatOpenAI``
does (it keeps the reply compactly meanwhile).

Same script over real HTTP through the plain ``ChatOpenAI`` and the lean model: the streamed
messages, the ``LLMResult`` given to ``on_llm_end`` and the partial result given to
``on_llm_error`` after a mid-stream disconnect must be equal.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.outputs import LLMResult
from langchain_openai import ChatOpenAI

from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.testing import Fault, Reply, ToolCall
from tests._support.agents import chat_model
from tests._support.callbacks import ModelRunRecorder

WORDS = " ".join(f"word{i}" for i in range(300))


def without_run_ids(result: LLMResult | None) -> list[list[dict[str, Any]]]:
    assert result is not None
    out = []
    for gens in result.generations:
        row = []
        for gen in gens:
            data = gen.model_dump()
            if "message" in data:
                data["message"].pop("id", None)
            row.append(data)
        out.append(row)
    return out


async def stream(cls: type[ChatOpenAI], server: Any, **bind: Any) -> tuple[list[Any], Any]:
    llm = chat_model(server, cls=cls)
    runnable = llm.bind_tools(bind["tools"]) if bind else llm
    recorder = ModelRunRecorder()
    messages: list[Any] = []
    try:
        async for message in runnable.astream("hi", config={"callbacks": [recorder]}):
            messages.append((message.content, message.tool_call_chunks, message.chunk_position))
    except Exception as exc:  # noqa: BLE001 - the error class is compared
        messages.append(type(exc).__name__)
    return messages, recorder


TOOL = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
}


@pytest.mark.parametrize(
    "reply",
    [
        Reply(WORDS, prompt_tokens=11),
        Reply("Let me check. " + WORDS[:200], tool_calls=[ToolCall("f", {"q": "x" * 40})]),
    ],
    ids=["long text", "text and tool call"],
)
async def test_end_result_equals_plain_chat_openai(make_server, reply):
    got = {}
    for cls in (ChatOpenAI, LeanChatOpenAI):
        server = make_server([reply])
        got[cls] = await stream(cls, server, tools=[TOOL])
    (p_msgs, plain), (l_msgs, lean) = got[ChatOpenAI], got[LeanChatOpenAI]
    assert l_msgs == p_msgs and len(l_msgs) > 50
    assert without_run_ids(lean.result) == without_run_ids(plain.result)
    assert lean.result is not None
    assert lean.result.generations[0][0].message.content.endswith(reply.content[-30:])


async def test_partial_result_on_a_mid_stream_error_equals_plain_chat_openai(make_server):
    got = {}
    for cls in (ChatOpenAI, LeanChatOpenAI):
        server = make_server([Reply(WORDS, fault=Fault.disconnect(after_chunks=120))])
        got[cls] = await stream(cls, server)
    (p_msgs, plain), (l_msgs, lean) = got[ChatOpenAI], got[LeanChatOpenAI]
    assert l_msgs == p_msgs and isinstance(l_msgs[-1], str), "the stream failed the same way"
    assert lean.result is None and plain.result is None
    assert without_run_ids(lean.error_result) == without_run_ids(plain.error_result)
    partial = without_run_ids(lean.error_result)[0][0]["message"]["content"]
    assert partial and WORDS.startswith(partial), "the partial text reached on_llm_error"
