"""Structured output: ``create_agent_graph(..., response_format=Schema)``.

After the agent's final answer, one more model call turns the conversation into ``Schema``
(as ``create_react_agent``'s ``response_format`` does); the validated value lands in
``state["structured_response"]`` and a ``structured`` stream chunk carries it.

* ``Schema`` is a pydantic model (the value is an instance), a ``TypedDict`` (a validated dict)
  or a JSON schema dict (a dict validated with ``jsonschema``).
* Strategy ``"native"`` (the default) asks for the provider's JSON-schema mode
  (``response_format={"type": "json_schema", ...}``); ``"tool"`` forces a call of one tool
  whose parameters are the schema, for servers without JSON-schema mode. Pass
  ``ResponseFormat(Schema, strategy="tool")``; LangChain's ``ToolStrategy(Schema)`` /
  ``ProviderStrategy(Schema)`` are accepted too.
* Output that does not validate gets **one** repair attempt (the model is shown its output and
  the errors); a second failure raises :class:`~streamagent.errors.StructuredOutputError`.
* The call's tokens are not streamed as text (the ``structured`` chunk carries the result); its
  usage and cost are counted with the agent's.

Example:
    >>> from pydantic import BaseModel
    >>> class Weather(BaseModel):
    ...     city: str
    ...     celsius: float
    >>> fmt = as_response_format(Weather)
    >>> fmt.strategy, fmt.schema_name, sorted(fmt.json_schema()["properties"])
    ('native', 'Weather', ['celsius', 'city'])
    >>> fmt.parse('{"city": "Oslo", "celsius": 4}')
    Weather(city='Oslo', celsius=4.0)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from jsonschema import validators
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableSequence
from pydantic import BaseModel, PydanticUserError, TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from streamagent.errors import ConfigurationError, StructuredOutputError

__all__ = [
    "ResponseFormat",
    "Strategy",
    "as_response_format",
    "is_structured_output_model",
    "structured_json",
]

Strategy = Literal["native", "tool"]


class _Invalid(ValueError):
    """The model's output does not match the schema (the text says how)."""


@dataclass(frozen=True)
class ResponseFormat:
    """What to ask the model for: ``schema`` and the ``strategy`` to get it with.

    ``name`` defaults to the schema's class name or JSON-schema ``title``; ``strict`` is sent
    with the native JSON-schema mode when set (OpenAI's strict mode needs every property
    required and ``additionalProperties: false``).
    """

    schema: Any
    strategy: Strategy = "native"
    name: str | None = None
    strict: bool | None = None

    def __post_init__(self) -> None:
        schema = self.schema
        ok = (
            (isinstance(schema, type) and issubclass(schema, BaseModel))
            or is_typeddict(schema)
            or isinstance(schema, Mapping)
        )
        if not ok:
            raise ConfigurationError(
                f"response_format must be a pydantic model, a TypedDict or a JSON schema dict, "
                f"not {schema!r}"
            )
        if self.strategy not in ("native", "tool"):
            raise ConfigurationError(
                f"response_format strategy must be 'native' or 'tool', not {self.strategy!r}"
            )
        if isinstance(schema, Mapping):
            validators.validator_for(dict(schema)).check_schema(dict(schema))
        elif is_typeddict(schema):
            try:
                TypeAdapter(schema)
            except PydanticUserError as exc:  # typing.TypedDict on Python < 3.12
                raise ConfigurationError(f"response_format {schema!r}: {exc}") from exc

    @property
    def schema_name(self) -> str:
        """The name the model sees (tool or JSON-schema name)."""
        if self.name:
            return self.name
        if isinstance(self.schema, Mapping):
            return str(self.schema.get("title") or self.schema.get("name") or "response")
        return str(getattr(self.schema, "__name__", "response"))

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema sent to the model."""
        schema = self.schema
        if isinstance(schema, Mapping):
            return dict(schema)
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_json_schema()
        return TypeAdapter(schema).json_schema()

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the model call for this strategy."""
        name = self.schema_name
        schema = self.json_schema()
        if self.strategy == "native":
            spec: dict[str, Any] = {"name": name, "schema": schema}
            if self.strict is not None:
                spec["strict"] = self.strict
            return {"response_format": {"type": "json_schema", "json_schema": spec}}
        description = str(schema.get("description") or f"Return the final {name}.")
        tool = {
            "type": "function",
            "function": {"name": name, "description": description, "parameters": schema},
        }
        return {"tools": [tool], "tool_choice": {"type": "function", "function": {"name": name}}}

    def parse(self, raw: str | Mapping[str, Any]) -> Any:
        """Validate ``raw`` (JSON text or parsed arguments); raises ``ValueError`` if invalid."""
        if isinstance(raw, str):
            try:
                data: Any = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _Invalid(f"the output is not valid JSON ({exc.msg})") from exc
        else:
            data = dict(raw)
        schema = self.schema
        if isinstance(schema, Mapping):
            cls = validators.validator_for(dict(schema))
            errors = list(cls(dict(schema)).iter_errors(data))
            if errors:
                raise _Invalid(
                    "; ".join(
                        f"{'.'.join(str(p) for p in e.absolute_path) or '(object)'}: {e.message}"
                        for e in errors[:5]
                    )
                )
            return data
        try:
            if isinstance(schema, type) and issubclass(schema, BaseModel):
                return schema.model_validate(data)
            return TypeAdapter(schema).validate_python(data)
        except ValidationError as exc:
            raise _Invalid(_describe(exc)) from exc

    def output_of(self, message: AIMessage) -> str | Mapping[str, Any]:
        """What the model answered: the JSON text (native) or the tool call's arguments."""
        if self.strategy == "tool":
            calls = [c for c in message.tool_calls if c["name"] == self.schema_name]
            if not calls:
                raise _Invalid(f"the model did not call {self.schema_name!r}")
            return calls[0]["args"]
        return message.text

    def repair_messages(self, message: AIMessage, problem: str) -> list[BaseMessage]:
        """What the repair attempt adds: the invalid output and what is wrong with it."""
        ask = (
            f"That output does not match the {self.schema_name} schema: {problem}. "
            "Answer again with only a valid object."
        )
        calls = [c for c in message.tool_calls if c["name"] == self.schema_name]
        if self.strategy == "tool" and calls:
            reply = ToolMessage(ask, tool_call_id=calls[0]["id"] or "", status="error")
            return [message, reply]
        return [AIMessage(content=message.text), HumanMessage(content=ask)]

    def validate(self, message: AIMessage) -> Any:
        """The validated value of ``message``; raises ``ValueError`` naming the problem."""
        return self.parse(self.output_of(message))


def _describe(exc: ValidationError) -> str:
    parts = []
    for item in exc.errors()[:5]:
        loc = ".".join(str(p) for p in item.get("loc", ())) or "(object)"
        parts.append(f"{loc}: {item.get('msg')}")
    return "; ".join(parts)


def as_response_format(value: Any) -> ResponseFormat:
    """``response_format=`` as given (schema, :class:`ResponseFormat`, LangChain strategy)."""
    if isinstance(value, ResponseFormat):
        return value
    kind = type(value).__name__
    if kind in ("ToolStrategy", "ProviderStrategy", "AutoStrategy") and hasattr(value, "schema"):
        strategy: Strategy = "tool" if kind == "ToolStrategy" else "native"
        strict = getattr(value, "strict", None)
        return ResponseFormat(value.schema, strategy=strategy, strict=strict)
    return ResponseFormat(value)


def is_structured_output_model(model: Any) -> bool:
    """True for ``chat_model.with_structured_output(...)`` (a chain, not a chat model)."""
    if isinstance(model, RunnableSequence):
        return is_structured_output_model(model.first) or _is_parser(model.last)
    if isinstance(model, RunnableBinding):
        kwargs = model.kwargs or {}
        return "ls_structured_output_format" in kwargs or "response_format" in kwargs
    return False


def _is_parser(step: Runnable[Any, Any]) -> bool:
    from langchain_core.output_parsers import BaseOutputParser

    return isinstance(step, BaseOutputParser) or "Parser" in type(step).__name__


def structured_json(value: Any) -> Any:
    """A structured response as JSON-ready data (pydantic models dumped)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return cast("Any", value)


def invalid(problem: str, *, attempts: int) -> StructuredOutputError:
    """The typed error after the repair attempt failed too."""
    return StructuredOutputError(
        f"the model's structured output is still invalid after one repair attempt: {problem}",
        attempts=attempts,
    )
