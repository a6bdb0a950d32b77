"""An OpenAI-compatible scripted server for tests, demos, notebooks and benchmarks.

:class:`ScriptedOpenAIServer` speaks the real Chat Completions wire format over real HTTP on
loopback, so the real ``openai`` SDK and ``langchain_openai.ChatOpenAI`` talk to it unchanged.
Script the model's turns with :class:`Reply` / :class:`ToolCall` (or plain strings), inject
faults with :class:`Fault`, and inspect what your graph sent in
:attr:`ScriptedOpenAIServer.requests`.

Example — test your own graph's tool loop without an API key:

    >>> from langchain_openai import ChatOpenAI
    >>> from streamagent.testing import Reply, ScriptedOpenAIServer, ToolCall
    >>> script = [Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]), "It is sunny."]
    >>> with ScriptedOpenAIServer(script) as server:
    ...     llm = ChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="test",
    ...                      max_retries=0, stream_usage=True)
    ...     first = llm.invoke("weather in Oslo?")
    ...     second = llm.invoke("and now?")
    ...     sent = server.requests[0].messages
    >>> first.tool_calls[0]["name"], first.tool_calls[0]["args"]
    ('get_weather', {'city': 'Oslo'})
    >>> second.content, sent[0]["content"]
    ('It is sunny.', 'weather in Oslo?')

Stand-alone (a separate process, e.g. for benchmarks)::

    python -m streamagent.testing --port 0 --reply-tokens 2000 --token-delay-ms 0

prints ``READY http://127.0.0.1:PORT/v1`` and serves until SIGTERM/SIGINT.
"""

from streamagent.testing.raw import RawReply, sse
from streamagent.testing.script import Fault, RecordedRequest, Reply, ToolCall
from streamagent.testing.server import ScriptedOpenAIServer

__all__ = [
    "Fault",
    "RawReply",
    "RecordedRequest",
    "Reply",
    "ScriptedOpenAIServer",
    "ToolCall",
    "sse",
]
