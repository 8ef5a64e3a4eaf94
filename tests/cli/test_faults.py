"""Fault injection (issue 13, classes 1 and 6): closed streams, a broken pipe, file-size limits,
a full or read-only file system, kill -9 and resume, two resumes at once, SIGTERM in predict.
Each run is a real subprocess under resource limits; each fault ends with its documented exit
code and loses nothing that was there before."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.cli.hostile import GOOD, assert_clean_failure, env, limits, snapshot, trainctl
from tests.cli.test_hostile import X, cfg, setter
from tests.clihelp import run_weights

IO_EXIT = 7
BUSY_EXIT = 8
BROKEN_PIPE_EXIT = 141


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("faults")
    res = trainctl("train", cfg(tmp), "--runs-dir", tmp / "runs", "--json", cwd=tmp)
    assert res.returncode == 0, res.stderr
    np.save(tmp / "x.npy", np.random.default_rng(1).random((20000, 3)).astype(np.float32))
    return Path(json.loads(res.stdout)["run_dir"])


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp")]


# ------------------------------------------------------------------------------ closed streams
def test_train_with_closed_stdout_is_io_and_creates_no_run(tmp_path: Path) -> None:
    res = trainctl("train", cfg(tmp_path), "--runs-dir", tmp_path / "runs", cwd=tmp_path, close=(1,))
    assert_clean_failure(res, IO_EXIT, "stdout is closed")
    assert not (tmp_path / "runs").exists()


def test_predict_with_closed_stdout_is_io(finished: Path, tmp_path: Path) -> None:
    res = trainctl("predict", finished, finished.parents[1] / "x.npy", cwd=tmp_path, close=(1,))
    assert_clean_failure(res, IO_EXIT, "stdout is closed")


def test_predict_from_closed_stdin_is_io(finished: Path, tmp_path: Path) -> None:
    res = trainctl("predict", finished, "-", "-o", tmp_path / "out.csv", cwd=tmp_path, close=(0,))
    assert_clean_failure(res, IO_EXIT, "stdin is closed")
    assert not (tmp_path / "out.csv").exists()


def test_predict_into_head_exits_quietly(finished: Path, tmp_path: Path) -> None:
    """`predict ... | head -1`: the reader goes away; exit 141 without a word, as Unix tools do."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainctl", "predict", str(finished), str(finished.parents[1] / "x.npy")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(),
        cwd=tmp_path,
        preexec_fn=limits(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=240) == BROKEN_PIPE_EXIT, err
    assert first and err == ""


# ------------------------------------------------------------------------------ full disk, size limit, read-only
def test_predict_past_the_file_size_limit_keeps_the_old_output(finished: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("earlier,predictions\n")
    res = trainctl("predict", finished, finished.parents[1] / "x.npy", "-o", out, cwd=tmp_path, fsize=64 * 1024)
    assert_clean_failure(res, IO_EXIT, "EFBIG", "ulimit -f")
    assert out.read_text() == "earlier,predictions\n"
    assert temps(tmp_path) == []


def test_train_past_the_file_size_limit_is_io(tmp_path: Path) -> None:
    res = trainctl("train", cfg(tmp_path), "--runs-dir", tmp_path / "runs", cwd=tmp_path, fsize=300)
    assert_clean_failure(res, IO_EXIT, "EFBIG")


def test_predict_output_that_is_a_folder_is_io(finished: Path, tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()
    res = trainctl("predict", finished, finished.parents[1] / "x.npy", "-o", tmp_path / "out.csv", cwd=tmp_path)
    assert_clean_failure(res, IO_EXIT, "out.csv")
    assert list((tmp_path / "out.csv").iterdir()) == [] and temps(tmp_path) == []


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); needs root in a mount namespace")


@pytest.fixture
def tmpfs(tmp_path: Path):
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        _mount_tmpfs(where, options)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_train_on_a_full_disk_is_io_and_keeps_what_was_there(tmp_path: Path, tmpfs) -> None:
    disk = tmpfs("disk", "size=64k")
    keep = disk / "keep.txt"
    keep.write_text("keep me\n")
    (disk / "filler").write_bytes(b"\0" * (56 * 1024))
    res = trainctl("train", cfg(tmp_path), "--runs-dir", disk / "runs", cwd=tmp_path)
    assert_clean_failure(res, IO_EXIT, "ENOSPC")
    assert keep.read_text() == "keep me\n"


def test_train_into_a_read_only_runs_folder_is_io(tmp_path: Path, tmpfs) -> None:
    ro = tmpfs("ro", "ro,size=64k")
    res = trainctl("train", cfg(tmp_path), "--runs-dir", ro / "runs", cwd=tmp_path)
    assert_clean_failure(res, IO_EXIT, "EROFS", "read-only")


# ------------------------------------------------------------------------------ interruption
def _epochs_cfg(tmp: Path, epochs: int) -> Path:
    def edit(data: dict) -> None:
        setter("fit.epochs", epochs)(data)
        setter("fit.verbose", 2)(data)
        data["data"]["n"] = 512

    return cfg(tmp, edit)


def test_kill_9_during_training_then_resume_is_bit_identical(tmp_path: Path) -> None:
    config = _epochs_cfg(tmp_path, 60)
    ref = trainctl("train", config, "--runs-dir", tmp_path / "ref", "--json", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    ref_run = Path(json.loads(ref.stdout)["run_dir"])

    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainctl", "train", str(config), "--runs-dir", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**env(), "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
        preexec_fn=limits(),
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Epoch 20/"):
            break
    proc.kill()
    proc.wait(timeout=60)
    (run,) = runs.iterdir()
    stray = run / ".history.json.0123456789ab.tmp"  # what a save killed mid-write leaves
    stray.write_text("{")
    res = trainctl("train", "--resume", run, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert temps(run) == []
    got, want = run_weights(run), run_weights(ref_run)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


def test_run_killed_before_its_first_epoch_resumes_from_epoch_0(finished: Path, tmp_path: Path) -> None:
    """The folder as a kill before the first epoch ends leaves it: config and run.json, no state."""
    import shutil

    run = tmp_path / finished.name
    shutil.copytree(finished, run)
    want = run_weights(finished)
    for name in ("state", "history.json", "history.csv", "metrics.json", "model.json", "model.weights.h5"):
        target = run / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "running"}))
    res = trainctl("train", "--resume", run, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed_from_epoch"] == 0
    got = run_weights(run)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


def test_second_resume_of_a_locked_run_is_busy(finished: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / finished.name
    shutil.copytree(finished, run)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    before = snapshot(run, (run / ".trainctl.lock",))
    fd = os.open(run / ".trainctl.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the first resume, still running
        res = trainctl("train", "--resume", run, cwd=tmp_path)
    finally:
        os.close(fd)
    assert_clean_failure(res, BUSY_EXIT, "in use by another trainctl process")
    assert snapshot(run, (run / ".trainctl.lock",)) == before


def _catches_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_sigterm_stops_predict_without_partial_output(finished: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainctl", "predict", str(finished), "-", "-o", str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=tmp_path,
        preexec_fn=limits(),
    )
    assert proc.stdin is not None
    proc.stdin.write("".join(f"{a},{b},{c}\n" for a, b, c in X[:5]))
    proc.stdin.flush()  # stdin stays open: predict waits for more rows
    deadline = time.monotonic() + 200
    while not _catches_sigterm(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "SIGTERM" in err
    assert not out.exists() and temps(tmp_path) == []


def test_good_config_still_trains(tmp_path: Path) -> None:
    """The limits above are not what fails the cases: the same subprocess setup trains fine."""
    res = trainctl("train", cfg(tmp_path), "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert GOOD["name"] in res.stdout
