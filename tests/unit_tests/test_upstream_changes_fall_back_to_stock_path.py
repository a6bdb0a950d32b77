"""Every private name of another library is guarded: a missing or changed one turns the fast
path off (stock ChatOpenAI, stock LangGraph streaming) with one warning naming it.

Each case removes or changes one real piece in the installed library (``monkeypatch``), resolves
the pieces again and checks the fallback; the piece is restored afterwards.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from streamagent import _upstream
from streamagent._upstream import (
    aiohttp_private,
    fast_path_available,
    fast_path_problems,
    langchain_core_private,
    langchain_openai_private,
    langgraph_private,
    openai_private,
)
from streamagent.config import ModelConfig
from streamagent.llm import create_chat_model
from streamagent.llm.lean.chat_model import LeanChatOpenAI

ALL_PIECES = [
    piece
    for module in (
        langchain_core_private,
        langchain_openai_private,
        openai_private,
        aiohttp_private,
        langgraph_private,
    )
    for piece in module.PIECES.values()
]


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _upstream.refresh()
    yield
    # undo the test's changes first (the tier's autouse fixtures hold the same monkeypatch,
    # which would otherwise be undone only after this teardown), then resolve every piece again
    monkeypatch.undo()
    _upstream.refresh()


def _owners(piece: _upstream.Piece) -> tuple[list[Any], str]:
    """Where ``piece``'s attribute is defined (for a class: every class of its MRO)."""
    owner: Any = importlib.import_module(piece.module)
    *path, attr = piece.qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    if isinstance(owner, type):
        return [k for k in owner.__mro__ if attr in vars(k)], attr
    return [owner], attr


def test_the_installed_versions_provide_every_piece():
    assert fast_path_problems() == ()
    assert fast_path_available()
    assert type(create_chat_model(ModelConfig(api_key="sk-test"))) is LeanChatOpenAI


def _assert_fallback(caplog: pytest.LogCaptureFixture, needle: str) -> None:
    problems = _upstream.refresh()
    assert any(needle in p for p in problems), problems
    with caplog.at_level(logging.WARNING, logger="streamagent.fast_path"):
        assert not fast_path_available()
        try:
            llm = create_chat_model(ModelConfig(api_key="sk-test"))
        except AttributeError as exc:
            # the removed piece is one stock ChatOpenAI needs itself: it was still the class
            # chosen (a real upstream rename changes ChatOpenAI's own code with it)
            assert "'ChatOpenAI' object has no attribute" in str(exc)
            llm = None
        assert not fast_path_available()
    assert llm is None or type(llm) is ChatOpenAI, "stock ChatOpenAI when a piece is missing"
    warnings = [r.getMessage() for r in caplog.records if r.name == "streamagent.fast_path"]
    assert len(warnings) == 1, "one warning per process"
    assert needle in warnings[0]
    assert "fast path is off" in warnings[0]
    if llm is not None:  # a LeanChatOpenAI made directly also takes the stock path
        lean = LeanChatOpenAI(model="gpt-4o", api_key="sk-test", max_retries=0)  # type: ignore[arg-type]
        assert lean.lean_request([]) is None


@pytest.mark.parametrize("piece", ALL_PIECES, ids=lambda p: p.dotted)
def test_a_missing_piece_turns_the_fast_path_off(piece, monkeypatch, caplog):
    owners, attr = _owners(piece)
    for owner in owners:
        monkeypatch.delattr(owner, attr)
    _assert_fallback(caplog, f"{piece.dotted} is missing")


@pytest.mark.parametrize(
    "piece",
    [p for p in ALL_PIECES if p.params],
    ids=lambda p: p.dotted,
)
def test_a_changed_signature_turns_the_fast_path_off(piece, monkeypatch, caplog):
    owners, attr = _owners(piece)

    original = vars(owners[0])[attr]

    def changed(*args: Any, **kwargs: Any) -> Any:  # same behaviour, parameters renamed
        return original(*args, **kwargs)

    monkeypatch.setattr(owners[0], attr, changed)
    _assert_fallback(caplog, f"{piece.dotted} has changed")


def test_an_unimportable_private_module_turns_the_fast_path_off(monkeypatch, caplog):
    import sys

    monkeypatch.setitem(sys.modules, "langchain_core.language_models._utils", None)
    _assert_fallback(caplog, "langchain_core.language_models._utils._normalize_messages cannot")


SPECIAL: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], str]] = {
    "aiohttp reader buffer": (
        lambda mp: mp.setattr(
            __import__("aiohttp"), "StreamReader", type("StreamReader", (), {"__slots__": ()})
        ),
        "aiohttp.StreamReader._buffer is missing",
    ),
    "langgraph push marker": (
        lambda mp: mp.setattr(
            importlib.import_module("langgraph._internal._constants"), "PUSH", "__moved"
        ),
        "langgraph._internal._constants.PUSH has changed",
    ),
    "a new BaseChatModel.astream": (
        lambda mp: mp.setattr(langchain_core_private, "KNOWN_ASTREAM_SOURCES", frozenset()),
        "BaseChatModel.astream has changed",
    ),
    "callback configure without langsmith metadata": (
        lambda mp: mp.setattr(
            importlib.import_module("langchain_core.callbacks").AsyncCallbackManager,
            "configure",
            classmethod(lambda cls, inheritable_callbacks=None: None),
        ),
        "AsyncCallbackManager.configure has changed",
    ),
}


@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_a_changed_shape_turns_the_fast_path_off(case, monkeypatch, caplog):
    change, needle = SPECIAL[case]
    change(monkeypatch)
    _assert_fallback(caplog, needle)


def test_the_warning_names_the_library_and_its_version(monkeypatch):
    from importlib import metadata

    monkeypatch.delattr(
        importlib.import_module("langchain_openai.chat_models.base"), "_handle_openai_api_error"
    )
    (problem,) = _upstream.refresh()
    assert problem.startswith(f"langchain-openai {metadata.version('langchain-openai')}: ")


def test_the_model_node_does_not_use_the_sink_without_the_fast_path(monkeypatch):
    from streamagent.config import AgentConfig
    from streamagent.nodes.model import ModelNode

    node = ModelNode(
        llm=None, tools=[], config=AgentConfig(model=ModelConfig(api_key="k")), name="a"
    )
    assert node._fast_path()
    monkeypatch.delattr(
        importlib.import_module("langgraph.pregel._messages"), "StreamMessagesHandler"
    )
    _upstream.refresh()
    assert not node._fast_path()
