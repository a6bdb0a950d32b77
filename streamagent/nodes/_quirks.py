"""What real OpenAI-compatible servers send that the reference does not, made safe.

* **Repeated tool names** — llama.cpp's server repeats the function name (and id) in *every*
  streamed tool-call delta. LangChain concatenates names while merging deltas, so
  ``read_file`` became ``read_fileread_file…`` and the call was answered "unknown tool".
  :func:`dedupe_tool_names` drops a delta's name when it equals the name already collected
  for that call index (a name genuinely split across deltas, ``"read_"`` + ``"file"``, is kept).
* **A 200 with an empty event stream** — LangChain raises ``ValueError("No generation chunks
  were returned")``; :func:`stream_error` turns it into the retried :class:`StreamBrokenError`.
* **No ``finish_reason`` but a usage chunk** — the usage chunk comes after the last choice, so
  the server finished generating: :func:`infer_finish_reason` sets ``finish_reason`` from the
  reply (``tool_calls`` or ``stop``) and marks ``finish_reason_inferred``. With neither, the
  stream was truncated and stays an error.
* **No usage** (llama.cpp ignores ``stream_options.include_usage``) — the model node estimates
  it with tiktoken, including the tool schemas sent, and marks the message ``usage_estimated``
  (the ``done`` chunk then carries ``usage_estimated=True``): :func:`estimated_usage`.

Example:
    >>> from langchain_core.messages import AIMessageChunk
    >>> def delta(args: str) -> AIMessageChunk:
    ...     call = {"index": 0, "id": "c1", "name": "read_file", "args": args}
    ...     return AIMessageChunk(content="", tool_call_chunks=[call])
    >>> chunks = dedupe_tool_names([delta('{"pa'), delta('th": "a"}')])
    >>> merged = chunks[0] + chunks[1]
    >>> merged.tool_calls[0]["name"], merged.tool_calls[0]["args"]
    ('read_file', {'path': 'a'})
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.tools import BaseTool

from streamagent.accounting.cost import Usage
from streamagent.accounting.tokens import TokenCounter
from streamagent.errors import StreamBrokenError

__all__ = ["dedupe_tool_names", "estimated_usage", "infer_finish_reason", "stream_error"]

_EMPTY_STREAM = "No generation chunks were returned"


def dedupe_tool_names(chunks: list[Any]) -> list[Any]:
    """The chunks with repeated tool names removed from later deltas of the same call."""
    names: dict[Any, str] = {}
    out: list[Any] = chunks
    for position, chunk in enumerate(chunks):
        if not isinstance(chunk, AIMessageChunk) or not chunk.tool_call_chunks:
            continue
        changed = False
        calls: list[Any] = []
        for call in chunk.tool_call_chunks:
            name = call.get("name")
            key = call.get("index")
            if name and key is not None and names.get(key) == name:
                calls.append({**call, "name": None})
                changed = True
                continue
            if name and key is not None:
                names[key] = names.get(key, "") + name
            calls.append(call)
        if changed:
            if out is chunks:
                out = list(chunks)
            out[position] = chunk.model_copy(update={"tool_call_chunks": calls})
    return out


def stream_error(exc: BaseException) -> BaseException:
    """LangChain's error for an empty stream as the retryable :class:`StreamBrokenError`."""
    if isinstance(exc, ValueError) and str(exc) == _EMPTY_STREAM:
        return StreamBrokenError(
            "the model answered with an empty event stream (no chunks, no finish_reason)"
        )
    return exc


def infer_finish_reason(merged: AIMessageChunk) -> bool:
    """Set a missing ``finish_reason`` when a usage chunk shows the reply ended; True if set."""
    metadata = merged.response_metadata
    if metadata.get("finish_reason") or merged.usage_metadata is None:
        return False
    metadata["finish_reason"] = "tool_calls" if merged.tool_call_chunks else "stop"
    metadata["finish_reason_inferred"] = True
    return True


def estimated_usage(
    counter: TokenCounter,
    messages: Sequence[BaseMessage],
    message: AIMessage,
    tools: Sequence[BaseTool],
) -> Usage:
    """Usage of a call whose server sent none: the prompt, the tool schemas, the reply."""
    prompt = counter.count_messages(list(messages), tools=list(tools))
    output = counter.count_text(message.text)
    for call in message.tool_calls:
        output += counter.count_text(call["name"]) + counter.count_text(json.dumps(call["args"]))
    return Usage(input_tokens=prompt, output_tokens=output, requests=1)
