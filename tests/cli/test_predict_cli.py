"""``trainctl predict``: outputs against real Keras and numpy, every input and output format, errors,
and peak memory that does not grow with the input (measured in subprocesses)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.clihelp import CONFIGS, ROOT, Cli, write
from trainctl.cli.main import app

LOGITS = """
name: dlogits
seed: 2
data: {source: sklearn, name: digits, test_split: 0.2, x: [standardize]}
model:
  layers:
    - {type: Dense, units: 16, activation: relu, input_shape: [64]}
    - {type: Dense, units: 10}
compile: {optimizer: adam, loss: {type: sparse_categorical_crossentropy, from_logits: true}, metrics: [accuracy]}
fit: {epochs: 1, batch_size: 64}
"""

IMAGES = """
name: imgs
seed: 4
data: {source: npz, path: imgs.npz, x: [{scale: 255}]}
model:
  layers:
    - {type: Flatten, input_shape: [8, 8, 1]}
    - {type: Dense, units: 12, activation: relu}
    - {type: Dense, units: 10, activation: softmax}
compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
fit: {epochs: 1, batch_size: 64}
"""

IRIS = """
name: iris
seed: 8
data:
  {source: csv, path: iris.csv, target: species, features: [petal_length, sepal_width, petal_width], x: [standardize]}
model:
  layers:
    - {type: Dense, units: 6, activation: tanh, input_shape: [3]}
    - {type: Dense, units: 3, activation: softmax}
compile: {optimizer: {type: Adam, learning_rate: 0.05}, loss: sparse_categorical_crossentropy}
fit: {epochs: 3, batch_size: 16}
"""

WIDE = """
name: wide
seed: 1
data: {source: synthetic, kind: random, n: 300, features: 784, high: 255, x: [{reshape: [784]}, {scale: 255}]}
model:
  layers:
    - {type: Dense, units: 32, activation: relu, input_shape: [784]}
    - {type: Dense, units: 1}
compile: {optimizer: adam, loss: mse}
"""

IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return np.round(d.images * 255 / 16).astype(np.uint8), d.target


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, Path], Path]:
    from sklearn.datasets import load_iris

    tmp = tmp_path_factory.mktemp("pred")
    cli = Cli(tmp / "runs")
    images, labels = digit_images()
    np.savez(tmp / "imgs.npz", x_train=images[..., None], y_train=labels)
    iris = load_iris()
    names = iris.target_names[iris.target]
    lines = [",".join([*IRIS_COLUMNS, "species"])]
    lines += [",".join([*map(str, r), n]) for r, n in zip(iris.data, names, strict=True)]
    (tmp / "iris.csv").write_text("\n".join(lines) + "\n")
    runs = {
        "logits": Path(cli.train_json(write(tmp, LOGITS, "logits.yaml"))["run_dir"]),
        "images": Path(cli.train_json(write(tmp, IMAGES, "images.yaml"), "--smoke")["run_dir"]),
        "iris": Path(cli.train_json(write(tmp, IRIS, "iris.yaml"))["run_dir"]),
        "xor": Path(cli.train_json(CONFIGS / "xor.yaml", "fit.epochs=2")["run_dir"]),
        "wide": Path(cli.train_json(write(tmp, WIDE, "wide.yaml"), "--smoke")["run_dir"]),
    }
    return cli, runs, tmp


def predict(cli: Cli, *args: str | Path) -> None:
    res = cli("predict", *args)
    assert res.exit_code == 0, res.output + res.stderr


def csv_rows(text: str) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], np.array(rows[1:])


def keras_predict(run: Path, x: np.ndarray) -> np.ndarray:
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    model = keras.models.model_from_json((run / "model.json").read_text())
    model.load_weights(run / "model.weights.h5")
    return np.asarray(model.predict(x, verbose=0))


def test_raw_outputs_equal_real_keras(env, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    cli, runs, _ = env
    d = load_digits()
    x_tr = train_test_split(d.data, d.target, test_size=0.2, random_state=2, stratify=d.target)[0]
    std = x_tr.std(0)  # the saved standardize: training-split statistics, population std, 0 -> 1
    x_std = ((d.data - x_tr.mean(0)) / np.where(std == 0, 1, std)).astype(np.float32)
    np.save(tmp_path / "digits.npy", d.data)
    predict(cli, runs["logits"], tmp_path / "digits.npy", "-o", tmp_path / "logits.npy", "--batch-size", "100")
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), keras_predict(runs["logits"], x_std), atol=1e-5)

    images, _ = digit_images()
    np.save(tmp_path / "images.npy", images[:300, :, :, None])
    predict(cli, runs["images"], tmp_path / "images.npy", "-o", tmp_path / "img_out.npy")
    expected = keras_predict(runs["images"], images[:300, :, :, None].astype(np.float32) / 255)
    np.testing.assert_allclose(np.load(tmp_path / "img_out.npy"), expected, atol=1e-5)


def test_proba_and_classes(env, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    cli, runs, _ = env
    np.save(tmp_path / "x.npy", load_digits().data[:200])
    for flag, name in [("", "raw"), ("--proba", "proba"), ("--classes", "classes")]:
        predict(cli, runs["logits"], tmp_path / "x.npy", "-o", tmp_path / f"{name}.npy", *([flag] if flag else []))
    raw, proba = np.load(tmp_path / "raw.npy"), np.load(tmp_path / "proba.npy")
    e = np.exp(raw.astype(np.float64) - raw.max(1, keepdims=True))
    np.testing.assert_allclose(proba, e / e.sum(1, keepdims=True), atol=1e-6)  # logits -> softmax
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    classes = np.load(tmp_path / "classes.npy")  # sklearn's digits have class names "0".."9"
    assert classes.dtype.kind == "U" and classes.astype(int).tolist() == raw.argmax(1).tolist()

    # a single sigmoid unit: Keras's old predict_classes threshold, proba left as it is
    np.save(tmp_path / "xor.npy", np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.4, 0.6]], np.float32))
    predict(cli, runs["xor"], tmp_path / "xor.npy", "-o", tmp_path / "xr.npy")
    predict(cli, runs["xor"], tmp_path / "xor.npy", "-o", tmp_path / "xp.npy", "--proba")
    res = cli("predict", runs["xor"], tmp_path / "xor.npy", "--classes")
    header, cells = csv_rows(res.stdout)
    xr = np.load(tmp_path / "xr.npy")
    assert xr.shape == (5, 1) and np.array_equal(np.load(tmp_path / "xp.npy"), xr)
    assert header == ["class"] and cells[:, 0].tolist() == ["1" if v > 0.5 else "0" for v in xr[:, 0]]


def test_csv_npy_jsonl_read_back_equal_with_class_names(env, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    cli, runs, _ = env
    iris = load_iris()
    np.save(tmp_path / "x.npy", iris.data[:, [2, 1, 3]])  # the run's features, in its order
    for suffix in ("npy", "csv", "jsonl"):
        predict(cli, runs["iris"], tmp_path / "x.npy", "--output", tmp_path / f"p.{suffix}")
    ref = np.load(tmp_path / "p.npy")
    assert ref.shape == (150, 3) and ref.dtype == np.float32
    header, cells = csv_rows((tmp_path / "p.csv").read_text())
    assert header == list(iris.target_names)  # softmax columns are named by class
    np.testing.assert_array_equal(cells.astype(np.float64).astype(np.float32), ref)
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    np.testing.assert_array_equal(np.array([[r[n] for n in header] for r in lines], dtype=np.float32), ref)
    np.testing.assert_allclose(ref.sum(1), 1.0, atol=1e-6)
    predict(cli, runs["iris"], tmp_path / "x.npy", "--output", tmp_path / "c.jsonl", "--classes")
    got = [json.loads(line)["class"] for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert got == iris.target_names[ref.argmax(1)].tolist()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_stdin_csv_with_header_to_stdout(env, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    cli, runs, _ = env
    iris = load_iris()
    np.save(tmp_path / "x.npy", iris.data[:, [2, 1, 3]])
    predict(cli, runs["iris"], tmp_path / "x.npy", "-o", tmp_path / "ref.npy", "--proba")
    # columns in another order, plus the target: selected by name as in training
    text = "species,petal_width,sepal_length,petal_length,sepal_width\n" + "".join(
        f"{iris.target_names[t]},{r[3]},{r[0]},{r[2]},{r[1]}\n" for r, t in zip(iris.data, iris.target, strict=True)
    )
    res = cli.runner.invoke(
        app,
        ["predict", str(runs["iris"]), "-", "--proba"],
        input=text,
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    header, cells = csv_rows(res.stdout)
    assert header == list(iris.target_names)
    np.testing.assert_array_equal(cells.astype(np.float64).astype(np.float32), np.load(tmp_path / "ref.npy"))


def test_png_folder_and_idx_file_equal_npy_input(env, tmp_path: Path) -> None:
    from PIL import Image

    cli, runs, _ = env
    images, _ = digit_images()
    sample = images[40:47]
    (tmp_path / "pngs").mkdir()
    for i, img in enumerate(sample):
        Image.fromarray(img).convert("RGB").save(tmp_path / "pngs" / f"img_{i:02d}.png")  # gray as RGB
    idx = bytes([0, 0, 8, 3]) + np.array(sample.shape, ">u4").tobytes() + sample.tobytes()
    (tmp_path / "imgs-idx3-ubyte.gz").write_bytes(gzip.compress(idx))
    np.save(tmp_path / "imgs.npy", sample[..., None])
    predict(cli, runs["images"], tmp_path / "imgs.npy", "-o", tmp_path / "a.npy", "--batch-size", "3")
    predict(cli, runs["images"], tmp_path / "pngs", "-o", tmp_path / "b.npy", "--batch-size", "3")
    predict(cli, runs["images"], tmp_path / "imgs-idx3-ubyte.gz", "-o", tmp_path / "c.npy", "--batch-size", "3")
    ref = np.load(tmp_path / "a.npy")
    assert ref.shape == (7, 10)
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), ref)
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), ref)
    res = cli("predict", runs["images"], tmp_path / "imgs.npy", "--classes")  # npz data: no class names
    assert csv_rows(res.stdout)[1][:, 0].astype(int).tolist() == ref.argmax(1).tolist()


def test_errors_and_exit_codes(env, tmp_path: Path) -> None:
    cli, runs, _ = env
    res = cli("predict", runs["logits"], tmp_path / "missing.npy")
    assert res.exit_code == 3 and "missing.npy" in res.stderr
    np.save(tmp_path / "narrow.npy", np.zeros((5, 10), np.float32))
    res = cli("predict", runs["logits"], tmp_path / "narrow.npy", "-o", tmp_path / "out.csv")
    assert res.exit_code == 3 and "expected 64 features per sample, received 10" in res.stderr
    assert not list(tmp_path.glob("*out.csv*"))  # nothing half-written
    np.save(tmp_path / "ok.npy", np.zeros((5, 64), np.float32))
    res = cli("predict", runs["logits"], tmp_path / "ok.npy", "--classes", "--proba")
    assert res.exit_code == 2
    res = cli("predict", runs["logits"], tmp_path / "ok.npy", "-o", tmp_path / "out.txt")
    assert res.exit_code == 2 and ".csv, .npy, .jsonl" in res.stderr
    res = cli("predict", runs["wide"], tmp_path / "ok.npy", "--proba")  # mse regression: no probabilities
    assert res.exit_code == 2 and "classifier" in res.stderr
    broken = tmp_path / "broken"
    shutil.copytree(runs["logits"], broken)
    (broken / "model.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    res = cli("predict", broken, tmp_path / "ok.npy")
    assert res.exit_code == 4 and "model.weights.h5" in res.stderr


# ---------------------------------------------------------------------------------------------
# memory: peak RSS of a predict subprocess must not grow with the number of rows


def _write_npy(path: Path, rows: int) -> None:
    rng = np.random.default_rng(rows)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 784))
    for i in range(0, rows, 10_000):
        out[i : i + 10_000] = rng.random((min(10_000, rows - i), 784), dtype=np.float32)
    out.flush()
    del out


WRAPPER = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _start(*args: str | Path) -> subprocess.Popen[str]:
    """``trainctl predict`` in a child under a small wrapper that reports the child's peak RSS.

    The wrapper matters: Linux carries a process's peak RSS across fork+exec, so a child of this
    (large) pytest process would report pytest's own peak. A fresh small interpreter in between
    reads just its child's peak with ``getrusage(RUSAGE_CHILDREN)``.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    cmd = [sys.executable, "-c", WRAPPER, sys.executable, "-m", "trainctl", "predict", *map(str, args)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _peak_kib(proc: subprocess.Popen[str]) -> int:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    return int(stdout.strip())  # KiB on Linux


def test_peak_memory_does_not_grow_with_rows(env, tmp_path: Path) -> None:
    _, runs, _ = env
    _write_npy(tmp_path / "x10k.npy", 10_000)
    _write_npy(tmp_path / "x70k.npy", 70_000)  # 219 MB of float32 input
    procs = [  # side by side; each child's peak is its own
        _start(runs["wide"], tmp_path / "x10k.npy", "-o", tmp_path / "p10k.npy"),
        _start(runs["wide"], tmp_path / "x70k.npy", "-o", tmp_path / "p70k.npy"),
    ]
    mnist = _mnist_70k(tmp_path)
    if mnist is not None:  # the real thing: all 70,000 MNIST images through the same run
        procs.append(_start(runs["wide"], mnist, "-o", tmp_path / "mnist.npy"))
    peaks = [_peak_kib(p) for p in procs]
    small, large = peaks[0], peaks[1]
    print(f"\npredict peak RSS: 10k rows {small / 1024:.1f} MiB, 70k rows {large / 1024:.1f} MiB")
    assert np.load(tmp_path / "p10k.npy").shape == (10_000, 1)
    assert np.load(tmp_path / "p70k.npy", mmap_mode="r").shape == (70_000, 1)
    assert large <= 1.3 * small
    if mnist is not None:
        print(f"predict peak RSS: 70k real MNIST images from one IDX file {peaks[2] / 1024:.1f} MiB")
        got = np.load(tmp_path / "mnist.npy")
        assert got.shape == (70_000, 1)
        cli = Cli(tmp_path / "runs")
        t10k = _shared_mnist() / "t10k-images-idx3-ubyte.gz"
        predict(cli, runs["wide"], t10k, "-o", tmp_path / "t10k.npy")
        np.testing.assert_array_equal(got[60_000:], np.load(tmp_path / "t10k.npy"))  # test images come last
        assert peaks[2] <= 1.3 * small


def _shared_mnist() -> Path:
    from tests.conftest import SHARED_DATA

    return SHARED_DATA / "mnist"


def _mnist_70k(tmp_path: Path) -> Path | None:
    """Train + test MNIST images concatenated into one raw IDX file, when ../shared/datasets is there."""
    folder = _shared_mnist()
    if not folder.is_dir():
        return None
    path = tmp_path / "all-images-idx3-ubyte"
    with path.open("wb") as fh:
        fh.write(bytes([0, 0, 8, 3]) + np.array([70_000, 28, 28], ">u4").tobytes())
        for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
            with gzip.open(folder / name, "rb") as src:
                src.read(16)
                shutil.copyfileobj(src, fh, 1 << 20)
    return path
