"""Execute every notebook under ``notebooks/`` in a real Jupyter kernel (nbclient + ipykernel).

Offline, as in CI: the notebooks start their own ``ScriptedOpenAIServer`` and use Redis from
``REDIS_URL`` or an embedded server (here in a temporary data directory). The cells assert what
they demonstrate, so a notebook that runs without a cell error has passed its own checks. A
second run flips ``USE_REAL_MODEL`` and points ``OPENAI_BASE_URL`` at a scripted server standing
in for a real model, so the "Use a real model" path runs too. The stored notebooks must carry no
outputs and no execution counts.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
import redis
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from streamagent.testing import RecordedRequest, Reply, ScriptedOpenAIServer

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = [
    "01_quickstart.ipynb",
    "02_tools_and_approval.ipynb",
    "03_memory.ipynb",
    "04_composition.ipynb",
    "05_observability.ipynb",
    "06_middleware.ipynb",
    "07_store.ipynb",
    "08_langgraph_dialect.ipynb",
]
CELL_TIMEOUT_SECONDS = 90
KERNEL_START_TIMEOUT_SECONDS = 60
REAL_MODEL_FLAG = "USE_REAL_MODEL = False"
# a Python warning as the warnings module prints it: "file:line: SomeWarning: message"
PYTHON_WARNING = re.compile(r"\b\w*Warning: ")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# the environment of the agent's own process must not reach the notebooks
_SCRUBBED_PREFIXES = ("OPENAI_", "LANGSMITH_", "LANGCHAIN_")

pytestmark = [pytest.mark.notebooks]


def kernel_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The kernel's environment: ours without model/tracing settings, private data dirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    # without REDIS_URL the notebooks start an embedded Redis: keep its data in tmp_path
    env["STREAMAGENT_DATA_DIR"] = str(tmp_path / "streamagent-data")
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env.update(extra)
    return env


def execute(nb: Any, tmp_path: Path, env: dict[str, str]) -> None:
    """Run ``nb`` in place in a python3 kernel of this interpreter, cwd ``tmp_path``."""
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel-ipc"))
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_SECONDS,
        startup_timeout=KERNEL_START_TIMEOUT_SECONDS,
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    failure = None
    try:
        client.execute(env=env, cwd=str(tmp_path))
    except CellExecutionError as exc:
        failure = ANSI.sub("", str(exc))
    finally:
        # a graceful shutdown lets the kernel's atexit handlers stop its embedded Redis
        if km.has_kernel:
            km.shutdown_kernel(now=False)
        km.cleanup_resources()
        left_running = stop_leftover_redis(Path(env["STREAMAGENT_DATA_DIR"]))
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    assert not left_running, "the kernel left its embedded Redis running"


def stop_leftover_redis(data_dir: Path) -> bool:
    """Shut down an embedded Redis the kernel left behind; True if there was one."""
    sock = data_dir / "redis" / "redis.sock"
    if not sock.exists():
        return False
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=2)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False  # a stale socket file: nothing is listening
    else:
        client.shutdown(nosave=True)
        return True
    finally:
        client.close()


def load(name: str) -> Any:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    # a last cell, not stored: proves the kernel ran this test's interpreter (the venv)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    return nb


def outputs_of(nb: Any) -> list[tuple[int, dict[str, Any]]]:
    return [
        (index, output)
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]


def check_ran_clean(nb: Any) -> None:
    """Every cell ran, without Python warnings, in a kernel of this interpreter."""
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells)
    for index, output in outputs_of(nb):
        assert output["output_type"] != "error", (index, output)
        if output["output_type"] == "stream":
            match = PYTHON_WARNING.search(output["text"])
            assert match is None, f"cell {index} printed a warning: {output['text'][-800:]}"
    last = code_cells[-1]["outputs"]
    assert last[0]["text"].strip() == sys.prefix, "the kernel is not this test's interpreter"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_offline(name: str, tmp_path: Path) -> None:
    nb = load(name)
    execute(nb, tmp_path, kernel_env(tmp_path))
    check_ran_clean(nb)


def _echo(request: RecordedRequest) -> Reply:
    """A stand-in for a real model: answers every request with text."""
    users = [m for m in request.messages if m.get("role") == "user"]
    last = str(users[-1].get("content")) if users else ""
    return Reply(f"(a real model would answer) {last[:60]}")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_use_real_model(name: str, tmp_path: Path) -> None:
    nb = load(name)
    flags = [c for c in nb.cells if c.cell_type == "code" and REAL_MODEL_FLAG in c.source]
    assert len(flags) == 1
    flags[0].source = flags[0].source.replace(REAL_MODEL_FLAG, "USE_REAL_MODEL = True")
    with ScriptedOpenAIServer(responder=_echo) as model:
        env = kernel_env(
            tmp_path,
            OPENAI_BASE_URL=model.base_url,
            OPENAI_API_KEY="sk-notebook-test-not-a-real-key",
            OPENAI_MODEL="gpt-4o-mini",
        )
        execute(nb, tmp_path, env)
        requests = model.requests
    check_ran_clean(nb)
    assert requests, "the notebook did not call the model named by OPENAI_BASE_URL"
    assert all(r.body.get("model") == "gpt-4o-mini" for r in requests)
    assert all(
        r.headers.get("authorization") == "Bearer sk-notebook-test-not-a-real-key" for r in requests
    )


def test_every_notebook_is_tested() -> None:
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebook_is_clean_and_has_one_real_model_switch(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] for c in code_cells), "clear the outputs before committing"
    assert all(c.execution_count is None for c in code_cells), "clear the execution counts"
    headings = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and c.source.startswith("## Use a real model")
    ]
    flags = [
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and REAL_MODEL_FLAG in c.source
    ]
    assert len(headings) == 1 and len(flags) == 1, "exactly one 'Use a real model' switch"
    assert headings[0] < flags[0] <= 3, "the switch sits near the top, under its heading"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
