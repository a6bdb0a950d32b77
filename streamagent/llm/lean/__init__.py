"""The lean transport: the optional fast path under ``ChatOpenAI``'s streamed calls.

One idea, one name: "lean" is the transport (``ModelConfig.fast_path`` / ``STREAMAGENT_FAST_PATH``
switch it). A streamed call goes socket → :mod:`~streamagent.llm.lean.transport` (aiohttp or
httpx2) → :mod:`~streamagent.llm.lean.sse` (server-sent events) →
:mod:`~streamagent.llm.lean.text_chunks` / the chunk converter →
:mod:`~streamagent.llm.lean.astream`
→ the model node. :mod:`~streamagent.llm.lean.eligibility` is the allowlist of options it
handles; any other option takes the stock ``ChatOpenAI`` path.
"""

from streamagent.llm.lean.chat_model import LeanChatOpenAI

__all__ = ["LeanChatOpenAI"]
