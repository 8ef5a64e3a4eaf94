"""Helpers for the hostile corpus: run trainctl as a real subprocess under resource limits, and
check the outcome the README promises (documented exit code, one message, no traceback, nothing
written outside the run folder or --output)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.clihelp import ROOT

MEMORY_LIMIT = 4 << 30  # address space: torch maps ~1.5 GB of virtual memory at import
CPU_LIMIT_S = 120
TIMEOUT_S = 240

GOOD = {
    "name": "hostile",
    "seed": 1,
    "threads": 1,
    "data": {"source": "synthetic", "kind": "random", "n": 64, "features": 3},
    "model": {
        "layers": [
            {"type": "Dense", "units": 4, "activation": "relu", "input_shape": [3]},
            {"type": "Dense", "units": 1},
        ]
    },
    "compile": {"optimizer": "sgd", "loss": "mse"},
    "fit": {"epochs": 1, "batch_size": 16},
}


def limits(fsize: int | None = None, close: tuple[int, ...] = ()) -> Callable[[], None]:
    """preexec_fn: bound memory and CPU; optionally a file-size limit (SIGXFSZ ignored, so the
    write fails with EFBIG) and closed standard fds (as a shell's ``>&-`` does)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_S, CPU_LIMIT_S))
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        for fd in close:
            os.close(fd)

    return apply


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "CI": "1",
        "TRAINCTL_DATA_DIR": os.environ.get("TRAINCTL_DATA_DIR", "/nonexistent"),
    }


def trainctl(
    *args: Any, cwd: Path, fsize: int | None = None, close: tuple[int, ...] = (), stdin: Any = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    """``python -m trainctl ARGS`` in ``cwd`` under :func:`limits`, with a timeout."""
    return subprocess.run(
        [sys.executable, "-m", "trainctl", *(str(a) for a in args)],
        cwd=cwd,
        stdin=stdin,
        capture_output=True,
        text=True,
        env=env(),
        preexec_fn=limits(fsize, close),
        timeout=TIMEOUT_S,
    )


def snapshot(root: Path, allowed: tuple[Path, ...] = ()) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` outside ``allowed`` folders/files: path -> (size, mtime_ns)."""
    out = {}
    for path in root.rglob("*"):
        if any(path == a or a in path.parents for a in allowed):
            continue
        if path.is_file() or path.is_symlink():
            st = path.lstat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
        elif path.is_dir():
            out[str(path.relative_to(root)) + "/"] = (0, 0)
    return out


def assert_clean_failure(res: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    """The documented code (never 1), one 'error:' line naming the problem, no traceback."""
    detail = f"exit {res.returncode}\nstdout: {res.stdout[-2000:]}\nstderr: {res.stderr[-3000:]}"
    assert res.returncode != 1, detail
    assert res.returncode == code, detail
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, detail
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, detail
    for fragment in fragments:
        assert fragment in res.stderr, f"{fragment!r} not in stderr\n{detail}"
