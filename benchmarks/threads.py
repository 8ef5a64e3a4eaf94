"""How many CPU threads should a run use? Epoch time at 1 and 2 threads, quiet and contended.

    python benchmarks/threads.py [--reps 3] [--threads 1,2] [--budget 20]

Workload: the MNIST MLP (784-256-128-10, RMSprop, batch 128, 48k training rows; benchmarks/configs/
mlp.yaml), or the same MLP on 60k synthetic 784-feature blobs when MNIST is absent. Each
measurement is a fresh process running ``trainctl``'s own loop (``api.train``) for one epoch, or
until ``--budget`` seconds have passed: epoch seconds = steps per epoch / measured steps per second
(the first 10 steps are warm-up), so a badly oversubscribed setting cannot run for minutes.

"busy" runs the same measurement beside one competing process that spins a core
(``while True: pass``, bounded in time and killed at the end), the situation of a laptop running
something else or a shared CI machine. Settings are interleaved (rep 1: every setting, rep 2: ...)
so slow drifts hit all alike; figures are medians over ``--reps``. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WARMUP_STEPS = 10

SYNTHETIC = """
name: bench_threads_synthetic
seed: 0
device: cpu
data:
  source: synthetic
  kind: blobs
  n: 60000
  features: 784
  classes: 10
  x: [standardize]
  y: [{one_hot: 10}]
model:
  layers:
    - {type: Dense, units: 256, activation: sigmoid, input_shape: [784]}
    - {type: Dense, units: 128, activation: relu}
    - {type: Dense, units: 10, activation: softmax}
compile:
  optimizer: {type: RMSprop, learning_rate: 0.001}
  loss: categorical_crossentropy
  metrics: [accuracy]
fit: {epochs: 1, batch_size: 128, validation_split: 0.2, verbose: 0}
"""


def _data_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TRAINCTL_DATA_DIR", str(ROOT.parent / "shared" / "datasets"))
    return env


def _has_mnist(env: dict[str, str]) -> bool:
    return (Path(env["TRAINCTL_DATA_DIR"]) / "mnist" / "train-images-idx3-ubyte.gz").is_file()


class StepClock:
    """A trainctl Progress that timestamps steps and asks the loop to stop after the budget."""

    def __init__(self, budget: float, interrupt: list[int]) -> None:
        self.budget, self.interrupt = budget, interrupt
        self.steps_per_epoch = 0
        self.times: list[float] = []
        self.start = 0.0

    def epoch_begin(self, epoch: int, epochs: int, steps: int) -> None:
        self.steps_per_epoch = steps
        self.start = time.perf_counter()

    def step(self, step: int, peek: Any) -> None:
        now = time.perf_counter()
        self.times.append(now)
        if now - self.start > self.budget and len(self.times) > 2 * WARMUP_STEPS and not self.interrupt:
            self.interrupt.append(2)  # the loop stops cleanly after this step (Interrupted)

    def epoch_end(self, epoch: int, epochs: int, logs: Any, seconds: float) -> None:
        pass

    def epoch_seconds(self) -> float:
        done = len(self.times) - WARMUP_STEPS
        rate = done / (self.times[-1] - self.times[WARMUP_STEPS - 1])
        return self.steps_per_epoch / rate


def child(threads: int, budget: float, synthetic: bool) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    from trainctl import api
    from trainctl.config import load_config
    from trainctl.errors import Interrupted

    os.environ.update(_data_env())
    overrides = [f"threads={threads}", "fit.epochs=1"]
    if synthetic or not _has_mnist(dict(os.environ)):
        loaded = load_config(None, overrides, text=SYNTHETIC)
    else:  # never download: the benchmark reads the local IDX files only
        loaded = load_config(HERE / "configs" / "mlp.yaml", [*overrides, "data.download=false"])
    flag: list[int] = []
    clock = StepClock(budget, flag)
    # Interrupted: the budget ran out, and the step times are what we want
    with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(Interrupted):
        api.train(loaded, runs_dir=Path(tmp), progress=clock, interrupt=flag)
    import torch

    steps = len(clock.times)
    print(
        json.dumps(
            {
                "threads": torch.get_num_threads(),
                "steps_done": steps,
                "steps_per_epoch": clock.steps_per_epoch,
                "epoch_s": clock.epoch_seconds(),
                "capped": steps < clock.steps_per_epoch,
            }
        )
    )


def measure(threads: int, busy: bool, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(threads), "--budget", str(args.budget)]
    if args.synthetic:
        cmd.append("--synthetic")
    spinner = None
    if busy:  # bounded in time even if we die before the kill below
        limit = args.budget + 300
        spin = f"import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end: pass\n"
        spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=args.budget + 600)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", default="1,2", help="thread counts to compare")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds of training per measurement")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic data even if MNIST is there")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.budget, args.synthetic)
        return
    env = _data_env()
    args.synthetic = args.synthetic or not _has_mnist(env)
    counts = [int(t) for t in args.threads.split(",")]
    settings = [(t, busy) for busy in (False, True) for t in counts]
    samples: dict[tuple[int, bool], list[dict[str, Any]]] = {s: [] for s in settings}
    for rep in range(args.reps):
        for threads, busy in settings:
            r = measure(threads, busy, args, env)
            samples[(threads, busy)].append(r)
            print(
                f"rep {rep + 1}/{args.reps} threads={threads} {'busy' if busy else 'quiet'}: "
                f"{r['epoch_s']:.2f} s/epoch ({r['steps_done']}/{r['steps_per_epoch']} steps)",
                file=sys.stderr,
            )

    def cell(key: tuple[int, bool]) -> tuple[float, str]:
        times = [r["epoch_s"] for r in samples[key]]
        med = statistics.median(times)
        capped = "*" if any(r["capped"] for r in samples[key]) else ""
        return med, f"{med:.2f}{capped} ({min(times):.2f}–{max(times):.2f})"

    data = "synthetic blobs, 48k rows" if args.synthetic else "MNIST, 48k rows"
    lines = [
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, "
        f"Python {platform.python_version()}, reps={args.reps}, budget={args.budget:g} s, "
        f"{time.strftime('%Y-%m-%d')}; MLP 784-256-128-10, batch 128, {data}",
        "",
        "| threads | quiet s/epoch median (min–max) | busy s/epoch median (min–max) | busy ÷ quiet |",
        "|---|---|---|---|",
    ]
    for t in counts:
        quiet_s, quiet_text = cell((t, False))
        busy_s, busy_text = cell((t, True))
        lines.append(f"| {t} | {quiet_text} | {busy_text} | {busy_s / quiet_s:.1f}x |")
    lines += ["", "\\* at least one run hit the budget: its epoch time is extrapolated from its step rate."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
