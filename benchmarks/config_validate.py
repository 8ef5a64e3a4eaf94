"""How long ``trainctl config validate`` takes on a 1 MB config and on the 9-level alias bomb.

    python benchmarks/config_validate.py [--reps 3]

Prints, for each input, the in-process ``load_config`` time (median of ``--reps``) and the
whole-process ``python -m trainctl config validate`` time with its peak RSS, plus the time libyaml
alone needs to parse the 1 MB file (the floor any YAML loader pays) and the loader's ratio to it.
Nothing here is asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def big_config(target: int = 1_000_000) -> str:
    """A valid config of about ``target`` bytes: ~21,000 Dense layers."""
    head = (
        "name: big\nseed: 1\ndata: {source: synthetic, kind: linear}\nmodel:\n  layers:\n"
        "    - {type: Dense, units: 8, activation: relu, input_shape: [3]}\n"
    )
    line = "    - {type: Dense, units: 8, activation: relu}\n"
    tail = "    - {type: Dense, units: 1}\ncompile:\n  optimizer: adam\n  loss: mse\n"
    return head + line * ((target - len(head) - len(tail)) // len(line)) + tail


def alias_bomb(levels: int = 9) -> str:
    text = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for k in range(1, levels):
        text += f"a{k}: &a{k} [" + ",".join([f"*a{k - 1}"] * 9) + "]\n"
    return text


def in_process(path: Path, reps: int) -> float:
    from trainctl.config import load_config
    from trainctl.errors import ConfigError

    times = []
    for _ in range(reps):
        start = time.perf_counter()
        with contextlib.suppress(ConfigError):
            load_config(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def whole_process(path: Path) -> tuple[float, int, float]:
    """(seconds, exit code, peak RSS in MB) of ``python -m trainctl config validate path``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainctl", "config", "validate", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        big, bomb = Path(tmp) / "big.yaml", Path(tmp) / "bomb9.yaml"
        big.write_text(big_config(), encoding="utf-8")
        bomb.write_text(alias_bomb(9), encoding="utf-8")
        # child processes first: Linux keeps a forked parent's peak RSS in the child's figure
        procs = {path: whole_process(path) for path in (big, bomb)}
        text = big.read_text(encoding="utf-8")
        start = time.perf_counter()
        yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        floor = time.perf_counter() - start
        in_process(big, 1)  # imports and pydantic schema build, once
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"yaml.load (libyaml) of {big.stat().st_size:,} bytes: {floor:.2f} s")
        for name, path in (("1 MB config", big), ("9-level alias bomb", bomb)):
            t = in_process(path, args.reps)
            wall, code, rss = procs[path]
            ratio = f", {t / floor:.1f}x yaml.load" if path is big else ""
            print(
                f"{name} ({path.stat().st_size:,} bytes): load_config {t:.3f} s{ratio}; "
                f"`trainctl config validate` {wall:.2f} s, exit {code}, peak RSS {rss:.0f} MB"
            )


if __name__ == "__main__":
    main()
