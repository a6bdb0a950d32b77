"""``BaseChatModel.astream`` of langchain-core 1.7, holding its chunks in :class:`CompactChunks`.

``BaseChatModel.astream`` keeps every ``ChatGenerationChunk`` of a reply in a list until the
reply ends (for ``on_llm_end`` / ``on_llm_error``). This is the same method, statement for
statement, with that list replaced by :class:`streamagent.llm.chunk_merge.CompactChunks`: the
callbacks, tracing, ids, ``chunk_position="last"`` marker and merged result are unchanged, but a
long reply keeps its text instead of thousands of chunk objects (see ``chunk_merge``).
``LeanChatOpenAI.astream`` uses it.

Derived from langchain-core's ``BaseChatModel.astream`` (MIT License, Copyright (c) LangChain,
Inc.). Its private helpers come from :mod:`streamagent._upstream.langchain_core_private`, which
also turns the fast path off when the installed ``astream`` is not one this copy was compared
with; ``tests/integration_tests/test_llm_results_identical_to_stock_chat_openai.py`` compares
it with plain ``ChatOpenAI`` over real HTTP, so a divergence after an upgrade fails the tests.
When upgrading langchain-core,
diff this file against the new ``astream``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from langchain_core.callbacks import AsyncCallbackManager
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from langchain_core.outputs.chat_generation import merge_chat_generation_chunks
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config

from streamagent._upstream import langchain_core_private as lcp
from streamagent.llm.chunk_merge import CompactChunks

__all__ = ["astream_compact"]


async def astream_compact(  # noqa: PLR0915 - a faithful copy of BaseChatModel.astream
    model: BaseChatModel,
    input: LanguageModelInput,
    config: RunnableConfig | None = None,
    *,
    stop: list[str] | None = None,
    **kwargs: Any,
) -> AsyncIterator[AIMessageChunk]:
    """``model.astream(input, config, stop=stop, **kwargs)`` with compact chunk bookkeeping.

    The caller has checked that the model streams (``_should_stream``).
    """
    config = ensure_config(config)
    messages = model._convert_input(input).to_messages()

    ls_structured_output_format = kwargs.pop("ls_structured_output_format", None) or kwargs.pop(
        "structured_output_format", None
    )
    ls_structured_output_format_dict = lcp.format_ls_structured_output(ls_structured_output_format)

    params = model._get_invocation_params(stop=stop, **kwargs)
    options = {
        "stop": stop,
        **{key: params[key] for key in kwargs if key in params},
        **ls_structured_output_format_dict,
    }
    inheritable_metadata = {
        **(config.get("metadata") or {}),
        **model._get_ls_params_with_defaults(stop=stop, **kwargs),
    }
    callback_manager = AsyncCallbackManager.configure(
        config.get("callbacks"),
        model.callbacks,
        model.verbose,
        config.get("tags"),
        model.tags,
        inheritable_metadata,
        model.metadata,
        langsmith_inheritable_metadata=lcp.filter_invocation_params_for_tracing(params),
    )
    (run_manager,) = await callback_manager.on_chat_model_start(
        model._serialized,
        [lcp.format_for_tracing(messages)],
        invocation_params=params,
        options=options,
        name=config.get("run_name"),
        run_id=config.pop("run_id", None),
        batch_size=1,
    )

    if model.rate_limiter:
        await model.rate_limiter.aacquire(blocking=True)

    chunks = CompactChunks()

    try:
        input_messages = lcp.normalize_messages(messages)
        run_id = "-".join((lcp.LC_ID_PREFIX, str(run_manager.run_id)))
        yielded = False
        index = -1
        index_type = ""
        chunk: ChatGenerationChunk | None = None
        async for chunk in model._astream(input_messages, stop=stop, **kwargs):
            if chunk.message.id is None:
                chunk.message.id = run_id
            chunk.message.response_metadata = lcp.gen_info_and_msg_metadata(chunk)
            if model.output_version == "v1":
                # Overwrite .content with .content_blocks
                chunk.message = lcp.update_message_content_to_blocks(chunk.message, "v1")
                for block in cast("list[dict[str, Any]]", chunk.message.content):
                    if block["type"] != index_type:
                        index_type = block["type"]
                        index += 1
                    if "index" not in block:
                        block["index"] = index
            await run_manager.on_llm_new_token(cast("str", chunk.message.content), chunk=chunk)
            chunks.append(chunk)
            yield cast("AIMessageChunk", chunk.message)
            yielded = True

        # Yield a final empty chunk with chunk_position="last" if not yet yielded
        if (
            yielded
            and chunk is not None
            and isinstance(chunk.message, AIMessageChunk)
            and not chunk.message.chunk_position
        ):
            empty_content: str | list[str | dict[str, Any]] = (
                "" if isinstance(chunk.message.content, str) else []
            )
            msg_chunk = AIMessageChunk(content=empty_content, chunk_position="last", id=run_id)
            await run_manager.on_llm_new_token("", chunk=ChatGenerationChunk(message=msg_chunk))
            yield msg_chunk
    except BaseException as e:
        generations_with_error_metadata: list[Any] = lcp.generate_response_from_error(e)
        chat_generation_chunk = merge_chat_generation_chunks(chunks.chunks())
        generations: list[list[Any]]
        if chat_generation_chunk:
            generations = [[chat_generation_chunk], generations_with_error_metadata]
        else:
            generations = [generations_with_error_metadata]
        await run_manager.on_llm_error(e, response=LLMResult(generations=generations))
        raise

    generation = merge_chat_generation_chunks(chunks.chunks())
    if not generation:
        err = ValueError("No generation chunks were returned")
        await run_manager.on_llm_error(err, response=LLMResult(generations=[]))
        raise err

    await run_manager.on_llm_end(LLMResult(generations=[[generation]]))
