"""Say which installed packages differ from constraints.txt, and which fast-path pieces are
missing — printed by ``./dev test`` when the newest allowed versions fail where the pins pass.

Run it with the venv's interpreter: ``.venv-newest/bin/python scripts/version_report.py``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    constraints = Path(args[0]) if args else ROOT / "constraints.txt"
    pins = {}
    for raw in constraints.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_norm(name)] = version.strip()
    direct = set()
    for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        direct.add(_norm(re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0]))
    changed = []
    for dist in metadata.distributions():
        name = _norm(dist.metadata["Name"] or "")
        pinned = pins.get(name)
        if pinned is not None and pinned != dist.version:
            changed.append((name not in direct, name, pinned, dist.version))
    print(f"streamagent: packages whose version differs from {constraints.name} (direct first):")
    for indirect, name, pinned, version in sorted(changed):
        kind = "other package" if indirect else "direct dependency"
        print(f"  {name}: pinned {pinned} -> installed {version}  ({kind})")
    if not changed:
        print("  (none)")
    from streamagent._upstream import fast_path_problems

    problems = fast_path_problems()
    print("streamagent: fast-path pieces missing in these versions (the fast path is off there):")
    for problem in problems or ("(none)",):
        print(f"  {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
