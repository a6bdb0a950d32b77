"""The HTTP client ``create_chat_model`` gives a model: one usable from any event loop, and the
lean transport still taken with it (a client the user brings is not)."""

from __future__ import annotations

import openai

from streamagent.config import ModelConfig
from streamagent.llm.factory import create_chat_model
from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.llm.loop_client import PerLoopAsyncClient, is_per_loop_client

CONFIG = ModelConfig(api_key="sk-t", base_url="http://127.0.0.1:9/v1", timeout_seconds=7.0)


def test_both_classes_get_a_per_loop_async_client_with_the_configured_timeout() -> None:
    for lean in (True, False):
        llm = create_chat_model(CONFIG, lean=lean)
        client = llm.http_async_client
        assert is_per_loop_client(client), type(llm).__name__
        assert (
            client.timeout.read == 7.0 and client.timeout.connect == CONFIG.connect_timeout_seconds
        )
        # ChatOpenAI keeps the client only when it reads as true (an empty one did not)
        assert bool(client) and client.loop_count == 0


def test_the_lean_transport_is_still_taken_with_the_per_loop_client() -> None:
    llm = create_chat_model(CONFIG)
    assert isinstance(llm, LeanChatOpenAI) and llm._lean_supported()


def test_a_user_supplied_async_client_sends_the_lean_class_down_the_sdk_path() -> None:
    theirs = LeanChatOpenAI(
        model="gpt-4o", api_key="sk-t", base_url="http://127.0.0.1:9/v1",
        http_async_client=openai.DefaultAsyncHttpxClient(),
    )  # fmt: skip
    assert not theirs._lean_supported()
    subclassed = type("Mine", (PerLoopAsyncClient,), {})()
    assert not is_per_loop_client(subclassed)  # only the factory's own class counts
