"""``trainctl devices [--bench] [--json]``: what this machine offers a run, and how fast it is."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from trainctl.cli.common import emit_json, handle_errors

_COLUMNS = ("device", "model", "memory", "capability", "threads", "cores")


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _table(rows: list[dict[str, Any]], bench: dict[str, dict[str, float]] | None) -> str:
    """Plain aligned columns: readable on a terminal and in a CI log alike."""
    head = list(_COLUMNS) + (["matmul s", "GFLOP/s", "speed-up"] if bench else [])
    body = []
    for d in rows:
        mem = f"{d['memory_mb'] / 1024:.1f} GiB" if d["memory_mb"] is not None else None
        line = [d["name"], d["model"], mem, d["compute_capability"], d["threads"], d["cores"]]
        if bench:
            b = bench[d["name"]]
            line += [f"{b['seconds']:.3f}", f"{b['gflops']:.0f}", f"{b['speedup']:.1f}x"]
        body.append([_cell(v) for v in line])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *body])


@handle_errors("as_json")
def devices(
    bench: Annotated[
        bool, typer.Option("--bench", help="Time 100 float32 1000x1000 matmuls per device (CUDA synced).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads (default: as train: cores - 1, at most 8).")
    ] = None,
    bench_n: Annotated[int, typer.Option("--bench-n", min=1, hidden=True)] = 100,
    bench_size: Annotated[int, typer.Option("--bench-size", min=1, hidden=True)] = 1000,
) -> None:
    """List the CPU and every CUDA device torch sees; --bench times a matmul on each."""
    import torch

    from trainctl.api import default_threads
    from trainctl.devices import bench as run_bench
    from trainctl.devices import list_devices

    torch.set_num_threads(threads or default_threads())  # what a run with these settings would use
    found = list_devices()
    rows = [d.as_dict() for d in found]
    timings = run_bench(found, bench_n, bench_size) if bench else None
    cuda = torch.version.cuda if torch.cuda.is_available() else None
    if as_json:
        emit_json(
            {
                "torch": torch.__version__,
                "cuda": cuda,
                "devices": [r | ({"bench": timings[r["name"]]} if timings else {}) for r in rows],
                "bench": {"matmuls": bench_n, "size": bench_size, "dtype": "float32"} if timings else None,
            }
        )
        return
    sys.stdout.write(f"torch {torch.__version__}, CUDA {cuda or 'not available'}\n")
    sys.stdout.write(_table(rows, timings) + "\n")
    if timings:
        sys.stdout.write(f"matmul: {bench_n} x float32 {bench_size}x{bench_size}; speed-up relative to cpu\n")
