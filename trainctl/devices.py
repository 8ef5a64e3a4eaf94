"""Devices: what trainctl can run on, how fast, and the rules of its opt-in speed features.

One place knows CUDA's rules, so ``trainctl devices``, the run start-up checks and the training loop
agree: mixed precision is CUDA-only, host-to-GPU copies go through pinned memory, and a failing
``torch.compile`` is reported as a config problem (``fit.compile``), not a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from trainctl.errors import ConfigError
from trainctl.host import cpu_cores, cpu_model, host_memory_mb

PRECISIONS = ("32", "bf16-mixed", "16-mixed")  # Lightning's names
_AMP_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


@dataclass(frozen=True)
class DeviceInfo:
    """One device as ``trainctl devices`` lists it; CPU-only and CUDA-only fields are None elsewhere."""

    name: str  # "cpu", "cuda:0"
    model: str  # CPU model name or GPU name
    memory_mb: int | None  # host RAM for the CPU, total device memory for a GPU
    threads: int | None = None  # CPU: torch's intra-op threads in this process
    cores: int | None = None  # CPU: cores this process may run on
    compute_capability: str | None = None  # CUDA: "major.minor"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_devices() -> list[DeviceInfo]:
    """The CPU first, then every CUDA device torch sees."""
    found = [DeviceInfo("cpu", cpu_model(), host_memory_mb(), torch.get_num_threads(), cpu_cores())]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found.append(
                DeviceInfo(
                    f"cuda:{i}",
                    props.name,
                    int(props.total_memory // 2**20),
                    compute_capability=f"{props.major}.{props.minor}",
                )
            )
    return found


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_seconds(device: str | torch.device, n: int = 100, size: int = 1000) -> float:
    """Seconds for ``n`` float32 ``size``x``size`` matmuls, after one warm-up (CUDA is synced)."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=gen).to(dev)
    b = torch.rand(size, size, generator=gen).to(dev)
    out = torch.mm(a, b)  # warm-up: thread pool, cuBLAS handle, allocator
    _sync(dev)
    start = time.perf_counter()
    for _ in range(n):
        torch.mm(a, b, out=out)
    _sync(dev)
    return time.perf_counter() - start


def bench(devices: list[DeviceInfo], n: int = 100, size: int = 1000) -> dict[str, dict[str, float]]:
    """Per device: seconds, GFLOP/s and the speed-up over the CPU (the first device listed)."""
    flops = 2.0 * size**3 * n
    seconds = {d.name: matmul_seconds(d.name, n, size) for d in devices}
    base = seconds.get("cpu", next(iter(seconds.values())))
    return {
        name: {"seconds": s, "gflops": flops / max(s, 1e-12) / 1e9, "speedup": base / max(s, 1e-12)}
        for name, s in seconds.items()
    }


# ---------------------------------------------------------------------------------------------
# the loop's opt-in speed features


def check_precision(precision: str, device: torch.device) -> None:
    """Mixed precision needs CUDA (and bf16 needs compute capability 8.0+): refuse at start."""
    if precision == "32":
        return
    if device.type != "cuda":
        raise ConfigError(
            f"expected a CUDA device for {precision}, received {device}",
            key="fit.precision",
            hint="use fit.precision: '32' on this device",
        )
    if precision == "bf16-mixed" and torch.cuda.get_device_capability(device) < (8, 0):
        raise ConfigError(
            f"expected a CUDA device with bfloat16 support (compute capability 8.0+) for bf16-mixed, "
            f"received {torch.cuda.get_device_name(device)}",
            key="fit.precision",
            hint="use fit.precision: 16-mixed on this GPU",
        )


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision name; None means plain float32."""
    if precision not in PRECISIONS:
        raise ConfigError(f"expected one of {', '.join(PRECISIONS)}, received {precision!r}", key="fit.precision")
    return _AMP_DTYPES.get(precision)


def to_device(data: Any, device: torch.device) -> torch.Tensor:
    """A host array on ``device``. CUDA copies go through pinned memory, asynchronously (the caching
    host allocator keeps the staging buffer alive until the copy is done); CPU is a no-op."""
    from trainctl.model.tensors import TensorTuple

    if isinstance(data, TensorTuple):  # one array per model input or output
        return TensorTuple(to_device(a, device) for a in data)  # type: ignore[return-value]
    tensor = torch.as_tensor(data)
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    if not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def _compile_error(exc: BaseException) -> ConfigError:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    reason = (lines[0] if lines else type(exc).__name__)[:300]
    return ConfigError(
        f"expected torch.compile to work on this machine, received {type(exc).__name__}: {reason}",
        key="fit.compile",
        hint="set fit.compile: false (torch.compile needs a C++ compiler on CPU, Triton on CUDA)",
    )


def compile_forward(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` of a forward function. Compilation is lazy (first call, and again for a
    new batch shape), so a compiler failure then is turned into a ConfigError on ``fit.compile``.

    The module itself is not wrapped, so its ``state_dict`` keys (and saved files) stay the same.
    """
    try:
        compiled = torch.compile(fn)
    except Exception as exc:  # e.g. "Dynamo is not supported on Python 3.x"
        raise _compile_error(exc) from exc
    from torch._dynamo.exc import TorchDynamoException

    def call(x: torch.Tensor) -> torch.Tensor:
        try:
            return compiled(x)
        except TorchDynamoException as exc:
            raise _compile_error(exc) from exc

    return call
