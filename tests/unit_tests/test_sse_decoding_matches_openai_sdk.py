"""SseDecoder: the openai SDK's SSE decoder is the reference, over every way to split the bytes."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from openai._streaming import SSEDecoder

from streamagent.llm.lean.sse import SseDecoder, decode_payload
from streamagent.testing.wire import DONE_EVENT, MALFORMED_EVENT


def reference(body: bytes) -> list[object]:
    """What the openai SDK's ``Stream`` yields for ``body``: JSON payloads until ``[DONE]``."""
    out: list[object] = []
    for sse in SSEDecoder().iter_bytes(iter([body])):
        if sse.data.startswith("[DONE]"):
            break
        out.append(sse.json())
    return out


def decode(parts: list[bytes]) -> list[object]:
    decoder = SseDecoder()
    out: list[object] = []
    for part in parts:
        out.extend(decoder.feed(part))
    return out


def event(obj: object, *, eol: bytes = b"\n") -> bytes:
    return b"data: " + orjson.dumps(obj) + eol + eol


BODIES = {
    "lf": event({"a": 1}) + event({"b": "x\ny"}) + DONE_EVENT,
    "crlf": event({"a": 1}, eol=b"\r\n") + event({"b": 2}, eol=b"\r\n") + b"data: [DONE]\r\n\r\n",
    "cr": event({"a": 1}, eol=b"\r") + event({"b": 2}, eol=b"\r"),
    "comments-and-fields": (
        b': keep-alive\n\nid: 7\nretry: 1000\nevent: message\ndata: {"a": 1}\n\n' + event([1, 2])
    ),
    "multi-line-data": b'data: {"a":\ndata: 1}\n\n' + event({"b": "é ✓"}),
    "no-space-after-colon": b'data:{"a":1}\n\n',
    "unfinished-last-event": event({"a": 1}) + b'data: {"b": 2}\n',
    "after-done-ignored": event({"a": 1}) + DONE_EVENT + event({"never": True}),
    "unicode-split": event({"t": "日本語のテキスト — ünïcödé"}) * 3,
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_matches_the_sdk_decoder_for_every_two_way_split(name):
    body = BODIES[name]
    expected = reference(body)
    assert expected, "the reference decodes something"
    assert decode([body]) == expected
    for cut in range(len(body) + 1):
        assert decode([body[:cut], body[cut:]]) == expected, cut


@pytest.mark.parametrize("name", sorted(BODIES))
def test_matches_the_sdk_decoder_byte_by_byte_and_random_chunks(name):
    body = BODIES[name]
    expected = reference(body)
    assert decode([body[i : i + 1] for i in range(len(body))]) == expected
    rng = random.Random(name)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(body)), k=min(6, len(body) - 1)))
        parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        assert decode(parts) == expected


def test_done_sets_the_flag_and_stops_decoding():
    decoder = SseDecoder()
    assert decoder.feed(event({"a": 1}) + DONE_EVENT + event({"b": 2})) == [{"a": 1}]
    assert decoder.done
    assert decoder.feed(event({"c": 3})) == []


def test_stream_without_done_leaves_the_flag_unset():
    decoder = SseDecoder()
    assert decoder.feed(event({"a": 1})) == [{"a": 1}]
    assert not decoder.done


def test_malformed_chunk_raises_a_json_decode_error():
    decoder = SseDecoder()
    with pytest.raises(json.JSONDecodeError):
        decoder.feed(event({"ok": True}) + MALFORMED_EVENT)
    with pytest.raises(json.JSONDecodeError):
        reference(MALFORMED_EVENT)


def test_realistic_chat_completion_stream_round_trips():
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": w}}],
        }
        for w in ["Hello", ",", " world", "\n\n", "!"]
    ]
    body = b"".join(event(c) for c in chunks) + DONE_EVENT
    assert decode([body[i : i + 7] for i in range(0, len(body), 7)]) == chunks == reference(body)


def test_feed_raw_gives_the_undecoded_payloads_of_feed():
    body = event({"a": 1}) + b'data: {"b":\ndata: 2}\n\n' + event({"c": "é"}) + DONE_EVENT
    raw = SseDecoder().feed_raw(body)
    assert all(type(p) is bytes for p in raw)
    assert [decode_payload(p) for p in raw] == SseDecoder().feed(body) == reference(body)


def test_events_before_a_malformed_one_are_usable_before_its_error():
    decoder = SseDecoder()
    first, broken = decoder.feed_raw(event({"ok": True}) + MALFORMED_EVENT)
    assert decode_payload(first) == {"ok": True}
    with pytest.raises(json.JSONDecodeError):
        decode_payload(broken)
