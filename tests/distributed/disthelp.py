"""Helpers for the distributed tests: run ``trainctl train`` as a real process (torchrun's agent
runs inside it), read run folders, and compare them with a single-process run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.clihelp import read_json, run_history, run_weights

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240


def env() -> dict[str, str]:
    """This checkout's trainctl for the launcher and (through the environment) its workers."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT), "PYTHONUNBUFFERED": "1"}


def trainctl(*args: str | Path, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainctl", *map(str, args)],
        capture_output=True,
        text=True,
        env=env(),
        cwd=ROOT,
        timeout=timeout,
    )


def start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "trainctl", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=ROOT,
    )


def only_run(runs: Path) -> Path:
    """The one run folder under ``runs`` (a distributed run must write exactly one)."""
    folders = [p for p in runs.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def max_weight_diff(a: Path, b: Path) -> float:
    wa, wb = run_weights(a), run_weights(b)
    assert wa.keys() == wb.keys()
    return max(float(np.max(np.abs(wa[k] - wb[k]))) if wa[k].size else 0.0 for k in wa)


def assert_same_numbers(dist_run: Path, one_run: Path, tol: float) -> None:
    """Weights within ``tol``; history and metrics.json equal to float32 rounding."""
    assert max_weight_diff(dist_run, one_run) <= tol
    hd, h1 = run_history(dist_run), run_history(one_run)
    assert hd.keys() == h1.keys()
    for key in h1:
        np.testing.assert_allclose(hd[key], h1[key], rtol=1e-5, atol=1e-6, err_msg=key)
    md, m1 = read_json(dist_run / "metrics.json"), read_json(one_run / "metrics.json")
    assert md.keys() == m1.keys()
    for split in m1:
        assert md[split].keys() == m1[split].keys()
        for key in m1[split]:
            assert abs(md[split][key] - m1[split][key]) <= 1e-5 * max(1.0, abs(m1[split][key])), (split, key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc; no psutil)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
    return out


def worker_of_rank(launcher: int, rank: int) -> int | None:
    """The pid of the worker with ``RANK=rank`` started by a launcher process."""
    for pid in children(launcher):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return pid
    return None
