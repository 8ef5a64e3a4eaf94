"""Benchmark suite: trainctl (a) vs a hand-written PyTorch loop (b) vs Keras-on-torch (c).

    TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/run.py [--reps 3] [--workloads mlp,tiny]

Runs are interleaved (a, b, c, a, b, c, ...) in fresh processes so that machine noise hits every
side alike; each figure is a median. Reports median seconds per epoch (the first epoch of each
process is dropped as warm-up; an epoch includes its end-of-epoch validation), steps per second,
peak RSS and time from process start to the first optimizer step, each also as a ratio to (b).
Writes a markdown table to benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EPOCHS = {"mlp": 3, "tiny": 400, "cnn": 3, "lstm": 3}
STEPS = {"mlp": 375, "tiny": 1, "cnn": 75, "lstm": 50}  # optimizer steps per epoch, the same on every side


def _run_measured(cmd: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """Like _spawn, but reads the child's own peak RSS with os.wait4."""
    start = time.time()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=HERE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read()[-2000:]}")
        return out.read(), start, usage.ru_maxrss / 1024.0


def run_trainctl(workload: str, threads: int, env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = HERE / "configs" / f"{workload}.yaml"
        cmd = [
            sys.executable,
            "-m",
            "trainctl",
            "train",
            str(cfg),
            "--runs-dir",
            tmp,
            "--json",
            f"threads={threads}",
            f"fit.epochs={EPOCHS[workload]}",
        ]
        if workload == "cnn":
            cmd.append(f"data.path={cnn_npz(env)}")
        out, start, rss = _run_measured(cmd, env)
        run = Path(json.loads(out)["run_dir"])
        history = json.loads((run / "history.json").read_text())
        info = json.loads((run / "run.json").read_text())
        return {
            "epoch_times": history["epoch_time"],
            "first_step_s": info["first_step_at"] - start,
            "rss_mb": rss,
            "steps_per_epoch": STEPS[workload],
        }


def run_script(script: str, workload: str, threads: int, env: dict[str, str], python: str = sys.executable) -> dict:
    cmd = [python, str(HERE / script), workload, "--epochs", str(EPOCHS[workload]), "--threads", str(threads)]
    out, start, rss = _run_measured(cmd, env)
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "epoch_times": result["epoch_times"],
        "first_step_s": result["first_step_at"] - start,
        "rss_mb": rss,
        "steps_per_epoch": result["steps_per_epoch"],
    }


_CACHE = Path(tempfile.gettempdir()) / "trainctl-bench"


def cnn_npz(env: dict[str, str]) -> Path:
    """The first 12k MNIST training images as an npz (the same rows the hand loop reads)."""
    import numpy as np

    sys.path.insert(0, str(HERE))
    from hand_loop import idx

    target = _CACHE / "cnn.npz"
    if not target.exists():
        root = Path(env["TRAINCTL_DATA_DIR"]) / "mnist"
        _CACHE.mkdir(exist_ok=True)
        np.savez(
            target,
            x_train=idx(root / "train-images-idx3-ubyte.gz")[:12000],
            y_train=idx(root / "train-labels-idx1-ubyte.gz")[:12000].astype(np.int64),
        )
    return target


def predict_inputs(env: dict[str, str]) -> tuple[Path, Path]:
    """A trained MNIST-MLP run (a short smoke run is enough) and all 70k MNIST images as float32 .npy."""
    _CACHE.mkdir(exist_ok=True)
    x_path = _CACHE / "x70k.npy"
    if not x_path.exists():
        # built in a child process: a child's peak RSS starts at its parent's, so this harness stays small
        code = (
            "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from hand_loop import idx; "
            "from pathlib import Path; root = Path(sys.argv[2]) / 'mnist'; "
            "x = np.concatenate([idx(root / f'{p}-images-idx3-ubyte.gz') for p in ('train', 't10k')]); "
            "np.save(sys.argv[3], x.reshape(-1, 784).astype(np.float32))"
        )
        subprocess.run([sys.executable, "-c", code, str(HERE), env["TRAINCTL_DATA_DIR"], str(x_path)], check=True)
    runs = _CACHE / "runs"
    found = sorted(runs.glob("bench_mlp-*")) if runs.exists() else []
    if not found:
        cmd = [
            sys.executable,
            "-m",
            "trainctl",
            "train",
            str(HERE / "configs" / "mlp.yaml"),
            "--smoke",
            "--runs-dir",
            str(runs),
            "--json",
        ]
        subprocess.run(cmd, check=True, env=env, capture_output=True, cwd=HERE)
        found = sorted(runs.glob("bench_mlp-*"))
    return found[-1], x_path


def run_predict(side: str, threads: int, env: dict[str, str]) -> dict:
    run, x_path = predict_inputs(env)
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "out.npy"
        if side == "trainctl":
            cmd = [sys.executable, "-m", "trainctl", "predict", str(run), str(x_path), "--output", str(out_file)]
            env = {**env, "OMP_NUM_THREADS": str(threads)}
        else:
            script = "hand_predict.py" if side == "hand" else "keras_predict.py"
            cmd = [sys.executable, str(HERE / script), str(run), str(x_path), str(out_file), str(threads)]
        _, start, rss = _run_measured(cmd, env)
        total = time.time() - start
        return {"epoch_times": [total, total], "first_step_s": total, "rss_mb": rss, "steps_per_epoch": 70000}


def summarize(samples: list[dict]) -> dict:
    epochs = [t for s in samples for t in s["epoch_times"][1:]]  # drop each process's warm-up epoch
    med = statistics.median(epochs)
    return {
        "epoch_s": med,
        "epoch_min": min(epochs),
        "epoch_max": max(epochs),
        "steps_per_s": samples[0]["steps_per_epoch"] / med,
        "rss_mb": statistics.median(s["rss_mb"] for s in samples),
        "first_step_s": statistics.median(s["first_step_s"] for s in samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workloads", default="mlp,cnn,tiny,lstm,predict")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if "TRAINCTL_DATA_DIR" not in env:
        env["TRAINCTL_DATA_DIR"] = str(ROOT.parent / "shared" / "datasets")
    sides = {
        "trainctl": lambda w: run_trainctl(w, args.threads, env),
        "hand": lambda w: run_script("hand_loop.py", w, args.threads, env),
    }
    if not args.no_keras and importlib.util.find_spec("keras") is not None:
        sides["keras-torch"] = lambda w: run_script("keras_loop.py", w, args.threads, {**env, "KERAS_BACKEND": "torch"})
    tf_python = os.environ.get("TRAINCTL_BENCH_TF_PYTHON")  # optional: a Python with tf_keras
    tf_sides = (
        {"tf-keras": lambda w: run_script("tfkeras_loop.py", w, args.threads, env, tf_python)} if tf_python else {}
    )
    rows: list[tuple[str, str, dict, dict]] = []
    for workload in args.workloads.split(","):
        if workload == "predict":
            runners = {
                "trainctl": lambda: run_predict("trainctl", args.threads, env),
                "hand": lambda: run_predict("hand", args.threads, env),
            }
            if "keras-torch" in sides:
                runners["keras-torch"] = lambda: run_predict("keras-torch", args.threads, env)
            psamples: dict[str, list[dict]] = {name: [] for name in runners}
            for _ in range(args.reps):
                for name, fn in runners.items():
                    psamples[name].append(fn())
            pstats = {name: summarize(s) for name, s in psamples.items()}
            for name, st in pstats.items():
                rows.append(("predict (70k rows, whole process)", name, st, pstats["hand"]))
            continue
        wl_sides = {**sides, **(tf_sides if workload in ("mlp", "cnn") else {})}
        samples: dict[str, list[dict]] = {name: [] for name in wl_sides}
        # tiny is cheap and its ~1 ms epochs are the most exposed to machine noise: more repetitions
        reps = max(args.reps, 5) if workload == "tiny" else args.reps
        for rep in range(reps):
            for name, fn in wl_sides.items():
                samples[name].append(fn(workload))
                print(
                    f"{workload} rep {rep + 1}/{reps} {name}: "
                    f"{statistics.median(samples[name][-1]['epoch_times'][1:]):.3f} s/epoch",
                    file=sys.stderr,
                )
        stats = {name: summarize(s) for name, s in samples.items()}
        base = stats["hand"]
        for name, st in stats.items():
            rows.append((workload, name, st, base))
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"threads={args.threads}, reps={args.reps}, {time.strftime('%Y-%m-%d')}",
        "",
        "| workload | side | s/epoch median (min–max) | × hand | steps/s | peak RSS MiB | × hand "
        "| start→first step s | × hand |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for workload, name, st, base in rows:
        lines.append(
            f"| {workload} | {name} | {st['epoch_s']:.4f} ({st['epoch_min']:.4f}–{st['epoch_max']:.4f}) | "
            f"{st['epoch_s'] / base['epoch_s']:.2f} | {st['steps_per_s']:.0f} | {st['rss_mb']:.0f} | "
            f"{st['rss_mb'] / base['rss_mb']:.2f} | {st['first_step_s']:.2f} | "
            f"{st['first_step_s'] / base['first_step_s']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
