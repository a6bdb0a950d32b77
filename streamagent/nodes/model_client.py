"""Which chat model a run of the model node calls, and the config and arguments it calls it with.

A node given a model (``llm=``) always calls that one, the agent's tools bound once. Without
one, ChatOpenAI is built from :class:`~streamagent.config.ModelConfig` on first use, once per
set of per-run overrides: a run's ``configurable`` may override ``model``, ``base_url``,
``temperature`` and ``max_tokens`` (LangGraph Server / Studio assistants use this).

A call goes to the chat model itself, not through ``RunnableBinding`` (:func:`unbind`: two
config merges per call saved), with a shallow copy of the run's config carrying the agent's
tags and metadata (:meth:`ModelClient.call_config`).

Example:
    >>> from streamagent.config import ModelConfig
    >>> client = ModelClient(llm=None, tools=[], settings=ModelConfig(api_key="sk-test"),
    ...                      name="agent")
    >>> client.model_for(None), client.model_for({"configurable": {"model": "gpt-4o-mini"}})
    ('gpt-4o', 'gpt-4o-mini')
    >>> client.runnable(None) is client.runnable({"configurable": {}})  # built once, cached
    True
    >>> client.output_limit(None), client.output_limit({"configurable": {"max_tokens": 64}})
    (4096, 64)
    >>> client.call_config({"tags": ["mine"]})["tags"]
    ['mine', 'streamagent:agent']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.constants import TAG_NOSTREAM

from streamagent._upstream import langgraph_private
from streamagent.accounting.usage import UsageTracker, without_handlers
from streamagent.config import ModelConfig
from streamagent.llm import create_chat_model
from streamagent.streaming.protocol import AGENT_METADATA_KEY

__all__ = ["OVERRIDABLE", "ChatRunnable", "ModelClient", "unbind", "without_messages_mode"]

#: the ``configurable`` keys a run may override when the node builds its own model
OVERRIDABLE = ("model", "base_url", "temperature", "max_tokens")

ChatRunnable = Runnable[LanguageModelInput, BaseMessage]


def unbind(runnable: ChatRunnable) -> tuple[ChatRunnable, Mapping[str, Any]]:
    """``llm.bind_tools(...)`` as (llm, its bound kwargs): the same call without
    ``RunnableBinding``'s two config merges per call (a binding with its own config is kept)."""
    if (
        isinstance(runnable, RunnableBinding)
        and type(runnable).astream is RunnableBinding.astream  # not a binding with its own logic
        and type(runnable).stream is RunnableBinding.stream
        and not runnable.config
        and not runnable.config_factories
    ):
        return runnable.bound, runnable.kwargs
    return runnable, {}


def without_messages_mode(callbacks: Any) -> Any:
    """The model call's callbacks without LangGraph's ``messages``-mode handler.

    With the ``nostream`` tag that handler already ignores the call, but LangChain still awaits
    it for every token (an event dispatch per chunk, ~10 % of a paced token's CPU); user
    callbacks and tracers stay.
    """
    return without_handlers(callbacks, langgraph_private.StreamMessagesHandler)


class ModelClient:
    """The chat model of the agent called ``name``: fixed (``llm``) or built from ``settings``.

    Constructing one does no I/O: a model built from ``settings`` is created on first use.
    """

    def __init__(
        self,
        *,
        llm: BaseChatModel | None,
        tools: Sequence[BaseTool],
        settings: ModelConfig,
        name: str,
    ) -> None:
        self.settings = settings
        self.tools = list(tools)
        self.fixed: ChatRunnable | None = None if llm is None else self._bind(llm)
        self._lazy: dict[tuple[tuple[str, Any], ...], ChatRunnable] = {}
        self._tags = [f"streamagent:{name}"]
        self._metadata = {AGENT_METADATA_KEY: name}

    def _bind(self, llm: BaseChatModel) -> ChatRunnable:
        return llm.bind_tools(self.tools) if self.tools else llm

    def runnable(self, config: RunnableConfig | None) -> ChatRunnable:
        """The chat model to call (tools bound): the one given, or ChatOpenAI built from the
        settings with the run's ``configurable`` overrides (one per set of overrides)."""
        if self.fixed is not None:
            return self.fixed
        configurable = (config or {}).get("configurable") or {}
        overrides = tuple(sorted((k, configurable[k]) for k in OVERRIDABLE if k in configurable))
        runnable = self._lazy.get(overrides)
        if runnable is None:
            runnable = self._bind(create_chat_model(replace(self.settings, **dict(overrides))))
            self._lazy[overrides] = runnable
        return runnable

    def model_for(self, config: RunnableConfig | None) -> str:
        """The model name a run calls (for pricing and reports)."""
        configurable = (config or {}).get("configurable") or {}
        if self.fixed is None and isinstance(configurable.get("model"), str):
            return str(configurable["model"])
        return self.settings.model

    def output_limit(self, config: RunnableConfig | None) -> Any:
        """The call's own output limit: the given model's ``max_tokens``, else a run's
        ``max_tokens`` override, else the configured one (not checked: may be any value)."""
        if self.fixed is not None:
            bound, _ = unbind(self.fixed)
            return getattr(bound, "max_tokens", None)
        configurable = (config or {}).get("configurable") or {}
        return configurable.get("max_tokens", self.settings.max_tokens)

    def call_config(
        self, config: RunnableConfig | None, *, nostream: bool = False
    ) -> RunnableConfig:
        """The node's config plus the agent's tags and metadata for the model run.

        A shallow copy, not ``merge_configs`` (which re-ensures and copies every part, callback
        manager included, ~0.2 ms per call): the model only reads this config. ``nostream``
        adds LangGraph's ``nostream`` tag: the node hands the tokens to a sink itself.
        """
        llm_config = cast("dict[str, Any]", dict(config or {}))
        tags = llm_config.get("tags") or []
        own = [*self._tags, TAG_NOSTREAM] if nostream else self._tags
        llm_config["tags"] = [*tags, *(t for t in own if t not in tags)]
        # astream_chunks' tracker of *other* models' usage is not on this call's token path, nor
        # (with nostream) LangGraph's messages-mode handler: one copy of the manager drops both
        messages_mode = langgraph_private.StreamMessagesHandler if nostream else None
        llm_config["callbacks"] = without_handlers(
            llm_config.get("callbacks"), UsageTracker, messages_mode
        )
        llm_config["metadata"] = {**(llm_config.get("metadata") or {}), **self._metadata}
        return cast("RunnableConfig", llm_config)

    def prepared(
        self,
        config: RunnableConfig,
        runnable: ChatRunnable | None = None,
        *,
        nostream: bool = False,
        max_output_tokens: int | None = None,
    ) -> tuple[ChatRunnable, RunnableConfig, Mapping[str, Any]]:
        """One call's (chat model, config, keyword arguments): ``runnable`` (default: the
        run's model) unbound, :meth:`call_config`, and the output cap when there is one."""
        model, bound = unbind(runnable or self.runnable(config))
        llm_config = self.call_config(config, nostream=nostream)
        kwargs = bound if max_output_tokens is None else {**bound, "max_tokens": max_output_tokens}
        return model, llm_config, kwargs
