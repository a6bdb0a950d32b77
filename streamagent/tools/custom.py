"""Custom tools: turn what users have into LangChain tools with :func:`as_tool`.

Accepted forms:

* a :class:`~langchain_core.tools.BaseTool` (including ``@tool``-decorated functions): as is;
* a plain function, sync or ``async def``: :meth:`StructuredTool.from_function` (name, description
  and schema come from its signature and docstring);
* the TypeScript service's dict form::

      {"type": "function",
       "function": {"name": "...", "description": "...", "parameters": {<JSON schema>}},
       "handler": fn}

  ``handler`` may be sync or async (a sync ``invoke`` of an async handler runs it with
  ``asyncio.run`` when no event loop runs in the calling thread). The arguments are
  validated against ``parameters`` with
  ``jsonschema`` *before* the handler runs; invalid arguments raise
  :class:`~langchain_core.tools.ToolException` naming each problem. The handler is called with
  the arguments as keyword arguments — unless its signature has exactly one parameter and that
  name is not a property of the schema (``def handler(args): ...``, the TypeScript style), in
  which case it gets the arguments as one dict. A ``str`` result is returned as is; anything else
  is serialised as JSON.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import ConfigDict

from streamagent.errors import ConfigurationError
from streamagent.tools.injection import injected_parameters

__all__ = ["DictFunctionTool", "ToolLike", "as_tool"]

#: What :func:`as_tool` (and ``build_agent(tools=...)``) accepts: a LangChain tool, a (decorated)
#: function, or the TypeScript service's dict form.
ToolLike = BaseTool | Callable[..., Any] | Mapping[str, Any]

_MAX_REPORTED_ERRORS = 5


def _result_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


class DictFunctionTool(BaseTool):
    """A tool defined by a JSON schema and a handler (the TypeScript service's dict form)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    args_schema: dict[str, Any]  # type: ignore[assignment]
    handler: Callable[..., Any]
    pass_dict: bool = False
    handle_tool_error: bool = False
    #: the handler's parameters the tool router injects (InjectedState, ToolRuntime, …): not
    #: in ``parameters``, never validated against it
    injected: frozenset[str] = frozenset()

    def _validate(self, arguments: dict[str, Any]) -> None:
        cls = validators.validator_for(self.args_schema)
        errors = sorted(cls(self.args_schema).iter_errors(arguments), key=lambda e: list(e.path))
        if errors:
            parts = []
            for err in errors[:_MAX_REPORTED_ERRORS]:
                where = ".".join(str(p) for p in err.absolute_path) or "(arguments)"
                parts.append(f"{where}: {err.message}")
            raise ToolException(
                f"invalid arguments for tool {self.name!r}: {'; '.join(parts)}; fix them and "
                "call the tool again"
            )

    def _call_handler(self, arguments: dict[str, Any]) -> Any:
        extra = {k: arguments.pop(k) for k in self.injected if k in arguments}
        self._validate(arguments)
        if self.pass_dict:
            return self.handler(arguments, **extra)
        return self.handler(**arguments, **extra)

    def _run(self, **kwargs: Any) -> str:
        if inspect.iscoroutinefunction(self.handler):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self._arun(**kwargs))
            raise ToolException(
                f"tool {self.name!r} has an async handler; inside an event loop call it with "
                "ainvoke"
            )
        result = self._call_handler(kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        return _result_text(result)

    async def _arun(self, **kwargs: Any) -> str:
        if inspect.iscoroutinefunction(self.handler):
            result = self._call_handler(kwargs)
            return _result_text(await result)
        result = await asyncio.to_thread(self._call_handler, kwargs)
        if inspect.isawaitable(result):
            result = await result
        return _result_text(result)


async def _await(value: Any) -> Any:
    return await value


def _wants_dict(
    handler: Callable[..., Any], schema: Mapping[str, Any], injected: frozenset[str] = frozenset()
) -> bool:
    try:
        params = [
            p for p in inspect.signature(handler).parameters.values() if p.name not in injected
        ]
    except (TypeError, ValueError):
        return False
    if len(params) != 1 or params[0].kind in {params[0].VAR_KEYWORD, params[0].VAR_POSITIONAL}:
        return False
    return params[0].name not in (schema.get("properties") or {})


def _from_dict(spec: Mapping[str, Any]) -> BaseTool:
    function = spec.get("function")
    handler = spec.get("handler")
    if spec.get("type", "function") != "function" or not isinstance(function, Mapping):
        raise ConfigurationError(
            "a dict tool must look like {'type': 'function', 'function': {'name', "
            "'description', 'parameters'}, 'handler': fn}"
        )
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError("a dict tool needs function.name (a non-empty string)")
    if not callable(handler):
        raise ConfigurationError(f"dict tool {name!r} needs a callable 'handler'")
    schema = dict(function.get("parameters") or {"type": "object", "properties": {}})
    try:
        validators.validator_for(schema).check_schema(schema)
    except jsonschema_exceptions.SchemaError as exc:
        raise ConfigurationError(
            f"dict tool {name!r} has an invalid JSON schema: {exc.message}"
        ) from None

    injected = injected_parameters(handler)
    return DictFunctionTool(
        name=name,
        description=str(function.get("description") or name),
        args_schema=schema,
        handler=handler,
        pass_dict=_wants_dict(handler, schema, injected),
        injected=injected,
    )


def as_tool(obj: ToolLike) -> BaseTool:
    """Return a LangChain tool for a tool, a function (sync or async) or the dict form.

    Example:
        >>> from streamagent.tools import as_tool
        >>> spec = {
        ...     "type": "function",
        ...     "function": {
        ...         "name": "add",
        ...         "description": "Add two integers.",
        ...         "parameters": {
        ...             "type": "object",
        ...             "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        ...             "required": ["a", "b"],
        ...         },
        ...     },
        ...     "handler": lambda a, b: a + b,
        ... }
        >>> as_tool(spec).invoke({"a": 2, "b": 3})
        '5'
    """
    if isinstance(obj, BaseTool):
        return obj
    if isinstance(obj, Mapping):
        return _from_dict(obj)
    if callable(obj):
        description = inspect.getdoc(obj) or getattr(obj, "__name__", "tool")
        if inspect.iscoroutinefunction(obj):
            return StructuredTool.from_function(coroutine=obj, description=description)
        return StructuredTool.from_function(func=obj, description=description)
    raise ConfigurationError(
        f"cannot make a tool from {type(obj).__name__}: pass a BaseTool, a function or the "
        "{'type': 'function', 'function': {...}, 'handler': fn} dict form"
    )
