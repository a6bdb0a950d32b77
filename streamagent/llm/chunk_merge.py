"""``CompactChunks``: hold a stream's chunks for the final merge without keeping every chunk.

"Compact" names this idea only — compacting the list of chunks a reply is merged from. It is
not the lean transport (:mod:`streamagent.llm.lean`): the model node uses it with any chat
model, and ``LeanChatOpenAI.astream`` (:mod:`streamagent.llm.lean.astream`) in place of the
list ``BaseChatModel.astream`` keeps.

LangChain merges a streamed reply at its end (``merge_chat_generation_chunks`` /
``add_ai_message_chunks``) from the list of every chunk it streamed. Each chunk is about ten
objects the cyclic garbage collector tracks (the message, the generation, their ``__dict__``s
and field sets, three lists), so a process streaming many long replies at once keeps millions of
them alive, and every full collection walks them all: at 1,000 concurrent streams that is a
pause of seconds and hundreds of MB.

Almost every chunk of a reply is *plain*: a text delta of an ``AIMessageChunk`` with the same
``id`` and the same de-duplicated ``response_metadata`` (``model_provider``) as the chunk before
it, and nothing else. Merging such a chunk only appends its text. ``CompactChunks`` keeps the
chunks that carry anything more (the first one, tool-call deltas, finish reason, usage, the
``chunk_position="last"`` marker) and, for each run of plain chunks, only their text (``str``,
not tracked by the collector); :meth:`CompactChunks.chunks` returns the kept chunks with each
run replaced by one synthetic plain chunk holding the run's joined text. Merging that list gives
exactly what merging every chunk gives
(``tests/unit_tests/test_chunk_merging_matches_langchain.py`` proves it on
real streams and on edge cases). Whenever the conditions for that are not met (list content,
conflicting metadata values), chunks are simply kept.

Example:
    >>> from langchain_core.messages import AIMessageChunk
    >>> acc = CompactChunks()
    >>> for text in ["Hel", "lo", " there"]:
    ...     acc.append(AIMessageChunk(content=text, id="m1"))
    >>> [c.content for c in acc.chunks()], acc.count
    (['Hel', 'lo there'], 3)
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk

__all__ = ["CompactChunks"]

# text pieces joined into one string per this many (memory of a long reply ~ its text)
_JOIN_EVERY = 64
# ``merge_dicts`` skips an equal value of these keys instead of concatenating it
_DEDUPED_KEYS = frozenset({"id", "output_version", "model_provider"})


def _message(chunk: Any) -> BaseMessageChunk:
    message: BaseMessageChunk = chunk.message if isinstance(chunk, ChatGenerationChunk) else chunk
    return message


class CompactChunks:
    """The chunks of one stream (all ``ChatGenerationChunk`` or all message chunks), compacted.

    :attr:`count` is the number of chunks appended; :meth:`chunks` the list to merge.
    """

    __slots__ = (
        "_blocks",
        "_compacting",
        "_kept",
        "_last_id",
        "_last_meta",
        "_pieces",
        "_seen",
        "count",
    )

    def __init__(self) -> None:
        self._kept: list[Any] = []
        self._pieces: list[str] | None = None
        self._blocks = 0  # leading items of _pieces that are joined blocks
        self._seen: dict[str, str] = {}
        self._compacting = True
        self.count = 0
        # of the last kept chunk: its id, and its response_metadata when a plain chunk may
        # follow it (every key de-duplicated and equal to the value seen), else None
        self._last_id: Any = None
        self._last_meta: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self.count

    def append(self, chunk: Any) -> None:
        """Add the next chunk of the stream."""
        self.count += 1
        if self._compacting and self._kept and self._plain(chunk):
            pieces = self._pieces
            if pieces is None:
                pieces = self._pieces = []
                self._blocks = 0
            pieces.append(chunk.message.content if self._generations else chunk.content)
            if len(pieces) - self._blocks >= _JOIN_EVERY:
                # one string per block of pieces: a str object costs ~50 bytes besides its text
                pieces[self._blocks :] = ["".join(pieces[self._blocks :])]
                self._blocks += 1
            return
        self._flush()
        self._kept.append(chunk)
        self._note(_message(chunk))

    def chunks(self) -> list[Any]:
        """The chunks to merge: merging them equals merging every appended chunk."""
        self._flush()
        return list(self._kept)

    # ------------------------------------------------------------------ internals
    @property
    def _generations(self) -> bool:
        return isinstance(self._kept[0], ChatGenerationChunk)

    def _plain(self, chunk: Any) -> bool:
        """True when merging ``chunk`` after the last kept one only appends its text."""
        if self._last_meta is None:
            return False
        if type(chunk) is ChatGenerationChunk:
            if chunk.generation_info or not self._generations:
                return False
            message = chunk.message
        elif self._generations:
            return False
        else:
            message = chunk
        return (
            type(message) is AIMessageChunk
            and type(message.content) is str
            and not message.tool_call_chunks
            and not message.additional_kwargs
            and message.usage_metadata is None
            and message.chunk_position is None
            and message.id == self._last_id
            and message.response_metadata == self._last_meta
        )

    def _note(self, message: BaseMessageChunk) -> None:
        """Record a kept chunk; stop compacting when the merge could stop being a plain join."""
        self._last_meta = None
        if not isinstance(message.content, str):
            self._compacting = False
            return
        for key in _DEDUPED_KEYS:
            value = message.response_metadata.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or self._seen.setdefault(key, value) != value:
                self._compacting = False
                return
        seen = self._seen
        meta = message.response_metadata
        if all(key in _DEDUPED_KEYS and seen.get(key) == value for key, value in meta.items()):
            self._last_id = message.id
            self._last_meta = dict(meta)

    def _flush(self) -> None:
        pieces = self._pieces
        if pieces is None:
            return
        self._pieces = None
        last = _message(self._kept[-1])
        run = AIMessageChunk(
            content="".join(pieces), id=last.id, response_metadata=dict(last.response_metadata)
        )
        self._kept.append(ChatGenerationChunk(message=run) if self._generations else run)
