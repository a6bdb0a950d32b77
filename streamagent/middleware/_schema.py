"""The agent's state with every middleware's ``state_schema`` merged in (as ``create_agent``).

Schemas merge in order, a later one winning a key both declare: the middleware's first (in
registration order), streamagent's state last, so ``messages``, ``usage`` and the other keys of
:class:`~streamagent.state.AgentState` keep their reducers. Keys a middleware marks with
``OmitFromSchema`` (e.g. ``PrivateStateAttr``) stay out of the input / output schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, NotRequired, Required, TypedDict, cast, get_args, get_origin
from typing import get_type_hints as _hints

__all__ = ["merged_schemas"]


def _metadata(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) in (Required, NotRequired):
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Annotated:
        return tuple(get_args(annotation)[1:])
    return ()


def _omitted(annotation: Any, flag: str) -> bool:
    from langchain.agents.middleware.types import OmitFromSchema

    return any(
        isinstance(meta, OmitFromSchema) and getattr(meta, flag) is True
        for meta in _metadata(annotation)
    )


def merged_schemas(schemas: Sequence[type]) -> tuple[type, type, type]:
    """``(state, input, output)`` TypedDicts merged from ``schemas`` (later ones win)."""
    fields: dict[str, Any] = {}
    for schema in schemas:
        for key, annotation in _hints(schema, include_extras=True).items():
            fields.pop(key, None)
            fields[key] = annotation
    state = TypedDict("AgentMiddlewareState", fields)  # type: ignore[misc,operator]
    inputs = {k: v for k, v in fields.items() if not _omitted(v, "input")}
    outputs = {k: v for k, v in fields.items() if not _omitted(v, "output")}
    return (
        cast("type", state),
        cast("type", TypedDict("AgentMiddlewareInput", inputs)),  # type: ignore[misc,operator]
        cast("type", TypedDict("AgentMiddlewareOutput", outputs)),  # type: ignore[misc,operator]
    )
