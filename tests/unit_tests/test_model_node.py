"""The model node wired from its collaborators, with an in-process chat model (no sockets):
budgets before the call, the cap passed to the model, retries, accounting after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from streamagent.config import AgentConfig, ModelConfig, ModelPrice, RetryConfig
from streamagent.errors import StepLimitExceededError, StreamAgentError, StreamBrokenError
from streamagent.nodes.model import ModelNode

USAGE = {"input_tokens": 1_000, "output_tokens": 3, "total_tokens": 1_003}
STREAMED = 4  # a two-word reply: two words, the finish/usage chunk, LangChain's closing chunk


class ScriptedChat(BaseChatModel):
    """A chat model that streams scripted replies in process; a reply that is an exception
    is raised instead. Records the keyword arguments of each call."""

    replies: list[Any]
    calls: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _chunks(self, kwargs: dict[str, Any]) -> list[AIMessageChunk]:
        self.calls.append(kwargs)
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        words = reply.split(" ")
        chunks = [AIMessageChunk(content=w if i == 0 else f" {w}") for i, w in enumerate(words)]
        chunks.append(
            AIMessageChunk(
                content="", response_metadata={"finish_reason": "stop"}, usage_metadata=USAGE
            )
        )
        return chunks

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(kwargs):
            yield ChatGenerationChunk(message=chunk)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(kwargs):
            yield ChatGenerationChunk(message=chunk)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = self._chunks(kwargs)
        merged = chunks[0]
        for chunk in chunks[1:]:
            merged += chunk
        return ChatResult(generations=[ChatGeneration(message=merged)])


class Heard:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.retries: list[StreamAgentError] = []
        self.errors: list[StreamAgentError] = []

    def on_model_call(self, **call: Any) -> None:
        self.calls.append(call)

    def on_retry(self, *, model: str, error: StreamAgentError) -> None:
        self.retries.append(error)

    def on_error(self, error: StreamAgentError) -> None:
        self.errors.append(error)


def node(*replies: Any, heard: Heard | None = None, **agent: Any) -> tuple[ModelNode, ScriptedChat]:
    llm = ScriptedChat(replies=list(replies), calls=[])
    config = AgentConfig(
        model=ModelConfig(api_key="k", model="house-model"),
        retry=RetryConfig(initial_delay_seconds=0),
        prices={
            "house-model": ModelPrice(input_usd_per_1m=Decimal(1), output_usd_per_1m=Decimal(2))
        },
        system_prompt="be brief",
        **agent,
    )
    return ModelNode(llm=llm, tools=[], config=config, name="agent", observer=heard), llm  # type: ignore[arg-type]


ASK = {"messages": [HumanMessage("hi")]}


async def test_a_streamed_reply_becomes_the_nodes_update() -> None:
    heard = Heard()
    model_node, llm = node("hello there", heard=heard)
    update = await model_node.ainvoke(ASK, {})
    (message,) = update["messages"]
    assert message.content == "hello there" and message.name == "agent"
    assert message.response_metadata["streamed_chunks"] == STREAMED
    assert message.response_metadata["attempts"] == 1
    assert update["usage"]["input_tokens"] == 1_000 and update["usage"]["requests"] == 1
    assert update["cost_usd"] == Decimal("0.001006")
    assert update["run_steps"] == 1
    assert heard.calls[0]["model"] == "house-model" and heard.calls[0]["output_chunks"] == STREAMED
    assert "max_tokens" not in llm.calls[0]  # no token budget: no cap


def test_the_sync_shell_gives_the_same_update() -> None:
    sync_node, _ = node("hello there")
    update = sync_node.invoke(ASK, {})
    (message,) = update["messages"]
    assert message.content == "hello there"
    assert message.response_metadata["streamed_chunks"] == STREAMED
    assert update["cost_usd"] == Decimal("0.001006") and update["run_steps"] == 1


async def test_a_stream_that_breaks_before_its_first_token_is_retried() -> None:
    heard = Heard()
    model_node, llm = node(StreamBrokenError("cut"), "second try", heard=heard)
    update = await model_node.ainvoke(ASK, {})
    assert update["messages"][0].content == "second try"
    assert update["messages"][0].response_metadata["attempts"] == 2
    assert len(llm.calls) == 2 and len(heard.retries) == 1


async def test_the_token_budget_caps_the_reply_it_leaves_room_for() -> None:
    model_node, llm = node("ok", max_total_tokens=500)
    await model_node.ainvoke(ASK, {})
    room = 500 - model_node.counter.count_messages(model_node.model_input(ASK))
    assert llm.calls[0]["max_tokens"] == room


async def test_a_run_over_its_step_limit_never_reaches_the_model() -> None:
    heard = Heard()
    model_node, llm = node("never", heard=heard, max_steps=2)
    state = {"messages": [HumanMessage("hi"), ToolMessage("3", tool_call_id="c1")], "run_steps": 2}
    with pytest.raises(StepLimitExceededError) as info:
        await model_node.ainvoke(state, {})
    assert llm.calls == []
    assert heard.errors == [info.value]


def test_the_model_sees_the_system_prompt_first() -> None:
    model_node, _ = node()
    assert [m.type for m in model_node.model_input(ASK)] == ["system", "human"]
