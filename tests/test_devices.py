"""``trainctl.devices``: the device list, the matmul bench, and the rules of the speed options.

Expectations come from the operating system (affinity mask, /proc/meminfo), hand formulas
(2·n³ flops per matmul) and the ConfigError contract. CUDA tests skip without a GPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from trainctl.devices import (
    bench,
    check_precision,
    list_devices,
    matmul_seconds,
    to_device,
)
from trainctl.errors import ConfigError

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_cpu_is_listed_first_with_cores_threads_and_memory(two_threads: None) -> None:
    found = list_devices()
    cpu = found[0]
    assert cpu.name == "cpu"
    assert cpu.cores == len(os.sched_getaffinity(0))
    assert cpu.threads == 2
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
    )
    assert cpu.memory_mb is not None and abs(cpu.memory_mb - mem_kib / 1024) <= 0.02 * mem_kib / 1024
    assert cpu.compute_capability is None
    assert [d.name for d in found[1:]] == [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def test_bench_reports_seconds_flops_and_speedup_relative_to_cpu() -> None:
    cpu = list_devices()[:1]
    result = bench(cpu, n=3, size=48)
    assert set(result) == {"cpu"}
    row = result["cpu"]
    assert row["seconds"] > 0
    assert row["speedup"] == 1.0
    assert row["gflops"] == pytest.approx(2 * 48**3 * 3 / row["seconds"] / 1e9)
    assert matmul_seconds("cpu", n=1, size=8) > 0


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_is_refused_off_cuda(precision: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_precision(precision, torch.device("cpu"))
    assert err.value.key == "fit.precision"
    assert str(err.value) == f"expected a CUDA device for {precision}, received cpu"
    assert err.value.exit_code == 2
    check_precision("32", torch.device("cpu"))  # float32 runs anywhere


def test_to_device_on_cpu_is_the_plain_no_copy_path() -> None:
    host = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = to_device(host, torch.device("cpu"))
    assert out.device.type == "cpu" and not out.is_pinned()
    assert out.data_ptr() == host.ctypes.data  # shares the numpy buffer, as torch.as_tensor does
    np.testing.assert_array_equal(out.numpy(), host)


@cuda
@pytest.mark.cuda
def test_cuda_devices_and_pinned_copies() -> None:
    found = list_devices()
    for i in range(torch.cuda.device_count()):
        row = found[i + 1]
        major, minor = torch.cuda.get_device_capability(i)
        assert row.model == torch.cuda.get_device_name(i)
        assert row.compute_capability == f"{major}.{minor}"
        assert row.memory_mb is not None and row.memory_mb > 0
    host = np.random.default_rng(0).normal(size=(257, 5)).astype(np.float32)
    dev = to_device(host, torch.device("cuda"))
    assert dev.device.type == "cuda"
    np.testing.assert_array_equal(dev.cpu().numpy(), host)
    result = bench(found[:2], n=3, size=64)
    assert result["cpu"]["speedup"] == 1.0
    assert result["cuda:0"]["speedup"] == pytest.approx(result["cpu"]["seconds"] / result["cuda:0"]["seconds"])
    check_precision("16-mixed", torch.device("cuda"))
