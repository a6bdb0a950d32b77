"""The tool router: run every tool call of the last AI message, in parallel, safely.

Guarantees: every tool_call id of the AI message gets exactly one ToolMessage. Unknown tool,
invalid arguments (including JSON the model broke), a tool's exception and a timeout each
become a ``status="error"`` ToolMessage the model can read. Calls that need human approval
pause the graph with ``interrupt()`` *before* anything runs; resume with
``Command(resume=decision)`` where ``decision`` is one of:

* ``"approve"`` / ``True`` — run all pending calls; ``"reject"`` / ``False`` — run none;
* ``{"action": "approve" | "reject", "reason": str}`` — the same, with a reason for the model;
* ``{call_id: "approve" | "reject" | {"action": "edit", "args": {...}} | {"action": "reject",
  "reason": ...}}`` — per call (missing ids are rejected).

The router is written from scratch rather than on ``langgraph.prebuilt.ToolNode`` because it
needs per-call timeouts, approval before execution and the one-message-per-id guarantee for
invalid tool calls, none of which ToolNode offers together. It keeps ToolNode's dialect,
though: ``InjectedState``, ``InjectedStore``, ``InjectedToolCallId`` and ``ToolRuntime``
parameters are filled in (:mod:`streamagent.tools.injection`) and a tool may return a
``Command`` (:mod:`streamagent.nodes._commands`), combined as ToolNode combines them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from langgraph.errors import GraphBubbleUp
from langgraph.types import interrupt
from pydantic import ValidationError

from streamagent.config import AgentConfig
from streamagent.errors import InvalidInputError
from streamagent.nodes._commands import (
    ToolOutput,
    ToolResultError,
    combine,
    has_command,
    is_command_result,
    normalize_result,
)
from streamagent.nodes._progress import answering_message, result_event
from streamagent.observability.observer import AgentObserver, NullObserver
from streamagent.tools.approval import APPROVAL_METADATA_KEY
from streamagent.tools.injection import current_runtime, inject, injection_plan, tool_runtime

__all__ = ["APPROVAL_INTERRUPT_TYPE", "ApprovalDecision", "ToolRouter"]

logger = logging.getLogger(__name__)

APPROVAL_INTERRUPT_TYPE = "tool_approval"


@dataclass(frozen=True)
class ApprovalDecision:
    """What a human decided for one pending call."""

    approved: bool
    args: dict[str, Any] | None = None
    reason: str | None = None


def _error(call_id: str, name: str, text: str) -> ToolMessage:
    return ToolMessage(content=text, tool_call_id=call_id, name=name, status="error")


def _format_validation(err: ValidationError, hidden: frozenset[str] = frozenset()) -> str:
    parts = []
    for item in err.errors():
        if item.get("loc") and item["loc"][0] in hidden:
            continue  # an injected argument: the model cannot fix it (as ToolNode filters)
        loc = ".".join(str(p) for p in item.get("loc", ())) or "(arguments)"
        parts.append(f"{loc}: {item.get('msg')}")
    return "; ".join(parts)


class ToolRouter:
    """Callable node (sync ``invoke`` / async ``ainvoke``) that executes tool calls."""

    def __init__(
        self,
        *,
        tools: Sequence[BaseTool],
        config: AgentConfig,
        name: str,
        observer: AgentObserver | None = None,
    ) -> None:
        self.tools = {t.name: t for t in tools}
        # what each tool gets injected (InjectedState, InjectedStore, ToolRuntime, call id)
        self.injections = {t.name: injection_plan(t) for t in tools}
        self.config = config
        self.name = name
        self.observer: AgentObserver = observer or NullObserver()

    # ------------------------------------------------------------------ pure parts
    @staticmethod
    def pending(state: Mapping[str, Any]) -> tuple[AIMessage | None, list[ToolMessage]]:
        """The last AI message with tool calls and ToolMessages already answering it."""
        messages: list[BaseMessage] = list(state.get("messages") or [])
        answered: list[ToolMessage] = []
        for message in reversed(messages):
            if isinstance(message, ToolMessage):
                answered.append(message)
                continue
            if isinstance(message, AIMessage):
                return message, answered
            break
        return None, answered

    def needs_approval(self, call: ToolCall) -> bool:
        name = call["name"]
        operation = call["args"].get("operation") if isinstance(call.get("args"), dict) else None
        rules = self.config.require_approval
        if name in rules or (operation is not None and f"{name}:{operation}" in rules):
            return True
        tool = self.tools.get(name)
        flag = (tool.metadata or {}).get(APPROVAL_METADATA_KEY) if tool is not None else None
        if flag is True:
            return True
        return bool(isinstance(flag, frozenset | set) and operation in flag)

    @staticmethod
    def parse_decisions(value: Any, calls: Sequence[ToolCall]) -> dict[str, ApprovalDecision]:
        """Turn a resume value into one decision per pending call id."""
        ids = [c["id"] or "" for c in calls]
        if value is True or value == "approve":
            return {i: ApprovalDecision(approved=True) for i in ids}
        if value is False or value == "reject" or value is None:
            return {i: ApprovalDecision(approved=False) for i in ids}
        if isinstance(value, Mapping) and "action" in value:
            single = ToolRouter._one_decision(value)
            return {i: single for i in ids}
        if isinstance(value, Mapping):
            return {i: ToolRouter._one_decision(value.get(i, "reject")) for i in ids}
        raise InvalidInputError(
            "approval resume value must be 'approve', 'reject', True/False, "
            "{'action': ...} or a mapping of tool_call id to a decision"
        )

    @staticmethod
    def _one_decision(value: Any) -> ApprovalDecision:
        if value is True or value == "approve":
            return ApprovalDecision(approved=True)
        if value is False or value == "reject" or value is None:
            return ApprovalDecision(approved=False)
        if isinstance(value, Mapping):
            action = value.get("action")
            reason = value.get("reason")
            if action == "approve":
                return ApprovalDecision(approved=True, reason=reason)
            if action == "edit" and isinstance(value.get("args"), Mapping):
                return ApprovalDecision(approved=True, args=dict(value["args"]), reason=reason)
            if action == "reject":
                return ApprovalDecision(approved=False, reason=reason)
        raise InvalidInputError(f"unknown approval decision: {value!r}")

    def plan(
        self, ai: AIMessage, answered: Sequence[ToolMessage]
    ) -> tuple[list[ToolCall], dict[str, ToolOutput], list[str]]:
        """Split calls into runnable ones and immediate error results; keep the call order.

        Each id runs at most once: a later call repeating an id already planned or answered
        is skipped (the model node gives every call of its own messages a unique id, so only
        a forged or foreign message can repeat one; one id can only hold one answer).
        """
        done = {m.tool_call_id for m in answered}
        order: list[str] = []
        results: dict[str, ToolOutput] = {}
        runnable: list[ToolCall] = []
        for bad in ai.invalid_tool_calls:
            call_id = bad.get("id") or ""
            if call_id in done:
                continue
            done.add(call_id)
            order.append(call_id)
            results[call_id] = _error(
                call_id,
                bad.get("name") or "unknown",
                f"the arguments of tool {bad.get('name')!r} are not valid JSON "
                f"({bad.get('error') or 'parse error'}); send the call again with a JSON object",
            )
        for call in ai.tool_calls:
            call_id = call["id"] or ""
            if call_id in done:
                if call_id in order:
                    logger.warning("tool call id %r repeated in one message: ran once", call_id)
                continue
            done.add(call_id)
            order.append(call_id)
            if call["name"] not in self.tools:
                known = ", ".join(sorted(self.tools)) or "none"
                results[call_id] = _error(
                    call_id,
                    call["name"],
                    f"unknown tool {call['name']!r}; available tools: {known}",
                )
            else:
                runnable.append(call)
        return runnable, results, order

    def approve(self, calls: list[ToolCall]) -> tuple[list[ToolCall], dict[str, ToolMessage]]:
        """Ask a human (``interrupt``) about calls that need approval; returns what may run."""
        gated = [c for c in calls if self.needs_approval(c)]
        if not gated:
            return calls, {}
        request = {
            "type": APPROVAL_INTERRUPT_TYPE,
            "agent": self.name,
            "calls": [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in gated],
        }
        decisions = self.parse_decisions(interrupt(request), gated)
        rejected: dict[str, ToolMessage] = {}
        allowed: list[ToolCall] = []
        for call in calls:
            decision = decisions.get(call["id"] or "")
            if decision is None:
                allowed.append(call)
            elif decision.approved:
                allowed.append(
                    {**call, "args": decision.args} if decision.args is not None else call
                )
            else:
                why = f": {decision.reason}" if decision.reason else ""
                rejected[call["id"] or ""] = _error(
                    call["id"] or "",
                    call["name"],
                    f"a human rejected this call to {call['name']!r}{why}",
                )
        return allowed, rejected

    def _outcome(self, call: ToolCall, result: Any, started: float) -> ToolOutput:
        """Normalise a tool's result or exception into its ToolMessage or Command (pure)."""
        call_id, name = call["id"] or "", call["name"]
        if isinstance(result, GraphBubbleUp):
            raise result
        if is_command_result(result):
            try:
                command = normalize_result(result, call)
            except ToolResultError as exc:
                logger.warning("tool %s returned an invalid Command: %s", name, exc)
                result = exc
            else:
                self.observer.on_tool_call(
                    tool=name, status="success", duration_seconds=time.perf_counter() - started
                )
                return command
        if isinstance(result, ToolMessage):
            message = result
        elif isinstance(result, TimeoutError):
            message = _error(
                call_id,
                name,
                f"tool {name!r} timed out after {self.config.tool_timeout_seconds:g}s; "
                "try a smaller task or a shorter command",
            )
        elif isinstance(result, ValidationError):
            hidden = self.injections[name].keys if name in self.injections else frozenset()
            message = _error(
                call_id,
                name,
                f"invalid arguments for tool {name!r}: {_format_validation(result, hidden)}",
            )
        elif isinstance(result, ToolResultError):
            message = _error(call_id, name, f"tool {name!r} returned an invalid result: {result}")
        elif isinstance(result, ToolException):
            reason = str(result).removeprefix("refused: ")
            message = _error(call_id, name, f"tool {name!r} refused: {reason}")
        elif isinstance(result, BaseException):
            logger.error("tool %s raised", name, exc_info=result)
            message = _error(
                call_id, name, f"tool {name!r} failed with {type(result).__name__}: {result}"
            )
        else:
            message = ToolMessage(content=str(result), tool_call_id=call_id, name=name)
        if message.name is None:
            message.name = name
        self.observer.on_tool_call(
            tool=name, status=message.status, duration_seconds=time.perf_counter() - started
        )
        return message

    @staticmethod
    def _update(order: list[str], results: Mapping[str, ToolOutput]) -> Any:
        """The node's output in the calls' order: ``{"messages": [...]}``, or — when a tool
        returned a ``Command`` — the list of updates and Commands ``ToolNode`` returns."""
        outputs = [results[i] for i in order if i in results]
        if has_command(outputs):
            return combine(outputs)
        return {"messages": outputs}

    def _injected(
        self, calls: Sequence[ToolCall], state: Mapping[str, Any], config: RunnableConfig
    ) -> list[ToolCall]:
        """Each call as the tool is invoked with it: injected arguments filled in."""
        runtime = current_runtime()
        tools = list(self.tools.values())
        out: list[ToolCall] = []
        for call in calls:
            plan = self.injections[call["name"]]
            ready = call
            if plan:
                view = tool_runtime(
                    state=state, call=call, config=config, runtime=runtime, tools=tools
                )
                ready = inject(call, plan, view)
            out.append({**ready, "type": "tool_call"})
        return out

    def _prepare(
        self, state: Mapping[str, Any]
    ) -> tuple[list[ToolCall], dict[str, ToolOutput], list[str]]:
        ai, answered = self.pending(state)
        if ai is None:
            return [], {}, []
        runnable, results, order = self.plan(ai, answered)
        allowed, rejected = self.approve(runnable)  # may pause here (interrupt): count after
        results.update(rejected)
        for message in results.values():  # answered without running: counted all the same
            if isinstance(message, ToolMessage):
                self.observer.on_tool_call(
                    tool=str(message.name), status=message.status, duration_seconds=0.0
                )
        return allowed, results, order

    def _report(self, output: ToolOutput, call: ToolCall) -> ToolOutput:
        """Stream a finished call's result at once (``custom`` event); returns ``output``."""
        runtime = current_runtime()
        message = answering_message(output, call["id"] or "")
        if runtime is not None and message is not None:
            runtime.stream_writer(result_event(self.name, message))
        return output

    # ------------------------------------------------------------------ async shell
    async def ainvoke(self, state: dict[str, Any], config: RunnableConfig) -> Any:
        allowed, results, order = self._prepare(state)
        calls = self._injected(allowed, state, config)
        limit = asyncio.Semaphore(self.config.max_parallel_tools)
        if len(calls) == 1:  # the common case: no task for gather to schedule
            outcomes = [await self._arun_one(calls[0], state, config, limit)]
        else:
            outcomes = await asyncio.gather(
                *(self._arun_one(c, state, config, limit) for c in calls)
            )
        for call, message in zip(allowed, outcomes, strict=True):
            results[call["id"] or ""] = message
        return self._update(order, results)

    async def acall_tool(
        self, tool: BaseTool, call: ToolCall, state: Mapping[str, Any], config: RunnableConfig
    ) -> Any:
        """Run one (validated, injected) call; raises what the tool raises. Middleware's
        ``wrap_tool_call`` replaces this (:mod:`streamagent.middleware`)."""
        return await tool.ainvoke(call, config)

    def call_tool(
        self, tool: BaseTool, call: ToolCall, state: Mapping[str, Any], config: RunnableConfig
    ) -> Any:
        """Synchronous twin of :meth:`acall_tool`."""
        return tool.invoke(call, config)

    async def _arun_one(
        self,
        call: ToolCall,
        state: Mapping[str, Any],
        config: RunnableConfig,
        limit: asyncio.Semaphore,
    ) -> ToolOutput:
        async with limit:
            started = time.perf_counter()
            tool = self.tools[call["name"]]
            try:
                async with asyncio.timeout(self.config.tool_timeout_seconds):
                    result: Any = await self.acall_tool(tool, call, state, config)
            except GraphBubbleUp:
                raise
            except Exception as exc:  # noqa: BLE001 - any tool failure becomes an error ToolMessage
                result = exc
            return self._report(self._outcome(call, result, started), call)

    # ------------------------------------------------------------------ sync shell
    def invoke(self, state: dict[str, Any], config: RunnableConfig) -> Any:
        allowed, results, order = self._prepare(state)
        calls = self._injected(allowed, state, config)
        if calls:
            pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=min(len(calls), self.config.max_parallel_tools),
                thread_name_prefix="streamagent-tool",
            )
            try:
                self._run_in(pool, calls, state, config, results)
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
        return self._update(order, results)

    def _run_in(
        self,
        pool: concurrent.futures.ThreadPoolExecutor,
        calls: list[ToolCall],
        state: Mapping[str, Any],
        config: RunnableConfig,
        results: dict[str, ToolOutput],
    ) -> None:
        """Run ``calls`` in ``pool``; each result is recorded (and streamed) as it finishes."""
        started = time.perf_counter()
        pending = {
            pool.submit(self.call_tool, self.tools[c["name"]], c, state, config): c for c in calls
        }
        try:
            for future in concurrent.futures.as_completed(
                pending, timeout=self.config.tool_timeout_seconds
            ):
                call = pending[future]
                try:
                    result: Any = future.result()
                except GraphBubbleUp:
                    raise
                except Exception as exc:  # noqa: BLE001 - any tool failure becomes an error ToolMessage
                    result = exc
                results[call["id"] or ""] = self._report(self._outcome(call, result, started), call)
        except concurrent.futures.TimeoutError:
            for call in pending.values():
                if (call["id"] or "") not in results:
                    outcome = self._outcome(call, TimeoutError(), started)
                    results[call["id"] or ""] = self._report(outcome, call)
