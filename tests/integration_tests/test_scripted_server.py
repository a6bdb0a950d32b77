"""The scripted server over real HTTP with the real openai SDK, httpx and ChatOpenAI."""

from __future__ import annotations

import asyncio
import email.utils
import json
import signal
import time

import httpx
import openai
import pytest
from langchain_core.messages import AIMessageChunk

from streamagent.testing import Fault, Reply, ScriptedOpenAIServer, ToolCall
from streamagent.testing.script import DEFAULT_FAULT_TEXT
from streamagent.testing.wire import estimate_prompt_tokens, split_pieces
from tests._support.agents import chat_model
from tests._support.servers import start_standalone

MESSAGES = [{"role": "user", "content": "hi"}]


def aclient(server: ScriptedOpenAIServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)


async def stream_chunks(server: ScriptedOpenAIServer, **kwargs) -> list:
    client = aclient(server)
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,
    )
    return [chunk async for chunk in stream]


def content_of(chunks: list) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- the happy path -------------------------------------------------------------------------


async def test_streamed_content_reassembles_exactly_one_piece_per_chunk(make_server):
    text = 'Hello, streaming world! Ünïcode ✓ and "quotes"\nnew line 12345.'
    server = make_server([text])
    chunks = await stream_chunks(server)
    assert content_of(chunks) == text
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert pieces == list(split_pieces(text))
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == len(pieces)


def test_sync_openai_client_streams_and_completes(make_server):
    server = make_server(["sync streamed", "sync whole"])
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert content_of(list(stream)) == "sync streamed"
    whole = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert whole.choices[0].message.content == "sync whole"
    assert whole.usage is not None and whole.usage.completion_tokens == 2
    assert [r.stream for r in server.requests] == [True, False]


async def test_non_streamed_tool_calls_and_usage(make_server):
    server = make_server(
        [Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2}, id="c1")], prompt_tokens=42)]
    )
    completion = await aclient(server).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].id == "c1"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"a": 1, "b": 2}
    assert completion.usage.prompt_tokens == 42


async def test_chat_openai_streams_content_with_usage_and_cached_tokens(make_server):
    server = make_server(
        [Reply("Streamed through LangChain.", prompt_tokens=1000, cached_tokens=200)]
    )
    chunks = [chunk async for chunk in chat_model(server).astream("hello")]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == "Streamed through LangChain."
    usage = merged.usage_metadata
    assert usage["input_tokens"] == 1000
    assert usage["output_tokens"] == len(split_pieces("Streamed through LangChain."))
    assert usage["input_token_details"]["cache_read"] == 200
    assert server.requests[0].include_usage


async def test_chat_openai_aggregates_parallel_tool_calls_from_argument_pieces(make_server):
    calls = [
        ToolCall("get_weather", {"city": "Oslo", "days": [1, 2, 3]}, id="w1"),
        ToolCall("get_time", {"timezone": "Europe/Oslo"}, id="t1"),
    ]
    server = make_server([Reply("Checking.", tool_calls=calls)])
    merged: AIMessageChunk | None = None
    argument_deltas = 0
    async for chunk in chat_model(server).astream("weather?"):
        argument_deltas += sum(1 for c in chunk.tool_call_chunks if c.get("args"))
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    assert merged.content == "Checking."
    assert [(c["name"], c["args"], c["id"]) for c in merged.tool_calls] == [
        ("get_weather", {"city": "Oslo", "days": [1, 2, 3]}, "w1"),
        ("get_time", {"timezone": "Europe/Oslo"}, "t1"),
    ]
    assert argument_deltas > 6, "arguments arrived in many pieces"


async def test_chat_openai_ainvoke_parses_tool_calls_and_reports_usage(make_server):
    server = make_server([Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 40})], cached_tokens=3)])
    message = await chat_model(server, streaming=False).ainvoke("add")
    assert message.tool_calls[0]["name"] == "add"
    assert message.tool_calls[0]["args"] == {"a": 2, "b": 40}
    assert message.tool_calls[0]["id"] == "call_1"
    assert message.usage_metadata["input_token_details"]["cache_read"] == 3
    assert message.usage_metadata["input_tokens"] == estimate_prompt_tokens(server.requests[0].body)


async def test_async_with_starts_and_stops_the_server_and_lists_models():
    async with ScriptedOpenAIServer(["x"], model="gpt-test") as server:
        models = await aclient(server).models.list()
        assert [m.id for m in models.data] == ["gpt-test"]
        base_url = server.base_url
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{base_url}/models")


# -- faults ---------------------------------------------------------------------------------


async def test_http_429_raises_rate_limit_error_with_retry_after_headers(make_server):
    server = make_server([Fault.http(429, retry_after_seconds=2, retry_after_ms=1500), "ok"])
    with pytest.raises(openai.RateLimitError) as caught:
        await aclient(server).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "1500"
    assert caught.value.body["type"] == "rate_limit_exceeded"
    assert caught.value.code == "rate_limit_exceeded"


async def test_http_fault_retry_after_as_http_date(make_server):
    server = make_server([Fault.http(503, retry_after_seconds=30, retry_after_http_date=True)])
    before = time.time()
    with pytest.raises(openai.InternalServerError) as caught:
        await stream_chunks(server)
    after = time.time()
    when = email.utils.parsedate_to_datetime(caught.value.response.headers["retry-after"])
    # 30 s after the moment the server answered (between before and after), to the second
    assert int(before) + 30 - 1 <= when.timestamp() <= after + 30, (before, when, after)


async def test_http_500_raises_internal_server_error_and_is_recorded(make_server):
    server = make_server([Fault.http(500, message="the backend fell over"), "after"])
    with pytest.raises(openai.InternalServerError, match="the backend fell over"):
        await stream_chunks(server)
    assert content_of(await stream_chunks(server)) == "after"
    assert len(server.requests) == 2 and server.remaining == 0


async def test_disconnect_mid_stream_raises_a_connection_error_in_the_client(make_server):
    text = "one two three four five six"
    server = make_server([Reply(text, fault=Fault.disconnect(after_chunks=3))])
    received: list[str] = []
    client = aclient(server)
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIConnectionError) as caught:
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    # openai wraps its HTTP library's RemoteProtocolError (httpx2 in openai 3.x)
    assert type(caught.value.__cause__).__name__ == "RemoteProtocolError"
    assert "incomplete chunked read" in str(caught.value.__cause__)
    assert "".join(received) == "one two", "the role chunk and two pieces arrived first"


async def test_disconnect_cuts_the_raw_chunked_body(make_server):
    server = make_server([Fault.disconnect(after_chunks=2)])
    async with httpx.AsyncClient() as http:
        body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
        async with http.stream("POST", f"{server.base_url}/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                async for _ in resp.aiter_bytes():
                    pass


async def test_disconnect_of_a_non_streamed_request_gives_no_response(make_server):
    server = make_server([Fault.disconnect(after_chunks=0)])
    with pytest.raises(openai.APIConnectionError):
        await aclient(server).chat.completions.create(model="gpt-4o", messages=MESSAGES)


async def test_malformed_chunk_raises_a_json_decode_error_in_the_client(make_server):
    server = make_server([Reply("good pieces then garbage", fault=Fault.malformed(after_chunks=2))])
    received: list[str] = []
    stream = await aclient(server).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    )
    with pytest.raises(json.JSONDecodeError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "good"


async def test_no_done_stream_ends_without_finish_reason_usage_or_done(make_server):
    server = make_server([Reply("unfinished business", fault=Fault.no_done()), Fault.no_done()])
    chunks = await stream_chunks(server)
    assert content_of(chunks) == "unfinished business"
    assert all(c.choices and c.choices[0].finish_reason is None for c in chunks)
    assert all(c.usage is None for c in chunks)
    async with httpx.AsyncClient() as http:
        body = {"model": "gpt-4o", "messages": MESSAGES, "stream": True}
        raw = await http.post(f"{server.base_url}/chat/completions", json=body)
    events = [line[len("data: ") :] for line in raw.text.split("\n\n") if line]
    streamed = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events)
    assert streamed == DEFAULT_FAULT_TEXT, "a bare stream fault streams the default text"
    assert "[DONE]" not in raw.text
    assert 'finish_reason":"' not in raw.text


async def test_stall_delays_the_gap_between_chunks(make_server):
    words = "before stall after and the rest of the reply"
    server = make_server([Reply(words, fault=Fault.stall(0.4, after_chunks=2))])
    stream = await aclient(server).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    )
    arrivals: list[tuple[str, float]] = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((chunk.choices[0].delta.content, time.monotonic()))
    assert "".join(p for p, _ in arrivals) == words
    gaps = [b - a for (_, a), (_, b) in zip(arrivals, arrivals[1:])]
    # the role chunk is chunk 1: the stall comes after the first content piece, once — all the
    # other gaps together are shorter than it (a stall before every chunk would make them 7x)
    stall, others = gaps[0], gaps[1:]
    assert stall >= 0.35, gaps
    assert sum(others) < stall, gaps


async def test_stall_before_the_first_chunk_trips_the_client_read_timeout(make_server):
    server = make_server([Fault.stall(1.0)])
    client = openai.AsyncOpenAI(
        base_url=server.base_url, api_key="test", max_retries=0, timeout=openai.Timeout(0.2)
    )
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APITimeoutError):
        async for _ in stream:
            pass


# -- script, responder, recording ---------------------------------------------------------


async def test_exhausted_script_answers_400_with_the_request_number(make_server):
    server = make_server(["only one"])
    await stream_chunks(server)
    with pytest.raises(openai.BadRequestError) as caught:
        await stream_chunks(server)
    assert "ScriptedOpenAIServer: script exhausted (request #2)" in str(caught.value)
    assert caught.value.response.status_code == 400


async def test_responder_answers_once_the_script_is_empty(make_server):
    def echo(request):
        return f"echo: {request.messages[-1]['content']}"

    server = make_server(["scripted"], responder=echo)
    assert content_of(await stream_chunks(server)) == "scripted"
    assert content_of(await stream_chunks(server)) == "echo: hi"
    server.enqueue(Reply("enqueued"))
    assert server.remaining == 1
    assert content_of(await stream_chunks(server)) == "enqueued"
    assert server.remaining == 0


async def test_requests_are_recorded_with_body_messages_headers_and_stream_flag(make_server):
    server = make_server([Fault.http(429), "two"])
    client = aclient(server)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    before = time.monotonic()
    await stream_chunks(server, temperature=0.5)
    first, second = server.requests
    assert first.path == "/v1/chat/completions" and first.method == "POST"
    assert first.headers["authorization"] == "Bearer test"
    assert first.messages == MESSAGES and not first.stream
    assert first.tools[0]["function"]["name"] == "f"
    assert second.stream and second.body["temperature"] == 0.5
    assert first.received_at <= before <= second.received_at
    snapshot = server.requests
    snapshot.clear()
    assert len(server.requests) == 2, "requests returns a copy"


async def test_invalid_json_body_is_refused_and_recorded_without_consuming_the_script(make_server):
    server = make_server(["kept"])
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{server.base_url}/chat/completions", content=b"{not json")
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert server.requests[0].body is None and server.remaining == 1


async def content_arrival_times(server: ScriptedOpenAIServer) -> list[float]:
    """When each content chunk of one streamed reply arrived (``time.monotonic()``)."""
    stream = await aclient(server).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True
    )
    return [
        time.monotonic()
        async for chunk in stream
        if chunk.choices and chunk.choices[0].delta.content
    ]


async def test_token_delay_spaces_chunks_and_a_reply_can_override_it(make_server):
    server = make_server(
        ["a b c d e", Reply("a b c d e", token_delay_seconds=0.08)], token_delay_seconds=0.04
    )
    for delay in (0.04, 0.08):  # the server's delay, then the reply's own
        arrivals = await content_arrival_times(server)
        assert len(arrivals) == 5
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        assert arrivals[-1] - arrivals[0] >= 4 * delay * 0.9, (delay, gaps)
    # a reply's 0 overrides a server delay of 10 minutes a chunk (else: a hang, ended by
    # pytest's timeout)
    patient = make_server([Reply("a b c d e", token_delay_seconds=0.0)], token_delay_seconds=600)
    assert len(await content_arrival_times(patient)) == 5


async def test_paced_on_schedule_a_late_chunk_is_followed_at_once(make_server):
    """A stall of 0.6 s after chunk 3 of 20 paced 30 ms apart: pausing before each chunk, the
    reply ends 0.6 s late; on schedule the chunks that fell due meanwhile follow at once, so
    the reply ends about when it was due (the two runs are compared with each other)."""
    spans = {}
    for on_schedule in (False, True):
        reply = Reply(" ".join(["w"] * 20), fault=Fault.stall(0.6, after_chunks=3))
        server = make_server([reply], token_delay_seconds=0.03, pace_on_schedule=on_schedule)
        arrivals = await content_arrival_times(server)
        assert len(arrivals) == 20
        spans[on_schedule] = arrivals[-1] - arrivals[0]
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        if not on_schedule:
            assert min(gaps) >= 0.02, "pausing before each chunk"
    paused, scheduled = spans[False], spans[True]
    assert paused >= 0.57 + 0.55, f"pausing before each chunk adds the stall ({paused:.2f} s)"
    assert scheduled >= 0.57 - 0.05, "on schedule no chunk comes before it is due"
    assert scheduled < paused - 0.3, f"on schedule the stall is caught up ({spans})"


async def test_fifty_concurrent_streams_all_complete_correctly(make_server):
    server = make_server(
        responder=lambda r: f"reply for {r.messages[0]['content']} " + "tok " * 30,
        token_delay_seconds=0.005,
    )
    client = aclient(server)

    streaming = 0
    open_streams: list[int] = []

    async def one(i: int) -> str:
        nonlocal streaming
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"n{i}"}], stream=True
        )
        chunks = []
        async for chunk in stream:
            if not chunks:
                streaming += 1
                open_streams.append(streaming)
            chunks.append(chunk)
        streaming -= 1
        return content_of(chunks)

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert results == [f"reply for n{i} " + "tok " * 30 for i in range(50)]
    assert len(server.requests) == 50
    assert max(open_streams) > 1, "the server streamed several replies at once"


# -- stand-alone mode -----------------------------------------------------------------------


def test_standalone_server_prints_ready_streams_n_tokens_and_stops_on_sigterm(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["scripted first", {"fault": {"kind": "http", "status": 429}}]))
    proc, base_url = start_standalone("--reply-tokens", "120", "--script", str(script))
    try:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)
        first = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert content_of(list(first)) == "scripted first"
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        pieces = [c for c in stream if c.choices and c.choices[0].delta.content]
        assert len(pieces) == 120
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_standalone_tool_then_text_calls_the_tool_first(tmp_path):
    proc, base_url = start_standalone(
        "--reply-tokens", "7", "--tool-then-text", "--tool-name", "lookup"
    )
    try:
        client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)
        first = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        call = first.choices[0].message.tool_calls[0]
        assert (call.function.name, json.loads(call.function.arguments)) == (
            "lookup",
            {"text": "hi"},
        )
        history = [
            *MESSAGES,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "hi"},
        ]
        second = client.chat.completions.create(model="gpt-4o", messages=history, stream=True)
        assert len([c for c in second if c.choices and c.choices[0].delta.content]) == 7
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
