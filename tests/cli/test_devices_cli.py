"""``trainctl devices [--bench] [--json]`` on this machine's CPU (nothing mocked: it runs)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import torch

from tests.clihelp import Cli


@pytest.fixture(autouse=True)
def keep_threads() -> Iterator[None]:
    """The command sets torch's thread count in this (test) process; put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_table_has_a_cpu_row(cli: Cli) -> None:
    res = cli("devices", "--threads", "1")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"torch {torch.__version__}")
    assert lines[1].split()[:2] == ["device", "model"]
    cpu = next(line for line in lines if line.startswith("cpu "))
    cells = cpu.split()
    assert cells[-2:] == ["1", str(len(os.sched_getaffinity(0)))]  # threads, cores
    assert sum(line.startswith("cuda:") for line in lines) == torch.cuda.device_count()


def test_json_shape(cli: Cli) -> None:
    res = cli("devices", "--json", "--threads", "1")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"torch", "cuda", "devices", "bench"}
    assert out["bench"] is None
    assert out["cuda"] is None if not torch.cuda.is_available() else isinstance(out["cuda"], str)
    cpu = out["devices"][0]
    assert set(cpu) == {"name", "model", "memory_mb", "threads", "cores", "compute_capability"}
    assert cpu["name"] == "cpu" and cpu["threads"] == 1 and cpu["cores"] == len(os.sched_getaffinity(0))
    assert len(out["devices"]) == 1 + torch.cuda.device_count()


def test_bench_json_and_table(cli: Cli) -> None:
    res = cli("devices", "--bench", "--bench-n", "3", "--bench-size", "40", "--json", "--threads", "1")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["bench"] == {"matmuls": 3, "size": 40, "dtype": "float32"}
    b = out["devices"][0]["bench"]
    assert b["speedup"] == 1.0 and b["seconds"] > 0
    assert b["gflops"] == pytest.approx(2 * 40**3 * 3 / b["seconds"] / 1e9)

    res = cli("devices", "--bench", "--bench-n", "2", "--bench-size", "32", "--threads", "1")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[1].split()[-4:] == ["matmul", "s", "GFLOP/s", "speed-up"]
    cpu = next(line for line in lines if line.startswith("cpu "))
    assert cpu.split()[-1] == "1.0x"
    assert lines[-1].startswith("matmul: 2 x float32 32x32")


def test_hidden_bench_options_stay_out_of_help(cli: Cli) -> None:
    res = cli("devices", "--help")
    assert res.exit_code == 0
    assert "--bench" in res.stdout and "--json" in res.stdout
    assert "--bench-n" not in res.stdout and "--bench-size" not in res.stdout
