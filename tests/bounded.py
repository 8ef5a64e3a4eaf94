"""Run the CLI in a child process under an address-space limit, for inputs that claim huge sizes.

The limit is the test's memory bound: a reader that tried to allocate what a hostile header claims
would die with MemoryError (exit 1, a traceback) instead of the clean error the test expects. The
timeout only keeps a hang from blocking the suite; no test asserts wall time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str | Path, mem_mb: int, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``python -m trainctl *args`` with RLIMIT_AS of ``mem_mb`` MiB (torch needs ~1.5 GB mapped)."""

    def limit() -> None:
        cap = mem_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CI": "1"}
    return subprocess.run(
        [sys.executable, "-m", "trainctl", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
        env=env,
        cwd=ROOT,
    )
