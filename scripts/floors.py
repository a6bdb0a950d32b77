"""Print a pip constraints file pinning every direct dependency to its floor in pyproject.toml.

``./dev test`` installs these into ``.venv-floors`` (the lowest versions the package promises
to work with). Each floor in pyproject.toml is a released version, so ``==`` finds it.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_FLOOR = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)")


def floors(pyproject: Path) -> list[str]:
    data = tomllib.loads(pyproject.read_text())
    pins = []
    for dep in data["project"]["dependencies"]:
        match = _FLOOR.match(dep)
        if match is None:
            raise SystemExit(f"floors: dependency {dep!r} has no '>=' floor")
        pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(floors(root)))
