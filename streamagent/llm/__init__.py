"""The chat model: building the client, retrying calls, merging streamed chunks, structured output.

- :func:`create_chat_model` (:mod:`~streamagent.llm.factory`) builds the ``ChatOpenAI`` the
  model node streams from; with the fast path on, the lean transport of
  :mod:`streamagent.llm.lean` (same requests, chunks, callbacks and errors, less CPU per chunk);
- :class:`RetryPolicy` (:mod:`~streamagent.llm.retry`): which errors are retried, and how long
  to wait;
- :mod:`~streamagent.llm.chunk_merge`, :mod:`~streamagent.llm.responses` (OpenAI's Responses
  API) and :mod:`~streamagent.llm.structured` (``response_format``).

Example:
    >>> from streamagent.config import ModelConfig
    >>> type(create_chat_model(ModelConfig(api_key="sk-test"), lean=False)).__name__
    'ChatOpenAI'
"""

from streamagent.llm.factory import create_chat_model
from streamagent.llm.retry import RetryPolicy, classify_error

__all__ = ["RetryPolicy", "classify_error", "create_chat_model"]
