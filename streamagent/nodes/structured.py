"""The structured-output node: after the final answer, one call that returns the schema.

Runs only when the graph was built with ``response_format=``
(see :mod:`streamagent.llm.structured`).
It asks the agent's chat model (the same one, without the agent's tools) for the schema, with
the model node's retry policy, validates the answer, gives invalid output one repair attempt,
and writes ``structured_response`` plus the call's usage and cost. Its tokens are not streamed
as text.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from tenacity import AsyncRetrying, Retrying

from streamagent.accounting.cost import Usage
from streamagent.llm.retry import classify_error
from streamagent.llm.structured import ResponseFormat, invalid
from streamagent.nodes._quirks import estimated_usage
from streamagent.nodes.model import ModelNode
from streamagent.nodes.model_attempts import Attempt
from streamagent.nodes.model_client import unbind

__all__ = ["StructuredNode"]

_ATTEMPTS = 2  # the first answer and one repair


class StructuredNode:
    """Callable node (sync ``invoke`` / async ``ainvoke``) producing ``structured_response``."""

    def __init__(self, *, model_node: ModelNode, response_format: ResponseFormat) -> None:
        self.model_node = model_node
        self.format = response_format

    def _model(self, config: RunnableConfig) -> Runnable[LanguageModelInput, BaseMessage]:
        model, _ = unbind(self.model_node.runnable(config))  # the chat model, without tools
        return model

    def _account(
        self, messages: list[BaseMessage], reply: AIMessage, usage: Usage
    ) -> tuple[Usage, AIMessage]:
        if reply.usage_metadata is None:
            return usage + estimated_usage(self.model_node.counter, messages, reply, ()), reply
        return usage + Usage.from_usage_metadata(reply.usage_metadata), reply

    def _result(self, value: Any, usage: Usage, config: RunnableConfig) -> dict[str, Any]:
        cost = self.model_node.costs.cost(usage, model=self.model_node.model_for(config))
        return {"structured_response": value, "usage": usage.to_dict(), "cost_usd": cost}

    def _next(
        self, reply: AIMessage, extra: list[BaseMessage], attempt: int
    ) -> tuple[bool, Any, list[BaseMessage]]:
        """(valid, value, messages for the repair attempt) of one answer."""
        try:
            return True, self.format.validate(reply), extra
        except ValueError as exc:
            if attempt >= _ATTEMPTS:
                raise invalid(str(exc), attempts=attempt) from exc
            return False, None, [*extra, *self.format.repair_messages(reply, str(exc))]

    # ------------------------------------------------------------------ async shell
    async def ainvoke(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        node = self.model_node
        messages = node.model_input(state)
        usage = Usage()
        extra: list[BaseMessage] = []
        for attempt in range(1, _ATTEMPTS + 1):
            sent = [*messages, *extra]
            usage, reply = self._account(sent, await self._acall(sent, config), usage)
            valid, value, extra = self._next(reply, extra, attempt)
            if valid:
                return self._result(value, usage, config)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _acall(self, messages: list[BaseMessage], config: RunnableConfig) -> AIMessage:
        node = self.model_node
        attempt = Attempt(model=node.model_for(config))
        llm_config = node.client.call_config(config, nostream=True)
        try:
            async for retrying in AsyncRetrying(**node.attempts.retrying_kwargs(attempt)):
                with retrying:
                    reply = await self._model(config).ainvoke(
                        messages, llm_config, **self.format.request_kwargs()
                    )
        except Exception as exc:
            raise classify_error(exc) from exc
        return AIMessage(**reply.model_dump(exclude={"type"}))

    # ------------------------------------------------------------------ sync shell
    def invoke(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        node = self.model_node
        messages = node.model_input(state)
        usage = Usage()
        extra: list[BaseMessage] = []
        for attempt in range(1, _ATTEMPTS + 1):
            sent = [*messages, *extra]
            usage, reply = self._account(sent, self._call(sent, config), usage)
            valid, value, extra = self._next(reply, extra, attempt)
            if valid:
                return self._result(value, usage, config)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _call(self, messages: list[BaseMessage], config: RunnableConfig) -> AIMessage:
        node = self.model_node
        attempt = Attempt(model=node.model_for(config))
        llm_config = node.client.call_config(config, nostream=True)
        try:
            for retrying in Retrying(**node.attempts.retrying_kwargs(attempt)):
                with retrying:
                    reply = self._model(config).invoke(
                        messages, llm_config, **self.format.request_kwargs()
                    )
        except Exception as exc:
            raise classify_error(exc) from exc
        return AIMessage(**reply.model_dump(exclude={"type"}))
