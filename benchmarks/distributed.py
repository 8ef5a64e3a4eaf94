"""Distributed benchmark: ``--nproc-per-node 2`` against one process, at the same threads per process.

    TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/distributed.py [--reps 2] [--threads 1]

For the mlp and cnn workloads of ``run.py`` (the same configs and rows), runs one process and two
processes back to back, in fresh processes, ``--reps`` times, and reports the median seconds per
epoch (each run's first epoch dropped as warm-up; an epoch includes its validation, which every
rank runs whole), the training throughput in rows per second, and the paired ratio
``2-process throughput / 1-process throughput`` (the median over repetitions of the ratio within
one repetition). Then the cost of the per-step gradient all-reduce on its own: two gloo (or nccl)
ranks started by torchrun's agent all-reduce a buffer of each model's parameter count, as the
trainer does once per step. Writes ``benchmarks/results_distributed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from run import EPOCHS, STEPS, _run_measured, cnn_npz  # noqa: E402

PARAMS = {"mlp": 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10, "cnn": 320 + 18496 + 1600 * 10 + 10}
BATCH = 128


def train(workload: str, nproc: int, threads: int, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "trainctl", "train", str(HERE / "configs" / f"{workload}.yaml")]
        cmd += ["--runs-dir", tmp, "--json", f"threads={threads}", f"fit.epochs={EPOCHS[workload]}"]
        if workload == "cnn":
            cmd.append(f"data.path={cnn_npz(env)}")
        if nproc > 1:
            cmd += ["--nproc-per-node", str(nproc)]
        out, _, _, total = _run_measured(cmd, env)
        run = Path(json.loads(out)["run_dir"])
        history = json.loads((run / "history.json").read_text())
        epoch = statistics.median(history["epoch_time"][1:] or history["epoch_time"])
        return {"epoch_s": epoch, "rows_per_s": STEPS[workload] * BATCH / epoch, "process_s": total}


def allreduce_cost(env: dict[str, str], steps: int) -> dict[str, float]:
    """Milliseconds per all-reduce of each workload's gradient buffer, measured on rank 0."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "allreduce.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        cmd += [str(Path(__file__).resolve()), "--allreduce-worker", str(out), "--steps", str(steps)]
        subprocess.run(cmd, check=True, env=env, cwd=HERE, capture_output=True)
        return json.loads(out.read_text())


def allreduce_worker(out: str, steps: int) -> None:
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= 2
    device = torch.device(f"cuda:{os.environ['LOCAL_RANK']}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(1)
    dist.init_process_group("nccl" if cuda else "gloo")
    result = {}
    for name, n in PARAMS.items():
        buf = torch.ones(n + 2, device=device)  # the gradients, the batch loss and the interrupt flag
        for _ in range(10):
            dist.all_reduce(buf)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            dist.all_reduce(buf)
        if cuda:
            torch.cuda.synchronize()
        result[name] = (time.perf_counter() - start) / steps * 1000.0
    if dist.get_rank() == 0:
        Path(out).write_text(json.dumps(result | {"backend": "nccl" if cuda else "gloo"}))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of EACH process")
    parser.add_argument("--workloads", default="mlp,cnn")
    parser.add_argument("--steps", type=int, default=300, help="all-reduces timed per buffer")
    parser.add_argument("--allreduce-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allreduce_worker:
        allreduce_worker(args.allreduce_worker, args.steps)
        return
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    rows = []
    for workload in args.workloads.split(","):
        pairs = []
        for _ in range(args.reps):
            one = train(workload, 1, args.threads, env)
            two = train(workload, 2, args.threads, env)
            pairs.append((one, two))
            print(workload, f"1 proc {one['epoch_s']:.2f} s/epoch, 2 procs {two['epoch_s']:.2f} s/epoch", flush=True)
        ratio = statistics.median(b["rows_per_s"] / a["rows_per_s"] for a, b in pairs)
        one_s = statistics.median(a["epoch_s"] for a, _ in pairs)
        two_s = statistics.median(b["epoch_s"] for _, b in pairs)
        rows.append((workload, one_s, two_s, STEPS[workload] * BATCH / one_s, STEPS[workload] * BATCH / two_s, ratio))
    cost = allreduce_cost(env, args.steps)
    lines = [
        f"# Distributed benchmark ({args.reps} repetitions, {args.threads} thread(s) per process, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')})",
        "",
        "| workload | 1 process s/epoch | 2 processes s/epoch | 1 process rows/s | 2 processes rows/s | ratio 2/1 |",
        "|---|---|---|---|---|---|",
        *(f"| {w} | {a:.2f} | {b:.2f} | {ra:.0f} | {rb:.0f} | {r:.2f}x |" for w, a, b, ra, rb, r in rows),
        "",
        f"Per-step gradient all-reduce ({cost['backend']}, 2 ranks, one flat float32 buffer, mean of "
        f"{args.steps} calls): " + ", ".join(f"{w} ({PARAMS[w]:,} values) {cost[w]:.3f} ms" for w in PARAMS),
        "",
    ]
    text = "\n".join(lines)
    (HERE / "results_distributed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
