"""Every docstring example in the package runs and prints what it says (doctest).

Examples are documentation a user copies: a broken one is a bug. Some start the scripted
model server (a loopback socket), so this lives in the integration tier.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

import streamagent

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(streamagent.__path__, "streamagent.")
    if not info.name.endswith("__main__")
)


def test_every_module_is_collected() -> None:
    assert {"streamagent.streaming.run", "streamagent.accounting.tokens"} <= set(MODULES)


@pytest.mark.parametrize("name", ["streamagent", *MODULES])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()
