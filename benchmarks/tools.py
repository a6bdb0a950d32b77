"""Tool overhead benchmark (run by hand): ``.venv/bin/python benchmarks/tools.py [--runs N]``.

Measures, interleaved round-robin so machine noise spreads evenly:
* ``execute_bash("true")`` in bubblewrap and unsandboxed (process start + sandbox setup);
* ``read_file`` of a 1 MB text file;
* ``git_operation status`` on a committed 1,000-file repository (bubblewrap and unsandboxed;
  includes the repository-location and driver-discovery git calls).
Prints a markdown table of medians and p90 in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from streamagent.tools import default_tools, sandbox_available


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def setup(ws: Path) -> None:
    (ws / "big.txt").write_text(("x" * 99 + "\n") * 10_000)  # 1,000,000 bytes
    repo = ws / "repo"
    repo.mkdir()
    for i in range(1000):
        d = repo / f"d{i // 100}"
        d.mkdir(exist_ok=True)
        (d / f"f{i}.txt").write_text(f"file {i}\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(ws),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@b",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@b",
    }
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        setup(ws)
        r, _, bash_none, git_none = default_tools(ws, sandbox="none", max_read_bytes=2_000_000)
        cases: dict[str, Callable[[], object]] = {
            'execute_bash("true"), no sandbox': lambda: bash_none.invoke({"command": "true"}),
            "read_file 1 MB": lambda: r.invoke({"path": "big.txt"}),
            "git_operation status, 1,000 files, no sandbox": lambda: git_none.invoke(
                {"operation": "status", "repo": "repo"}
            ),
        }
        if sandbox_available():
            _, _, bash_bw, git_bw = default_tools(ws, sandbox="bwrap")
            cases['execute_bash("true"), bubblewrap'] = lambda: bash_bw.invoke({"command": "true"})
            cases["git_operation status, 1,000 files, bubblewrap"] = lambda: git_bw.invoke(
                {"operation": "status", "repo": "repo"}
            )
        for fn in cases.values():  # warm-up
            fn()
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(runs):
            for name, fn in cases.items():
                start = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - start) * 1000)
    print(f"| operation ({runs} runs, interleaved) | median ms | p90 ms |")
    print("|---|---:|---:|")
    for name in sorted(samples):
        values = samples[name]
        print(f"| {name} | {statistics.median(values):.2f} | {p90(values):.2f} |")


if __name__ == "__main__":
    main()
