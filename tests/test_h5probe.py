"""HDF5 files are read in a child process before trainctl opens them: a child that dies on a signal
(what a file that crashes the HDF5 library does) or hangs makes the file an exit-4 error naming it,
for ``import``, ``predict`` and ``evaluate``; a clean file loads as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.clihelp import CONFIGS, Cli, run_weights
from trainctl import h5probe
from trainctl.errors import ArtifactError
from trainctl.importer import read_keras_model
from trainctl.serialization import load_model_from_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("probe")
    return Path(Cli(tmp / "runs").train_json(CONFIGS / "xor.yaml", "fit.epochs=1")["run_dir"])


def child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Make the probe child run ``body`` instead of reading the file."""
    script = tmp_path / "child.py"
    script.write_text(body, encoding="utf-8")
    monkeypatch.setattr(h5probe, "_SCRIPT", str(script))


SEGFAULT = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"


def test_a_child_killed_by_sigsegv_refuses_the_run_folder_with_exit_4(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_model_from_dir(run)  # the real child reads the real file cleanly
    child(tmp_path, monkeypatch, SEGFAULT)
    with pytest.raises(ArtifactError) as exc:
        load_model_from_dir(run)
    assert exc.value.exit_code == 4
    text = exc.value.render()
    assert "SIGSEGV" in text and str(run / "model.weights.h5") in text


def test_predict_on_a_crashing_file_exits_4_naming_it(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from trainctl.cli.main import app

    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 2), dtype=np.float32))
    child(tmp_path, monkeypatch, SEGFAULT)
    result = CliRunner().invoke(app, ["predict", str(run), str(x)])
    assert result.exit_code == 4, result.output
    assert "HDF5 library crashed" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("form", ["json+weights", "h5", "keras"])
def test_import_of_a_crashing_file_is_refused(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    import zipfile

    if form == "json+weights":
        files = [run / "model.json", run / "model.weights.h5"]
    elif form == "h5":
        files = [run / "model.h5"]
    else:
        files = [tmp_path / "m.keras"]
        with zipfile.ZipFile(files[0], "w") as zf:
            zf.writestr("config.json", (run / "model.json").read_text())
            zf.writestr("model.weights.h5", (run / "model.weights.h5").read_bytes())
    read_keras_model(files)  # clean with the real child
    child(tmp_path, monkeypatch, SEGFAULT)
    with pytest.raises(ArtifactError) as exc:
        read_keras_model(files)
    assert "SIGSEGV" in exc.value.render()


def test_a_child_that_hangs_is_killed_and_the_file_refused(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child(tmp_path, monkeypatch, "import time\ntime.sleep(600)\n")
    monkeypatch.setattr(h5probe, "PROBE_TIMEOUT_S", 0.5)
    with pytest.raises(ArtifactError) as exc:
        load_model_from_dir(run)
    assert "did not finish within" in exc.value.render()


def test_a_python_error_in_the_child_leaves_the_verdict_to_the_loader(run: Path, tmp_path: Path) -> None:
    """A gzip chunk with garbage in it: h5py raises in the child (exit 1, not a crash), and the
    loader's own read then names the dataset it cannot read (exit 4), as it did without the probe."""
    weights = tmp_path / "model.weights.h5"
    with h5py.File(run / "model.weights.h5", "r") as src, h5py.File(weights, "w") as dst:

        def copy(name: str, obj: object) -> None:  # returns None: visititems stops at any value
            if isinstance(obj, h5py.Group):
                dst.require_group(name)
            elif isinstance(obj, h5py.Dataset):
                gzip = {"compression": "gzip", "chunks": obj.shape} if obj.ndim else {}
                dst.create_dataset(name, data=obj[()], **gzip)

        src.visititems(copy)
        for k, v in src.attrs.items():
            dst.attrs[k] = v
    with h5py.File(weights, "r") as f:
        chunks: list[tuple[int, int]] = []
        f.visititems(
            lambda n, o: (
                chunks.append((o.id.get_chunk_info(0).byte_offset, o.id.get_chunk_info(0).size))
                if isinstance(o, h5py.Dataset) and o.compression
                else None
            )
        )
    data = bytearray(weights.read_bytes())
    offset, size = max(chunks, key=lambda t: t[1])
    data[offset : offset + size] = bytes([0x5A]) * size
    weights.write_bytes(bytes(data))
    code = subprocess.run([sys.executable, "-I", h5probe._SCRIPT, str(weights)], check=False).returncode
    assert code == 1
    with pytest.raises(ArtifactError) as exc:
        read_keras_model([run / "model.json", weights])
    assert "cannot read the dataset at layers/dense/vars/0" in exc.value.render()


def test_the_child_reads_every_dataset_without_importing_torch_or_trainctl(run: Path) -> None:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['probe', {str(run / 'model.h5')!r}]\n"
        "try:\n"
        f"    runpy.run_path({h5probe._SCRIPT!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'trainctl')))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_wrong_size_in_the_global_heap_hangs_h5py_and_the_file_is_refused(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by fuzzing: in model.h5 the ``keras_version`` string lives in a global heap as
    (index, refcount, reserved, size=6, "3.15.1"); a size of 46 makes the HDF5 library loop
    forever when the attribute is read. The real child hangs, is killed, and import exits 4."""
    data = bytearray((run / "model.h5").read_bytes())
    at = data.rfind(b"3.15.1")
    assert data[at - 8 : at] == (6).to_bytes(8, "little")  # the heap object's size field
    data[at - 8] = 46
    bad = tmp_path / "model.h5"
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(h5probe, "PROBE_TIMEOUT_S", 3.0)
    with pytest.raises(ArtifactError) as exc:
        read_keras_model([bad])
    assert exc.value.exit_code == 4
    assert "did not finish within 3 s" in exc.value.render() and str(bad) in exc.value.render()


def test_a_bad_string_type_segfaults_h5py_and_the_cli_exits_4(run: Path, tmp_path: Path) -> None:
    """Found by fuzzing: the ``backend`` attribute of model.h5 is a variable-length string, whose
    datatype message is ``0x19`` (version 1, class 9) then a bit field ``0x01`` (UTF-8 string);
    a bit field of ``0x4F`` crashes the HDF5 library with SIGSEGV. ``trainctl import`` exited
    with signal 11 (139) before the probe; now the child dies instead and the CLI exits 4."""
    from tests.bounded import run_cli

    data = bytearray((run / "model.h5").read_bytes())
    at = data.find(b"backend\x00\x19\x01")
    assert at > 0
    data[at + 9] = 0x4F
    bad = tmp_path / "model.h5"
    bad.write_bytes(bytes(data))
    crash = subprocess.run([sys.executable, "-I", h5probe._SCRIPT, str(bad)], check=False)
    assert crash.returncode == -11  # the real HDF5 library, in the real child
    proc = run_cli("import", bad, "--out", tmp_path / "out", mem_mb=4000)
    assert proc.returncode == 4, proc.stderr
    assert "HDF5 library crashed reading this file (SIGSEGV" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_child_stopped_by_another_signal_does_not_blame_the_file(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child(tmp_path, monkeypatch, "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    with pytest.raises(ArtifactError) as exc:
        load_model_from_dir(run)
    text = exc.value.render()
    assert "stopped by SIGTERM" in text and "crashed" not in text


def test_the_child_dies_with_its_parent(run: Path, tmp_path: Path) -> None:
    """``kill -9`` of trainctl while the child loops on a bad file: the kernel ends the child too
    (PR_SET_PDEATHSIG), so no orphan keeps spinning."""
    import os
    import signal
    import time

    data = bytearray((run / "model.h5").read_bytes())
    at = data.rfind(b"3.15.1")
    data[at - 8] = 46  # the global-heap size that makes h5py loop (see above)
    bad = tmp_path / "model.h5"
    bad.write_bytes(bytes(data))
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import time\nfrom trainctl.h5probe import H5Probe\n"
         f"p = H5Probe({str(bad)!r})\nprint(p.proc.pid, flush=True)\ntime.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    time.sleep(1.5)  # the child has imported h5py and is looping in the file
    assert Path(f"/proc/{pid}").exists()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            break
        if state == "Z":  # dead, waiting for its new parent to reap it
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the probe child outlived its parent")


def test_when_no_child_can_start_the_file_is_read_as_before(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandbox that forbids new processes must not make every run folder unreadable: the
    weights are still read (each parameter equals an array of model.weights.h5)."""
    stored = list(run_weights(run).values())

    def refuse(*args: object, **kwargs: object) -> None:
        raise BlockingIOError("Resource temporarily unavailable")

    monkeypatch.setattr(h5probe.subprocess, "Popen", refuse)
    params = [p.detach().numpy() for p in load_model_from_dir(run).parameters()]
    assert params and all(any(a.shape == b.shape and np.array_equal(a, b) for b in stored) for a in params)
