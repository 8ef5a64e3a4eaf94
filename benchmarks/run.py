"""Benchmark suite: trainctl (a) vs a hand-written PyTorch loop (b) vs Keras-on-torch (c).

    TRAINCTL_DATA_DIR=../shared/datasets python benchmarks/run.py [--reps 3] [--workloads mlp,tiny]

Runs are interleaved (a, b, c, a, b, c, ...) in fresh processes so that machine noise hits every
side alike; each figure is a median. Reports median seconds per epoch (the first epoch of each
process is dropped as warm-up; an epoch includes its end-of-epoch validation), steps per second,
peak RSS, time from process start to the first optimizer step and the whole process's wall time,
each also as a ratio to (b). The epoch-time ratio is paired: the median, over repetitions, of
(a's median epoch / b's median epoch) within one repetition, whose processes ran back to back, so a
slow minute on a shared machine moves both sides of a ratio. Writes benchmarks/results.md.
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
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
from trainctl.host import cpu_model  # noqa: E402  (torch-free: children inherit the harness's peak RSS)

EPOCHS = {"mlp": 4, "tiny": 400, "cnn": 3, "lstm": 3}
STEPS = {"mlp": 375, "tiny": 1, "cnn": 75, "lstm": 50}  # optimizer steps per epoch, the same on every side


def _run_measured(cmd: list[str], env: dict[str, str]) -> tuple[str, float, float, float]:
    """Runs ``cmd``; returns its stdout, its start time, its own peak RSS (os.wait4) and its wall time."""
    start = time.time()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=HERE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read()[-2000:]}")
        return out.read(), start, usage.ru_maxrss / 1024.0, time.time() - start


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
        out, start, rss, total = _run_measured(cmd, env)
        run = Path(json.loads(out)["run_dir"])
        history = json.loads((run / "history.json").read_text())
        info = json.loads((run / "run.json").read_text())
        return {
            "epoch_times": history["epoch_time"],
            "first_step_s": info["first_step_at"] - start,
            "rss_mb": rss,
            "process_s": total,
            "steps_per_epoch": STEPS[workload],
        }


def run_script(script: str, workload: str, threads: int, env: dict[str, str], python: str = sys.executable) -> dict:
    cmd = [python, str(HERE / script), workload, "--epochs", str(EPOCHS[workload]), "--threads", str(threads)]
    out, start, rss, total = _run_measured(cmd, env)
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "epoch_times": result["epoch_times"],
        "first_step_s": result["first_step_at"] - start,
        "rss_mb": rss,
        "process_s": total,
        "steps_per_epoch": result["steps_per_epoch"],
    }


_CACHE = Path(tempfile.gettempdir()) / "trainctl-bench"


def _cached(name: str, code: str, env: dict[str, str]) -> Path:
    """``_CACHE/name``, built once by ``code`` (given the target path as ``out``) in a child process:
    a child's peak RSS starts at its parent's, so this harness never holds the arrays (or torch)."""
    target = _CACHE / name
    if not target.exists():
        _CACHE.mkdir(exist_ok=True)
        script = f"import sys, numpy as np, mnist; out = sys.argv[1]; {code}"
        subprocess.run([sys.executable, "-c", script, str(target)], check=True, env=env, cwd=HERE)
    return target


def cnn_npz(env: dict[str, str]) -> Path:
    """The cnn workload's MNIST rows as an npz (the same rows the hand loop reads)."""
    code = "r = mnist.CNN_ROWS; np.savez(out, x_train=mnist.train_images()[:r], y_train=mnist.train_labels()[:r])"
    return _cached("cnn.npz", code, env)


def predict_inputs(env: dict[str, str]) -> tuple[Path, Path]:
    """A trained MNIST-MLP run (a short smoke run is enough) and all 70k MNIST images as float32 .npy."""
    x_path = _cached("x70k.npy", "np.save(out, mnist.all_images().reshape(-1, 784).astype(np.float32))", env)
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
        _, _, rss, total = _run_measured(cmd, env)
        return {
            "epoch_times": [total, total],
            "first_step_s": total,
            "rss_mb": rss,
            "process_s": total,
            "steps_per_epoch": 70000,
        }


def _process_median(sample: dict) -> float:
    return statistics.median(sample["epoch_times"][1:])  # drop each process's warm-up epoch


def summarize(samples: list[dict | None], base: list[dict | None]) -> dict:
    """One side's figures; ``base`` is the hand loop's samples, rep by rep (None: that rep skipped this side)."""
    ran = [s for s in samples if s is not None]
    epochs = [t for s in ran for t in s["epoch_times"][1:]]
    med = statistics.median(epochs)
    pairs = [_process_median(s) / _process_median(b) for s, b in zip(samples, base, strict=True) if s and b]
    return {
        "epoch_s": med,
        "epoch_min": min(epochs),
        "epoch_max": max(epochs),
        "epoch_ratio": statistics.median(pairs),
        "steps_per_s": ran[0]["steps_per_epoch"] / med,
        "rss_mb": statistics.median(s["rss_mb"] for s in ran),
        "first_step_s": statistics.median(s["first_step_s"] for s in ran),
        "process_s": statistics.median(s["process_s"] for s in ran),
        "n": len(ran),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of trainctl and the hand loop (tiny: 5+)")
    parser.add_argument("--keras-reps", type=int, default=2, help="repetitions of the Keras sides (2-8x slower)")
    parser.add_argument("--workloads", default="mlp,cnn,tiny,lstm,predict")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    args = parser.parse_args()
    began = time.time()
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    # absolute: the children run in benchmarks/, and a relative path would point elsewhere there
    env["TRAINCTL_DATA_DIR"] = str(Path(env.get("TRAINCTL_DATA_DIR", ROOT.parent / "shared" / "datasets")).resolve())
    keras_env = {**env, "KERAS_BACKEND": "torch"}
    has_keras = not args.no_keras and importlib.util.find_spec("keras") is not None
    tf_python = os.environ.get("TRAINCTL_BENCH_TF_PYTHON")  # optional: a Python with tf_keras

    def runners(workload: str) -> dict[str, Callable[[], dict]]:
        if workload == "predict":
            names = ["trainctl", "hand", *(["keras-torch"] if has_keras else [])]
            return {
                n: (lambda n=n: run_predict(n, args.threads, keras_env if n == "keras-torch" else env)) for n in names
            }
        found: dict[str, Callable[[], dict]] = {
            "trainctl": lambda: run_trainctl(workload, args.threads, env),
            "hand": lambda: run_script("hand_loop.py", workload, args.threads, env),
        }
        if has_keras:
            found["keras-torch"] = lambda: run_script("keras_loop.py", workload, args.threads, keras_env)
        if tf_python and workload in ("mlp", "cnn"):
            found["tf-keras"] = lambda: run_script("tfkeras_loop.py", workload, args.threads, env, tf_python)
        return found

    rows: list[tuple[str, str, dict]] = []
    for workload in args.workloads.split(","):
        sides = runners(workload)
        # tiny is cheap and its ~1 ms epochs are the most exposed to machine noise: more repetitions
        reps = max(args.reps, 5) if workload == "tiny" else args.reps
        samples: dict[str, list[dict | None]] = {name: [] for name in sides}
        for rep in range(reps):
            for name, fn in sides.items():
                keras_side = name not in ("trainctl", "hand")
                sample = fn() if not keras_side or rep < args.keras_reps else None
                samples[name].append(sample)
                if sample is not None:
                    print(f"{workload} rep {rep + 1}/{reps} {name}: {_process_median(sample):.4f} s", file=sys.stderr)
        label = "predict (70k rows, whole process)" if workload == "predict" else workload
        for name, side_samples in samples.items():
            rows.append((label, name, summarize(side_samples, samples["hand"])))
    lines = [
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch_version()}, threads={args.threads}, reps={args.reps} (Keras sides {args.keras_reps}), "
        f"{time.strftime('%Y-%m-%d')}; the suite took {(time.time() - began) / 60:.1f} min",
        "",
        "| workload | side | s/epoch median (min–max) | × hand | steps/s | peak RSS MiB | × hand "
        "| start→first step s | × hand | process s | × hand |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    hand = {workload: st for workload, name, st in rows if name == "hand"}
    for workload, name, st in rows:
        base = hand[workload]
        lines.append(
            f"| {workload} | {name} | {st['epoch_s']:.4f} ({st['epoch_min']:.4f}–{st['epoch_max']:.4f}) | "
            f"{st['epoch_ratio']:.2f} | {st['steps_per_s']:.0f} | {st['rss_mb']:.0f} | "
            f"{st['rss_mb'] / base['rss_mb']:.2f} | {st['first_step_s']:.2f} | "
            f"{st['first_step_s'] / base['first_step_s']:.2f} | {st['process_s']:.2f} | "
            f"{st['process_s'] / base['process_s']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


def torch_version() -> str:
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    main()
