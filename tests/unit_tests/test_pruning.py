"""Pruning: invariants as hypothesis properties, and one example per rule."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from streamagent.accounting.pruning import PruneResult, prune_messages, shrink_text
from streamagent.accounting.tokens import TokenCounter, count_tokens
from streamagent.errors import ContextTooLongError

COUNTER = TokenCounter("gpt-4o")
count = COUNTER.message_tokens

WORDS = ["alpha", "beta", "gamma", "delta", "tool", "output", "value", "line\n", "42", "Ünï"]


# --------------------------------------------------------------------------- generators
@dataclass
class Ids:
    """Hands out unique message / tool-call ids (or none, when ``with_ids`` is off)."""

    with_ids: bool
    n: int = 0

    def next(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def msg(self) -> dict[str, Any]:
        return {"id": self.next("m")} if self.with_ids else {}


def _text(draw: st.DrawFn, max_words: int) -> str:
    n = draw(st.integers(min_value=0, max_value=max_words))
    return " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=n, max_size=n)))


@st.composite
def conversations(draw: st.DrawFn, *, min_turns: int = 1) -> list[BaseMessage]:
    """System messages, an optional greeting, then turns of human / tool-call units / replies."""
    ids = Ids(with_ids=draw(st.booleans()))
    out: list[BaseMessage] = []
    for _ in range(draw(st.integers(0, 2))):
        out.append(SystemMessage(_text(draw, 12) or "system", **ids.msg()))
    if draw(st.booleans()):
        out.append(AIMessage("Hello! How can I help?", **ids.msg()))
    for _ in range(draw(st.integers(min_turns, 6))):
        if draw(st.integers(0, 9)) == 0:
            out.append(SystemMessage("mid-conversation note", **ids.msg()))
        out.append(HumanMessage(_text(draw, 20) or "?", **ids.msg()))
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                out.append(AIMessage(_text(draw, 15), **ids.msg()))
                continue
            calls = [
                {"name": "read_file", "args": {"path": _text(draw, 3)}, "id": ids.next("call")}
                for _ in range(draw(st.integers(1, 3)))
            ]
            out.append(AIMessage(_text(draw, 5), tool_calls=calls, **ids.msg()))
            results = [
                ToolMessage(_text(draw, 300), tool_call_id=call["id"], **ids.msg())
                for call in calls
            ]
            out.extend(draw(st.permutations(results)))
    return out


# --------------------------------------------------------------------------- invariant checks
def _index_of(inputs: list[BaseMessage], result: PruneResult) -> list[int]:
    by_identity = {id(m): i for i, m in enumerate(inputs)}
    by_call = {m.tool_call_id: i for i, m in enumerate(inputs) if isinstance(m, ToolMessage)}
    out = []
    for m in result.messages:
        if id(m) in by_identity:
            out.append(by_identity[id(m)])
        else:
            assert isinstance(m, ToolMessage), "only tool messages may be replaced by copies"
            out.append(by_call[m.tool_call_id])
    return out


def _must_keep(inputs: list[BaseMessage]) -> set[int]:
    humans = [i for i, m in enumerate(inputs) if isinstance(m, HumanMessage)]
    last = humans[-1] if humans else len(inputs) - 1
    systems = {i for i, m in enumerate(inputs) if isinstance(m, SystemMessage)}
    return systems | set(range(last, len(inputs)))


def _assert_tool_units_whole(messages: list[BaseMessage]) -> None:
    i = 0
    while i < len(messages):
        m = messages[i]
        if isinstance(m, AIMessage) and m.tool_calls:
            wanted = {c["id"] for c in m.tool_calls}
            run = messages[i + 1 : i + 1 + len(wanted)]
            assert all(isinstance(r, ToolMessage) for r in run), "tool unit split"
            assert {r.tool_call_id for r in run} == wanted, "tool unit split"
            i += 1 + len(wanted)
            continue
        assert not isinstance(m, ToolMessage), "tool message kept without its AI message"
        i += 1


def _check(
    inputs: list[BaseMessage],
    *,
    max_tokens: int | None,
    max_messages: int | None,
    max_tool_output_tokens: int | None,
) -> PruneResult | None:
    snapshot = copy.deepcopy(inputs)
    shrink_only = prune_messages(
        inputs,
        max_tokens=None,
        count_tokens=count,
        max_tool_output_tokens=max_tool_output_tokens,
    )
    must = _must_keep(inputs)
    shrunk_index = _index_of(inputs, shrink_only)
    assert shrink_only.removed == []  # generated conversations are valid
    must_tokens = sum(
        count(m) for i, m in zip(shrunk_index, shrink_only.messages, strict=True) if i in must
    )
    try:
        result = prune_messages(
            inputs,
            max_tokens=max_tokens,
            count_tokens=count,
            max_messages=max_messages,
            max_tool_output_tokens=max_tool_output_tokens,
        )
    except ContextTooLongError:
        assert max_tokens is not None
        assert must_tokens > max_tokens
        assert inputs == snapshot
        return None
    assert max_tokens is None or must_tokens <= max_tokens
    assert inputs == snapshot, "input mutated"

    kept = _index_of(inputs, result)
    assert kept == sorted(set(kept)), "order or uniqueness broken"
    removed_ids = [id(m) for m in result.removed]
    assert set(removed_ids) == {id(inputs[i]) for i in range(len(inputs)) if i not in kept}
    assert len(removed_ids) + len(kept) == len(inputs)
    assert must <= set(kept), "system message or latest turn dropped"
    _assert_tool_units_whole(result.messages)

    assert result.tokens_before == sum(count(m) for m in inputs)
    assert result.tokens_after == sum(count(m) for m in result.messages)
    if max_tokens is not None:
        assert result.tokens_after <= max_tokens
    if max_messages is not None:
        if len(must) <= max_messages:
            assert len(result.messages) <= max_messages
        else:
            assert set(kept) == must
    if max_tool_output_tokens is not None and max_tool_output_tokens >= 20:
        for m in result.messages:
            if isinstance(m, ToolMessage):
                assert count(m) <= max_tool_output_tokens
    fits_all = (max_tokens is None or shrink_only.tokens_after <= max_tokens) and (
        max_messages is None or len(shrink_only.messages) <= max_messages
    )
    if fits_all:
        assert result.removed == []
        assert result.messages == shrink_only.messages
    first_other = next((i for i in kept if not isinstance(inputs[i], SystemMessage)), None)
    first_input_other = next(
        (i for i, m in enumerate(inputs) if not isinstance(m, SystemMessage)), None
    )
    if first_other is not None and not isinstance(inputs[first_other], HumanMessage):
        assert first_other == first_input_other, "kept list starts mid-turn"
    for message_id in result.shrunk_ids:
        original = next(m for m in inputs if m.id == message_id)
        copy_ = next(m for m in result.messages if m.id == message_id)
        assert copy_ is not original and copy_.content != original.content
    with_ids = {m.id for m in inputs}
    assert all(m.id in with_ids for m in result.messages), "ids invented"
    return result


# --------------------------------------------------------------------------- properties
PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    inputs=conversations(),
    budget_fraction=st.one_of(st.none(), st.floats(min_value=0.05, max_value=1.2)),
    max_messages=st.one_of(st.none(), st.integers(min_value=1, max_value=40)),
    max_tool_output_tokens=st.one_of(st.none(), st.integers(min_value=20, max_value=250)),
)
@pytest.mark.slow
def test_pruning_invariants_hold_for_random_conversations(
    inputs: list[BaseMessage],
    budget_fraction: float | None,
    max_messages: int | None,
    max_tool_output_tokens: int | None,
) -> None:
    total = sum(count(m) for m in inputs)
    max_tokens = None if budget_fraction is None else max(1, int(total * budget_fraction))
    _check(
        inputs,
        max_tokens=max_tokens,
        max_messages=max_messages,
        max_tool_output_tokens=max_tool_output_tokens,
    )


@PROPERTY_SETTINGS
@given(
    inputs=conversations(),
    max_tool_output_tokens=st.one_of(st.none(), st.integers(min_value=20, max_value=250)),
)
def test_nothing_is_dropped_when_everything_fits(
    inputs: list[BaseMessage], max_tool_output_tokens: int | None
) -> None:
    result = _check(
        inputs,
        max_tokens=10_000_000,
        max_messages=len(inputs),
        max_tool_output_tokens=max_tool_output_tokens,
    )
    assert result is not None
    assert result.removed == []
    assert len(result.messages) == len(inputs)


@PROPERTY_SETTINGS
@given(inputs=conversations(), data=st.data())
def test_orphan_tool_messages_are_always_dropped(inputs: list[BaseMessage], data: Any) -> None:
    positions = data.draw(st.lists(st.integers(0, len(inputs)), min_size=1, max_size=3))
    orphans = [ToolMessage("stale", tool_call_id=f"orphan-{n}") for n in range(len(positions))]
    mixed = list(inputs)
    for position, orphan in sorted(zip(positions, orphans, strict=True), key=lambda p: -p[0]):
        mixed.insert(position, orphan)
    budget = data.draw(st.one_of(st.none(), st.integers(1, 5_000)))
    try:
        result = prune_messages(mixed, max_tokens=budget, count_tokens=count)
    except ContextTooLongError:
        return
    assert not any(m in orphans for m in result.messages)
    assert all(any(r is o for r in result.removed) for o in orphans)
    _assert_tool_units_whole(result.messages)


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=0, max_size=3_000), max_tokens=st.integers(1, 400))
def test_shrink_text_never_exceeds_its_budget(text: str, max_tokens: int) -> None:
    out = shrink_text(text, max_tokens)
    assert count_tokens(out) <= max_tokens
    if count_tokens(text) <= max_tokens:
        assert out == text


# --------------------------------------------------------------------------- examples
def _tool_unit(call_id: str, output: str, **ai: Any) -> list[BaseMessage]:
    call = {"name": "read_file", "args": {"path": "a.txt"}, "id": call_id}
    return [AIMessage("", tool_calls=[call], **ai), ToolMessage(output, tool_call_id=call_id)]


def ones(_: BaseMessage) -> int:
    return 1


def test_system_messages_are_kept_even_when_old() -> None:
    sys1, sys2 = SystemMessage("rules"), SystemMessage("more rules")
    old = [HumanMessage("q1"), AIMessage("a1"), sys2, HumanMessage("q2"), AIMessage("a2")]
    last = HumanMessage("q3")
    result = prune_messages([sys1, *old, last], max_tokens=3, count_tokens=ones)
    assert result.messages == [sys1, sys2, last]


def test_latest_user_turn_is_kept_whole_with_its_tool_units() -> None:
    turn = [HumanMessage("do it"), *_tool_unit("c1", "out1"), *_tool_unit("c2", "out2")]
    history = [HumanMessage("old"), AIMessage("old answer"), *turn]
    result = prune_messages(history, max_tokens=5, count_tokens=ones)
    assert result.messages == turn
    assert result.removed == history[:2]


def test_oldest_turns_are_dropped_first() -> None:
    history = [
        HumanMessage("q1"),
        AIMessage("a1"),
        HumanMessage("q2"),
        AIMessage("a2"),
        HumanMessage("q3"),
    ]
    result = prune_messages(history, max_tokens=3, count_tokens=ones)
    assert [m.content for m in result.messages] == ["q2", "a2", "q3"]
    assert [m.content for m in result.removed] == ["q1", "a1"]


def test_max_messages_drops_oldest_and_counts_system_messages() -> None:
    history = [SystemMessage("s"), HumanMessage("q1"), AIMessage("a1"), HumanMessage("q2")]
    result = prune_messages(history, max_tokens=None, count_tokens=ones, max_messages=2)
    assert [m.content for m in result.messages] == ["s", "q2"]


def test_max_messages_below_the_must_keep_set_keeps_the_must_keep_set() -> None:
    turn = [HumanMessage("q"), *_tool_unit("c1", "x")]
    history = [SystemMessage("s"), HumanMessage("old"), *turn]
    result = prune_messages(history, max_tokens=None, count_tokens=ones, max_messages=1)
    assert result.messages == [history[0], *turn]


def test_tool_call_unit_is_never_split() -> None:
    unit = _tool_unit("c1", "result")
    history = [HumanMessage("q1"), *unit, HumanMessage("q2")]
    # Budget for q2 + q1 + the AI message, but not its tool message: the unit goes whole.
    result = prune_messages(history, max_tokens=3, count_tokens=ones)
    assert result.messages == [history[0], history[-1]]
    assert result.removed == unit


def test_boundary_turn_keeps_its_question_and_newest_units() -> None:
    history = [
        HumanMessage("q1"),
        *_tool_unit("c1", "r1"),
        *_tool_unit("c2", "r2"),
        AIMessage("final answer 1"),
        HumanMessage("q2"),
    ]
    result = prune_messages(history, max_tokens=5, count_tokens=ones)
    assert [m.content for m in result.messages] == ["q1", "", "r2", "final answer 1", "q2"]


def test_kept_list_does_not_start_with_an_assistant_greeting_when_turns_were_dropped() -> None:
    history = [AIMessage("Hello!"), HumanMessage("q1"), AIMessage("a1"), HumanMessage("q2")]
    assert prune_messages(history, max_tokens=4, count_tokens=ones).messages == history
    assert prune_messages(history, max_tokens=3, count_tokens=ones).messages == history[1:]


def test_oversized_tool_outputs_are_shrunk_before_any_turn_is_dropped() -> None:
    big = "\n".join(f"log line {i}" for i in range(2_000))
    history = [
        HumanMessage("run it", id="h1"),
        *_tool_unit("c1", big, id="a1"),
        AIMessage("done", id="a2"),
        HumanMessage("thanks", id="h2"),
    ]
    history[2].id = "t1"
    budget = sum(count(m) for m in history if m.id != "t1") + 150
    result = prune_messages(
        history, max_tokens=budget, count_tokens=count, max_tool_output_tokens=100
    )
    assert result.removed == []
    assert result.shrunk_ids == ["t1"]
    shrunk = result.messages[2]
    assert isinstance(shrunk, ToolMessage) and shrunk.id == "t1"
    assert shrunk.tool_call_id == "c1"
    assert "tokens omitted" in str(shrunk.content)
    assert str(shrunk.content).startswith("log line 0")
    assert str(shrunk.content).rstrip().endswith("log line 1999")
    assert count(shrunk) <= 100
    assert history[2].content == big  # the input is untouched
    assert result.tokens_after < result.tokens_before


def test_shrinking_in_the_latest_turn_can_make_it_fit() -> None:
    big = "word " * 5_000
    history = [HumanMessage("read"), *_tool_unit("c1", big)]
    with pytest.raises(ContextTooLongError):
        prune_messages(history, max_tokens=500, count_tokens=count)
    result = prune_messages(history, max_tokens=500, count_tokens=count, max_tool_output_tokens=200)
    assert len(result.messages) == 3 and result.tokens_after <= 500


def test_custom_truncate_text_is_used() -> None:
    history = [HumanMessage("q"), *_tool_unit("c1", "x" * 100)]
    result = prune_messages(
        history,
        max_tokens=None,
        count_tokens=lambda m: len(str(m.content)),
        max_tool_output_tokens=10,
        truncate_text=lambda text, n: text[:n],
    )
    assert result.messages[2].content == "x" * 10


def test_without_limits_only_shrinking_applies() -> None:
    history = [HumanMessage(f"q{i}") for i in range(50)]
    result = prune_messages(history, max_tokens=None, count_tokens=count)
    assert result.messages == history and result.removed == []


def test_orphan_and_incomplete_tool_messages_are_dropped_even_without_limits() -> None:
    orphan = ToolMessage("nobody asked", tool_call_id="ghost")
    incomplete = AIMessage(
        "",
        tool_calls=[
            {"name": "f", "args": {}, "id": "k1"},
            {"name": "f", "args": {}, "id": "k2"},
        ],
    )
    half = ToolMessage("only one", tool_call_id="k1")
    good = _tool_unit("c1", "fine")
    history = [HumanMessage("q1"), orphan, incomplete, half, HumanMessage("q2"), *good]
    result = prune_messages(history, max_tokens=None, count_tokens=ones)
    assert result.messages == [history[0], history[4], *good]
    assert result.removed == [orphan, incomplete, half]


def test_a_trailing_tool_call_in_flight_is_kept() -> None:
    pending = AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "p1"}])
    history = [HumanMessage("q"), pending]
    result = prune_messages(history, max_tokens=None, count_tokens=ones)
    assert result.messages == history


def test_must_keep_over_budget_raises_with_counts_and_budget() -> None:
    history = [SystemMessage("s"), HumanMessage("q1"), HumanMessage("q2 " * 50)]
    with pytest.raises(ContextTooLongError) as info:
        prune_messages(history, max_tokens=10, count_tokens=lambda m: len(str(m.content)))
    message = str(info.value)
    assert "151 tokens" in message and "budget of 10 tokens" in message
    assert "153 tokens in 3 messages" in message


def test_messages_without_ids_get_no_ids_and_shrunk_copies_keep_theirs() -> None:
    history = [HumanMessage("q"), *_tool_unit("c1", "word " * 1_000)]
    result = prune_messages(history, max_tokens=None, count_tokens=count, max_tool_output_tokens=50)
    assert [m.id for m in result.messages] == [None, None, None]
    assert result.shrunk_ids == []  # the shrunk copy has no id to report
    assert result.messages[2] is not history[2]


def test_pruning_is_deterministic_and_leaves_inputs_unmodified() -> None:
    history = [HumanMessage(f"q{i}", id=f"h{i}") for i in range(30)]
    history += _tool_unit("c1", "z " * 3_000, id="a")
    before = copy.deepcopy(history)
    first = prune_messages(history, max_tokens=200, count_tokens=count, max_tool_output_tokens=80)
    second = prune_messages(history, max_tokens=200, count_tokens=count, max_tool_output_tokens=80)
    assert first == second
    assert history == before


def test_long_history_prunes_with_one_count_per_message() -> None:
    calls = 0

    def counting(message: BaseMessage) -> int:
        nonlocal calls
        calls += 1
        return 1

    history: list[BaseMessage] = []
    for i in range(5_000):
        history += [HumanMessage(f"q{i}"), AIMessage(f"a{i}")]
    result = prune_messages(history, max_tokens=100, count_tokens=counting)
    assert len(result.messages) == 100  # the latest turn (q, a) + 49 older whole turns
    assert result.messages[0].content == "q4950"
    assert calls == len(history)


# --------------------------------------------------------------------------- shrink_text
def test_shrink_text_keeps_head_and_tail_with_a_marker() -> None:
    text = " ".join(f"w{i}" for i in range(5_000))
    out = shrink_text(text, 100)
    assert count_tokens(out) <= 100
    assert out.startswith("w0 w1 w2")
    assert out.endswith("w4998 w4999")
    head, marker, _tail = out.split("\n")
    omitted = int(marker.removeprefix("[... ").removesuffix(" tokens omitted ...]"))
    assert omitted > count_tokens(text) - 100


def test_shrink_text_returns_fitting_text_unchanged() -> None:
    assert shrink_text("short text", 10) == "short text"


def test_shrink_text_does_not_split_characters() -> None:
    out = shrink_text("日本語のテキスト🎉" * 500, 40)
    assert "\ufffd" not in out
    assert count_tokens(out) <= 40


def test_shrink_text_with_a_budget_below_the_marker_cuts_the_head() -> None:
    out = shrink_text("alpha beta gamma delta " * 100, 3)
    assert count_tokens(out) <= 3 and out.startswith("alpha")


def test_shrink_text_rejects_a_non_positive_budget() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        shrink_text("x", 0)


def test_shrink_text_caches_results_without_retaining_the_text() -> None:
    from streamagent.accounting import pruning

    text = "cache me " * 4_000 + "unique-tail-7f3a"
    first = shrink_text(text, 60)
    cached = [v for v in pruning._shrink_cache.values() if v == first]
    assert cached and all(len(v) < len(text) for v in cached if v)
    assert shrink_text(text, 60) == first
    assert shrink_text("fits", 60) == "fits"
    assert shrink_text("fits", 60) == "fits"
