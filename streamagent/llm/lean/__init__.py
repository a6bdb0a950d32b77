"""The lean transport: the optional fast transport under ``ChatOpenAI``'s streamed calls.

Names, one idea each:

- **fast path** — the public switch only (``ModelConfig.fast_path`` /
  ``STREAMAGENT_FAST_PATH``, guarded by :mod:`streamagent._upstream`); it turns on together
  the lean transport, compact chunk merging and the token sink;
- **lean** — this transport: a streamed Chat Completions call without the openai SDK's typed
  chunk objects (:class:`LeanChatOpenAI`);
- **compact** — :class:`~streamagent.llm.chunk_merge.CompactChunks`, holding a streamed reply's
  chunks for the final merge as text (a memory idea, not a transport one: the model node uses
  it with any chat model, :mod:`~streamagent.llm.lean.astream` inside ``LeanChatOpenAI.astream``);
- **sink** — :class:`~streamagent.streaming.sink.TokenSink`, the in-loop hand-off of tokens
  from the model node to the stream reader.

A lean stream goes socket → :mod:`~streamagent.llm.lean.transport` (aiohttp or httpx2) →
:mod:`~streamagent.llm.lean.reader` (the read loop) → :mod:`~streamagent.llm.lean.sse`
(server-sent events) → :mod:`~streamagent.llm.lean.convert` /
:mod:`~streamagent.llm.lean.text_chunks` (generation chunks) →
:mod:`~streamagent.llm.lean.astream` → the model node. :mod:`~streamagent.llm.lean.request`
builds the request, :mod:`~streamagent.llm.lean.watchdog` times the gaps between chunks,
:mod:`~streamagent.llm.lean.eligibility` is the allowlist of options it handles; any other
option takes the stock ``ChatOpenAI`` path.
"""

from streamagent.llm.lean.chat_model import LeanChatOpenAI

__all__ = ["LeanChatOpenAI"]
