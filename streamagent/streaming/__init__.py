"""Typed stream chunks over LangGraph's native streaming.

- :class:`StreamChunk` (:mod:`~streamagent.streaming.chunk`): one typed event of a run;
- :func:`astream_chunks` / :func:`stream_chunks` (:mod:`~streamagent.streaming.run`): run a
  graph and yield chunks;
- :class:`ChunkTranslator` (:mod:`~streamagent.streaming.translate`): the pure translation;
- :mod:`~streamagent.streaming.protocol`: the events and keys the nodes write;
- :mod:`~streamagent.streaming.sink`: the in-loop token hand-off of the fast path;
- :mod:`~streamagent.streaming.input_policy`: what a turn's input may contain.

Example:
    >>> StreamChunk(type="content", content="Hi").to_dict()
    {'type': 'content', 'content': 'Hi'}
"""

from streamagent.streaming.chunk import ChunkType, StreamChunk, prepare_input
from streamagent.streaming.run import astream_chunks, stream_chunks
from streamagent.streaming.translate import ChunkTranslator

__all__ = [
    "ChunkTranslator",
    "ChunkType",
    "StreamChunk",
    "astream_chunks",
    "prepare_input",
    "stream_chunks",
]
