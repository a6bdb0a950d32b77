"""The newest-set failure report names each package whose version differs from the pins."""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _report_module():
    spec = importlib.util.spec_from_file_location(
        "version_report", ROOT / "scripts/version_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_package_newer_than_its_pin_is_named_with_both_versions(tmp_path, capsys):
    installed = metadata.version("langchain-core")
    pins = tmp_path / "constraints.txt"
    pins.write_text(f"# pins\nlangchain-core==0.0.1\nopenai=={metadata.version('openai')}\n")
    assert _report_module().main([str(pins)]) == 0
    out = capsys.readouterr().out
    assert f"langchain-core: pinned 0.0.1 -> installed {installed}  (direct dependency)" in out
    assert "openai:" not in out, "an unchanged package is not listed"
    assert "fast-path pieces missing" in out
