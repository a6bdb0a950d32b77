"""Pure pruning maths: fit a conversation into a token and message budget.

No I/O; used by the graph's prune node and by the Redis conversation manager.
:func:`prune_messages` applies these rules, in this order:

1. **Invalid tool messages are dropped** (always, even without a budget, because the OpenAI
   API rejects them): a ``ToolMessage`` that does not answer a tool call of the AI message
   directly before its run of tool messages (an orphan, or a duplicate answer), and an AI
   message with tool calls whose tool messages are not all present — together with the tool
   messages it has. Exception: such an incomplete AI message at the very end of the input is a
   call in flight and is kept with what it has.
2. **Units.** An AI message with tool calls and all its ``ToolMessage``\\ s form one unit that is
   kept or dropped as a whole; every other message is a unit of its own. A **turn** is a
   ``HumanMessage`` and the units after it up to the next one.
3. **Must keep:** every ``SystemMessage``, and the latest user turn (the last ``HumanMessage``
   and everything after it; without any ``HumanMessage``: the last unit).
4. **Shrink first:** a ``ToolMessage`` counting more than ``max_tool_output_tokens`` is replaced
   by a copy (same id) whose text keeps its head and tail with a
   ``[... N tokens omitted ...]`` marker, before any whole unit is dropped. Only text content
   (a string, or a list of text parts) is shrunk.
5. **Drop oldest first** while the kept messages exceed ``max_tokens`` (sum of
   ``count_tokens``) or ``max_messages`` (system messages included): older turns are kept
   newest-first while they fit whole; in the first turn that does not fit, its
   ``HumanMessage`` is kept if it fits, then its newest units that fit; that turn and
   everything older are otherwise dropped. So the kept list never starts (after system
   messages) with an AI or tool message when a human message could have been kept instead.
   AI or tool messages before the first ``HumanMessage`` (a greeting) are kept only when all
   turns after them are kept too.
6. If the must-keep messages alone exceed ``max_tokens``, :class:`ContextTooLongError` is
   raised with the counts and the budget. If they exceed ``max_messages``, they are kept anyway
   (the message limit never removes the latest turn).

``max_tokens=None`` and ``max_messages=None`` disable rule 5. Input messages are never
mutated; messages without ids get none (identity is used for bookkeeping); shrunk copies keep
the original id. The work is O(n) plus one ``count_tokens`` call per message (and two more per
shrunk message).

Example:
    >>> from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
    >>> history = [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello!"),
    ...            HumanMessage("Tell me a long story")]
    >>> result = prune_messages(history, max_tokens=25, count_tokens=lambda m: 10)
    >>> [m.content for m in result.messages], result.tokens_before, result.tokens_after
    (['Be brief.', 'Tell me a long story'], 40, 20)
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from streamagent.errors import ContextTooLongError

__all__ = ["PruneResult", "prune_messages", "shrink_text"]

logger = logging.getLogger(__name__)

_MARKER = "[... {n} tokens omitted ...]"
_SHRINK_CACHE_SIZE = 512
_shrink_cache: OrderedDict[tuple[str, int, bytes], str | None] = OrderedDict()
_shrink_cache_lock = threading.Lock()


@dataclass(frozen=True)
class PruneResult:
    """Outcome of :func:`prune_messages`.

    ``messages``: kept, in original order, oversized ``ToolMessage``\\ s replaced by shrunk copies
    (same id). ``removed``: whole messages dropped (the original objects). ``shrunk_ids``: ids of
    the shrunk tool messages that have an id. Token totals are sums of ``count_tokens``.
    """

    messages: list[BaseMessage]
    removed: list[BaseMessage]
    shrunk_ids: list[str]
    tokens_before: int
    tokens_after: int


# --------------------------------------------------------------------------- shrink_text
def _decode(encoding: Any, tokens: Sequence[int]) -> str:
    # Cutting a token sequence can split a UTF-8 character: drop the partial bytes at the edges.
    data: bytes = encoding.decode_bytes(list(tokens))
    return data.decode("utf-8", errors="ignore")


def _head_and_tail(encoding: Any, tokens: Sequence[int], keep: int) -> str:
    marker = _MARKER.format(n=len(tokens) - max(keep, 0))
    if keep <= 0:
        return marker
    tail_n = keep // 2
    head_n = keep - tail_n
    head = _decode(encoding, tokens[:head_n])
    tail = _decode(encoding, tokens[len(tokens) - tail_n :]) if tail_n else ""
    return f"{head}\n{marker}\n{tail}"


def shrink_text(text: str, max_tokens: int, *, model: str = "gpt-4o") -> str:
    """Shorten ``text`` to at most ``max_tokens`` tokens, keeping its head and tail.

    The omitted middle is replaced by ``[... N tokens omitted ...]`` on its own line. Text
    that already fits is returned unchanged. When even the marker does not fit, the first
    tokens of the text are returned without marker.

    >>> short = shrink_text("line\\n" * 1000, 20)
    >>> "tokens omitted" in short, short.startswith("line"), short.endswith("line\\n")
    (True, True, True)
    """
    if max_tokens < 1:
        raise ValueError("shrink_text: max_tokens must be >= 1")
    from streamagent.accounting.encodings import encoding_name_for_model, get_encoding

    encoding_name = encoding_name_for_model(model)
    # Results are cached by a digest of the text (the graph re-shrinks the same tool outputs
    # on every turn when only the model's view is pruned); the text itself is not retained.
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).digest()
    key = (encoding_name, max_tokens, digest)
    with _shrink_cache_lock:
        if key in _shrink_cache:
            _shrink_cache.move_to_end(key)
            cached = _shrink_cache[key]
            return text if cached is None else cached
    result = _shrink_tokens(get_encoding(encoding_name), text, max_tokens)
    with _shrink_cache_lock:
        # Text that fits is stored as None (it is returned unchanged): nothing large is kept.
        _shrink_cache[key] = None if result is text else result
        while len(_shrink_cache) > _SHRINK_CACHE_SIZE:
            _shrink_cache.popitem(last=False)
    return result


def _shrink_tokens(encoding: Any, text: str, max_tokens: int) -> str:
    tokens = encoding.encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    marker_tokens = len(encoding.encode_ordinary(f"\n{_MARKER.format(n=len(tokens))}\n"))
    keep = max_tokens - marker_tokens
    while keep >= 0:
        candidate = _head_and_tail(encoding, tokens, keep)
        excess = len(encoding.encode_ordinary(candidate)) - max_tokens
        if excess <= 0:
            return candidate
        keep -= excess
    cut = max_tokens
    while cut > 0:
        candidate = _decode(encoding, tokens[:cut])
        excess = len(encoding.encode_ordinary(candidate)) - max_tokens
        if excess <= 0:
            return candidate
        cut -= excess
    return ""


# --------------------------------------------------------------------------- units
@dataclass
class _Unit:
    indices: list[int]
    kind: str  # "system" | "human" | "tools" | "other"


@dataclass
class _Plan:
    units: list[_Unit] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)


def _tool_call_ids(message: AIMessage) -> list[str | None]:
    ids: list[str | None] = [call.get("id") for call in message.tool_calls]
    ids.extend(call.get("id") for call in message.invalid_tool_calls)
    return ids


def _group_tool_unit(messages: Sequence[BaseMessage], start: int, plan: _Plan) -> int:
    """Group the AI message at ``start`` with its tool messages; return the next index."""
    ai = messages[start]
    assert isinstance(ai, AIMessage)
    wanted = set(_tool_call_ids(ai))
    members = [start]
    answered: set[str] = set()
    end = start + 1
    while end < len(messages):
        reply = messages[end]
        if not isinstance(reply, ToolMessage):
            break
        if reply.tool_call_id in wanted and reply.tool_call_id not in answered:
            answered.add(reply.tool_call_id)
            members.append(end)
        else:
            plan.invalid.append(end)  # orphan or duplicate answer
        end += 1
    if answered == wanted or end == len(messages):
        plan.units.append(_Unit(members, "tools"))  # complete, or a call still in flight
    else:
        plan.invalid.extend(members)
    return end


def _plan_units(messages: Sequence[BaseMessage]) -> _Plan:
    plan = _Plan()
    i = 0
    while i < len(messages):
        message = messages[i]
        if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
            i = _group_tool_unit(messages, i, plan)
            continue
        if isinstance(message, ToolMessage):
            plan.invalid.append(i)
        elif isinstance(message, SystemMessage):
            plan.units.append(_Unit([i], "system"))
        elif isinstance(message, HumanMessage):
            plan.units.append(_Unit([i], "human"))
        else:
            plan.units.append(_Unit([i], "other"))
        i += 1
    return plan


# --------------------------------------------------------------------------- pruning
def _content_text(content: str | list[Any]) -> str | None:
    """The text of a content, or None when it has non-text parts (left alone)."""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        else:
            return None
    return "\n".join(texts)


class _Pruner:
    """State of one :func:`prune_messages` call (kept small and single-use)."""

    def __init__(
        self,
        messages: Sequence[BaseMessage],
        *,
        count_tokens: Callable[[BaseMessage], int],
        max_tokens: int | None,
        max_messages: int | None,
        max_tool_output_tokens: int | None,
        truncate_text: Callable[[str, int], str],
    ) -> None:
        self.source = messages
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.max_messages = max_messages
        self.max_tool_output_tokens = max_tool_output_tokens
        self.truncate_text = truncate_text
        self.out: list[BaseMessage] = list(messages)
        self.counts = [count_tokens(m) for m in messages]
        self.shrunk = [False] * len(messages)
        self.keep = [False] * len(messages)
        self.kept_tokens = 0
        self.kept_count = 0

    # -- shrinking
    def shrink_unit(self, unit: _Unit) -> tuple[int, int]:
        """Shrink oversized tool messages of ``unit``; return its (tokens, messages)."""
        limit = self.max_tool_output_tokens
        if limit is not None and unit.kind == "tools":
            for index in unit.indices[1:]:
                if not self.shrunk[index] and self.counts[index] > limit:
                    self._shrink(index, limit)
        return sum(self.counts[i] for i in unit.indices), len(unit.indices)

    def _shrink(self, index: int, limit: int) -> None:
        message = self.source[index]
        text = _content_text(message.content)
        if text is None:
            return
        overhead = self.count_tokens(message.model_copy(update={"content": ""}))
        new_text = self.truncate_text(text, max(1, limit - overhead))
        if new_text == text:
            return
        copy = message.model_copy(update={"content": new_text})
        new_count = self.count_tokens(copy)
        if new_count < self.counts[index]:
            self.out[index] = copy
            self.counts[index] = new_count
            self.shrunk[index] = True

    # -- keeping
    def fits(self, tokens: int, count: int) -> bool:
        if self.max_tokens is not None and self.kept_tokens + tokens > self.max_tokens:
            return False
        return self.max_messages is None or self.kept_count + count <= self.max_messages

    def take(self, unit: _Unit, tokens: int, count: int) -> None:
        for index in unit.indices:
            self.keep[index] = True
        self.kept_tokens += tokens
        self.kept_count += count

    def try_take(self, unit: _Unit) -> bool:
        tokens, count = self.shrink_unit(unit)
        if not self.fits(tokens, count):
            return False
        self.take(unit, tokens, count)
        return True

    def keep_turns(self, turns: list[list[_Unit]]) -> None:
        """Keep older turns newest-first; the first that does not fit whole is the last seen."""
        for turn in reversed(turns):
            sizes = [self.shrink_unit(unit) for unit in turn]
            tokens = sum(s[0] for s in sizes)
            count = sum(s[1] for s in sizes)
            if self.fits(tokens, count):
                for unit, (unit_tokens, unit_count) in zip(turn, sizes, strict=True):
                    self.take(unit, unit_tokens, unit_count)
                continue
            if turn[0].kind == "human" and self.try_take(turn[0]):
                for unit in reversed(turn[1:]):
                    if not self.try_take(unit):
                        break
            return

    def result(self, tokens_before: int) -> PruneResult:
        kept = [self.out[i] for i in range(len(self.out)) if self.keep[i]]
        removed = [self.source[i] for i in range(len(self.source)) if not self.keep[i]]
        shrunk_ids: list[str] = []
        for i, message in enumerate(self.out):
            if self.keep[i] and self.shrunk[i] and message.id is not None:
                shrunk_ids.append(message.id)
        tokens_after = sum(self.counts[i] for i in range(len(self.counts)) if self.keep[i])
        return PruneResult(
            messages=kept,
            removed=removed,
            shrunk_ids=shrunk_ids,
            tokens_before=tokens_before,
            tokens_after=tokens_after,
        )


def _split(units: list[_Unit]) -> tuple[list[_Unit], list[list[_Unit]]]:
    """Split units into (must-keep, older turns oldest first); system units are must-keep."""
    system = [u for u in units if u.kind == "system"]
    rest = [u for u in units if u.kind != "system"]
    last_human = max((i for i, u in enumerate(rest) if u.kind == "human"), default=None)
    cut = last_human if last_human is not None else max(len(rest) - 1, 0)
    must = system + rest[cut:]
    turns: list[list[_Unit]] = []
    for unit in rest[:cut]:
        if unit.kind == "human" or not turns:
            turns.append([unit])
        else:
            turns[-1].append(unit)
    return must, turns


def prune_messages(
    messages: Sequence[BaseMessage],
    *,
    max_tokens: int | None,
    count_tokens: Callable[[BaseMessage], int],
    max_messages: int | None = None,
    max_tool_output_tokens: int | None = None,
    truncate_text: Callable[[str, int], str] | None = None,
) -> PruneResult:
    """Fit ``messages`` into ``max_tokens`` / ``max_messages`` (rules in the module docstring).

    ``count_tokens`` counts one message (e.g. ``TokenCounter("gpt-4o").message_tokens``);
    ``truncate_text(text, max_tokens)`` shortens a tool output (default: :func:`shrink_text`
    with gpt-4o's encoding). Raises :class:`~streamagent.errors.ContextTooLongError` when the
    system messages and the latest user turn alone exceed ``max_tokens``.

    >>> from langchain_core.messages import HumanMessage
    >>> prune_messages([HumanMessage("hi")], max_tokens=None, count_tokens=lambda m: 5).tokens_after
    5
    """
    pruner = _Pruner(
        messages,
        count_tokens=count_tokens,
        max_tokens=max_tokens,
        max_messages=max_messages,
        max_tool_output_tokens=max_tool_output_tokens,
        truncate_text=truncate_text or shrink_text,
    )
    tokens_before = sum(pruner.counts)
    plan = _plan_units(messages)
    must, turns = _split(plan.units)
    for unit in must:
        pruner.take(unit, *pruner.shrink_unit(unit))
    if max_tokens is not None and pruner.kept_tokens > max_tokens:
        raise ContextTooLongError(
            f"the system messages and the latest user turn need {pruner.kept_tokens} tokens, "
            f"more than the budget of {max_tokens} tokens (the whole input has "
            f"{tokens_before} tokens in {len(messages)} messages): shorten the input or raise "
            "the budget"
        )
    if max_tokens is None and max_messages is None:
        for turn in turns:
            for unit in turn:
                pruner.take(unit, *pruner.shrink_unit(unit))
    else:
        pruner.keep_turns(turns)
    if plan.invalid:
        logger.info(
            "dropped %d tool message(s) or tool call(s) without their counterpart "
            "(the API would reject them)",
            len(plan.invalid),
        )
    return pruner.result(tokens_before)
