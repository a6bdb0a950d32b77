"""A model or agent streamagent builds works from every event loop it is used on — a second
``asyncio.run``, a worker thread's loop — on the stock path as on the lean one.

An async HTTP connection belongs to the loop that opened it; ``ChatOpenAI``'s default client is
one object for the model's life, so a second loop reused a dead loop's connection and failed
with ``RuntimeError: Event loop is closed`` (:mod:`streamagent.llm.loop_client`)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import openai
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import build_agent
from streamagent.llm.factory import create_chat_model
from streamagent.llm.loop_client import PerLoopAsyncClient
from streamagent.testing import Reply
from tests.conftest import config_for

#: (lean, use_responses_api): the stock client; the lean class on its own transport; the lean
#: class on the SDK's path (the Responses API goes through ``ChatOpenAI`` itself).
PATHS = {
    "stock": (False, None),
    "lean": (True, None),
    "lean-class-responses-api": (True, True),
}


def model_for(server: Any, path: str) -> ChatOpenAI:
    lean, responses = PATHS[path]
    config = config_for(server, use_responses_api=responses).model
    return create_chat_model(config, lean=lean)


async def answer(llm: ChatOpenAI) -> str:
    return (await llm.ainvoke([HumanMessage("hi")])).text


@pytest.mark.parametrize("path", PATHS)
def test_one_model_answers_on_consecutive_event_loops(make_server: Any, path: str) -> None:
    server = make_server(["one", "two", "three"])
    llm = model_for(server, path)
    assert [asyncio.run(answer(llm)) for _ in range(3)] == ["one", "two", "three"]
    if path != "lean":
        # the SDK's path went through the per-loop client, and each loop's client closed
        assert llm.http_async_client.loop_count == 0
    assert len(server.requests) == 3


def test_the_stock_client_of_a_plain_chat_openai_is_what_breaks(make_server: Any) -> None:
    """The anchor: the same three calls on ``ChatOpenAI``'s own default client fail on the
    second loop (if langchain-openai ever fixes this, the test says so and can go)."""
    server = make_server(["one", "two"])
    llm = ChatOpenAI(
        model="gpt-4o", base_url=server.base_url, api_key="sk-t", max_retries=0,
        timeout=openai.Timeout(10.0),  # unhashable: a client of its own, not a shared one
    )  # fmt: skip
    assert asyncio.run(answer(llm)) == "one"
    with pytest.raises((RuntimeError, openai.APIConnectionError)):
        asyncio.run(answer(llm))


def test_each_loop_gets_its_own_client_closed_at_that_loops_shutdown() -> None:
    client = PerLoopAsyncClient(timeout=5.0)
    assert client  # ChatOpenAI keeps a client only if it is truthy

    async def twice() -> tuple[Any, Any]:
        return await client.for_running_loop(), await client.for_running_loop()

    first, again = asyncio.run(twice())
    second, _ = asyncio.run(twice())
    assert first is again and first is not second
    assert first.is_closed and second.is_closed
    assert client.loop_count == 0


def test_concurrent_loops_in_threads_share_one_model(make_server: Any) -> None:
    texts = [f"reply {i}" for i in range(8)]
    server = make_server([Reply(text) for text in texts])
    llm = model_for(server, "stock")
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        async def two() -> list[str]:
            return list(await asyncio.gather(answer(llm), answer(llm)))

        try:
            texts = asyncio.run(two())
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
            return
        with lock:
            results.extend(texts)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert sorted(results) == sorted(texts)
    assert llm.http_async_client.loop_count == 0


def test_an_agent_on_the_stock_path_keeps_its_thread_across_event_loops(
    make_server: Any,
) -> None:
    server = make_server(["Hello, Ada.", "Your name is Ada."])
    agent = build_agent(
        tools=[], config=config_for(server, fast_path=False), checkpointer=InMemorySaver()
    )
    thread = {"configurable": {"thread_id": "loops"}}

    async def turn(text: str) -> Any:
        return await agent.ainvoke({"messages": [HumanMessage(text)]}, thread)

    asyncio.run(turn("I am Ada."))
    state = asyncio.run(turn("What is my name?"))
    assert state["messages"][-1].text == "Your name is Ada."
    # the second request carried the first turn
    sent = [m["content"] for m in server.requests[1].messages if m["role"] == "user"]
    assert sent == ["I am Ada.", "What is my name?"]
