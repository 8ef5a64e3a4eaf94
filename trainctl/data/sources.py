"""Raw loaders, one per ``data.source``: arrays as the source holds them, before any step.

Every loader returns a :class:`Raw`; ``trainctl.data.dataset`` then splits and preprocesses.
``.npy``/``.npz`` files are always read with ``allow_pickle=False``: a data file must never be
able to run code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainctl.config.base import did_you_mean
from trainctl.data import download, idx
from trainctl.data.csvfile import load_csv
from trainctl.data.paths import resolve
from trainctl.errors import ConfigError, DataError

FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DIGIT_NAMES = [str(i) for i in range(10)]


@dataclass
class Raw:
    """Arrays straight from the source; x_test/y_test are None when it has no test split."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    task_hint: str = ""
    cache: str | None = None  # the batch path the source already chose (tables that stream), else None


def guess_task(y: np.ndarray) -> str:
    """Integer, boolean or 0/1 targets look like classification; other floats like regression."""
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return "classification"
    if np.issubdtype(y.dtype, np.floating) and y.size and np.all((y == 0) | (y == 1)):
        return "classification"
    return "regression"


# --- synthetic ---------------------------------------------------------------------------------

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


SEQUENCE_LENGTH = 30  # `sequences` defaults, used where features/classes are not given
SEQUENCE_VOCABULARY = 10


def _sequences(spec: Any, rng: np.random.Generator) -> Raw:
    """Token sequences for Embedding + RNN models: ids 1..classes-1, pre-padded with 0 (Keras's
    ``pad_sequences`` default) to ``features`` steps, lengths from half to all of it. Label 1 when
    token 1 occurs more often than token 2: order-free counting over a variable length, which an
    LSTM learns and a bag of the first few steps cannot."""
    steps = spec.features if "features" in spec.model_fields_set else SEQUENCE_LENGTH
    vocab = spec.classes if "classes" in spec.model_fields_set else SEQUENCE_VOCABULARY
    if vocab < 3:
        raise ConfigError(
            f"expected classes >= 3 for sequences (the vocabulary: padding 0 and tokens 1, 2), received {vocab}",
            key="data.classes",
        )
    n = spec.n
    lengths = rng.integers(max(1, steps // 2), steps + 1, size=n)
    tokens = rng.integers(1, vocab, size=(n, steps))
    x = np.where(np.arange(steps) >= steps - lengths[:, None], tokens, 0).astype(np.int64)
    y = ((x == 1).sum(axis=1) > (x == 2).sum(axis=1)).astype(np.float32).reshape(n, 1)
    return Raw(x, y, class_names=["0", "1"], task_hint="classification")


def _synthetic(spec: Any, base_dir: Path, seed: int) -> Raw:
    """Tutorial data. xor with ``n: 4`` is the truth table once; larger n tiles it, in order."""
    rng = np.random.default_rng(seed)
    n, kind = spec.n, spec.kind
    x: np.ndarray
    y: np.ndarray

    def noise(shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(0.0, spec.noise, shape) if spec.noise > 0 else np.zeros(shape)

    if kind in ("linear", "quadratic"):
        x = rng.uniform(spec.low, spec.high, (n, 1))
        y = 4 * x + 3 if kind == "linear" else 1.5 * x**2 - 12 * x + 0.5
        return Raw(x.astype(np.float32), (y + noise(y.shape)).astype(np.float32), task_hint="regression")
    if kind == "xor":
        if n < 4:
            raise ConfigError(f"expected n >= 4 for the xor table, received {n}", key="data.n")
        reps = -(-n // 4)
        x = np.tile(XOR_X, (reps, 1))[:n]
        y = np.tile(XOR_Y, (reps, 1))[:n]
        x = (x + noise(x.shape)).astype(np.float32)
        return Raw(x, y, class_names=["0", "1"], task_hint="classification")
    if kind == "sequences":
        return _sequences(spec, rng)
    if kind == "random":
        x = rng.uniform(spec.low, spec.high, (n, spec.features)).astype(np.float32)
        return Raw(x, rng.uniform(0.0, 1.0, (n, 1)).astype(np.float32), task_hint="regression")
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n, n_features=spec.features, centers=spec.classes, random_state=seed)
    return Raw(x.astype(np.float32), y.astype(np.int64), task_hint="classification")


# --- scikit-learn's bundled datasets (offline) ---------------------------------------------------


def _sklearn(spec: Any, base_dir: Path, seed: int) -> Raw:
    import sklearn.datasets as skd

    bunch = getattr(skd, f"load_{spec.name}")()
    names = getattr(bunch, "target_names", None)
    y = np.asarray(bunch.target)
    return Raw(
        np.asarray(bunch.data),
        y,
        class_names=None if names is None else [str(v) for v in names],
        task_hint="regression" if spec.name == "diabetes" else "classification",
    )


# --- numpy files ---------------------------------------------------------------------------------


def _np_load(path: Path, mmap: bool = False) -> Any:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"expected a numpy .npy/.npz file, received an unreadable one: {path} ({exc})") from exc


MMAP_MIN_BYTES = 64 * 2**20  # a .npy at least this big is read through a memory map, unless cache: memory


def _npy_file(path: Path, key: str, mmap: bool) -> np.ndarray:
    arr = _np_load(path, mmap=mmap and path.suffix.lower() == ".npy")
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise DataError(
            f"expected a single array (.npy) in {path}, received an .npz archive",
            key=key,
            hint="use `source: npz` for .npz files",
        )
    if arr.ndim == 0:
        raise DataError(f"expected an array with a batch axis in {path}, received a scalar", key=key)
    return arr


def _mapped(paths: list[Path], cache: str) -> bool:
    """Read through memory maps: ``cache: none``, or ``auto`` and the files are big together."""
    return cache == "none" or (cache == "auto" and sum(p.stat().st_size for p in paths) >= MMAP_MIN_BYTES)


def _npy_shards(base_dir: Path, names: str | list[str], key: str, cache: str = "memory") -> tuple[Any, list[str]]:
    """A .npy file, or a list/glob of .npy shards as one table; big ones (or any with ``cache:
    none``) through read-only memory maps, so only the pages a batch touches are read."""
    from trainctl.data.shards import expand, one_table

    paths = expand(base_dir, names, key)
    mmap = _mapped(paths, cache)
    arrays = [_npy_file(p, key, mmap) for p in paths]
    return one_table(arrays, [str(p) for p in paths], key), [str(p) for p in paths]


def _labels(y: Any) -> np.ndarray:
    return np.asarray(y)  # labels are one value per row: always in memory


def _npy(spec: Any, base_dir: Path, seed: int) -> Raw:
    from trainctl.data.shards import check_pairs

    x, x_names = _npy_shards(base_dir, spec.x, "data.x", spec.cache)
    y, y_names = _npy_shards(base_dir, spec.y, "data.y")
    if len(x_names) > 1 or len(y_names) > 1:
        check_pairs(_parts(x), x_names, _parts(y), y_names, "data.y")
    y = _labels(y)
    if (spec.x_test is None) != (spec.y_test is None):
        key = "data.y_test" if spec.y_test is None else "data.x_test"
        raise ConfigError("expected x_test and y_test together, received only one of them", key=key)
    if spec.x_test is None:
        return Raw(x, y, task_hint=guess_task(y))
    xt, xt_names = _npy_shards(base_dir, spec.x_test, "data.x_test", spec.cache)
    yt, yt_names = _npy_shards(base_dir, spec.y_test, "data.y_test")
    if len(xt_names) > 1 or len(yt_names) > 1:
        check_pairs(_parts(xt), xt_names, _parts(yt), yt_names, "data.y_test")
    _same_columns(x, x_names[0], xt, xt_names[0], "data.x_test")
    return Raw(x, y, xt, _labels(yt), task_hint=guess_task(y))


def _parts(a: Any) -> list[Any]:
    return list(getattr(a, "parts", [a]))


def _same_columns(x: Any, x_name: str, xt: Any, xt_name: str, key: str) -> None:
    """Test rows must look like training rows (shape per row and dtype), shards or not."""
    from trainctl.data.shards import check_alike

    check_alike([x, xt], [x_name, xt_name], key)


def _npz_shards(spec: Any, base_dir: Path, seed: int) -> Raw:
    """``paths:``: several archives with the same keys, read as one table per key."""
    from trainctl.data.shards import expand, npz_member, one_table

    paths = expand(base_dir, spec.paths, "data.paths")
    names = [str(p) for p in paths]
    mmap = _mapped(paths, spec.cache)

    def table(field: str, required: bool, mapped: bool) -> Any:
        key = getattr(spec, field)
        if key is None:
            return None
        present = [_has_member(p, key) for p in paths]
        if not any(present) and not required and field not in spec.model_fields_set:
            return None
        if not all(present):
            missing = names[present.index(False)]
            raise DataError(
                f"expected a key {key!r} in every shard, received none in {missing}",
                key=f"data.{field}",
                hint="each shard archive holds the same arrays",
            )
        arrays = [npz_member(p, key, f"data.{field}", mapped) for p in paths]
        return one_table(arrays, [f"{n}[{key}]" for n in names], "data.paths")

    from trainctl.data.shards import check_pairs

    x, y = table("x_train", True, mmap), table("y_train", True, False)
    check_pairs(_parts(x), names, _parts(y), names, "data.paths")
    xt, yt = table("x_test", False, mmap), table("y_test", False, False)
    if xt is not None and yt is not None:
        check_pairs(_parts(xt), names, _parts(yt), names, "data.paths")
    y = _labels(y)
    if (xt is None) != (yt is None):
        field = "y_test" if yt is None else "x_test"
        raise DataError(
            f"expected both test keys in the shards {names[0]} ..., received only one of x_test/y_test",
            key=f"data.{field}",
        )
    return Raw(x, y, xt, None if yt is None else _labels(yt), task_hint=guess_task(y))


def _has_member(path: Path, key: str) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return key + ".npy" in zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"expected an .npz archive in {path}, received an unreadable one ({exc})") from None


def _npz(spec: Any, base_dir: Path, seed: int) -> Raw:
    if spec.paths is not None:
        return _npz_shards(spec, base_dir, seed)
    path = resolve(base_dir, spec.path, "data.path")
    archive = _np_load(path)
    if isinstance(archive, np.ndarray):
        raise DataError(
            f"expected an .npz archive in {path}, received a single array (.npy)",
            key="data.path",
            hint="use `source: npy` for .npy files",
        )
    with archive:
        keys = list(archive.files)

        def get(field: str, required: bool) -> np.ndarray | None:
            name = getattr(spec, field)
            if name in keys:
                try:
                    return np.asarray(archive[name])
                except ValueError as exc:
                    raise DataError(
                        f"expected a numeric array under {name!r} in {path}, received: {exc}",
                        key=f"data.{field}",
                    ) from exc
            if name is None or not (required or field in spec.model_fields_set):
                return None
            guess = did_you_mean(name, keys)
            raise DataError(
                f"expected a key {name!r} in {path}, received keys {', '.join(keys) or '(none)'}",
                key=f"data.{field}",
                hint=f"did you mean {guess!r}?" if guess else None,
            )

        x, y = get("x_train", True), get("y_train", True)
        x_test, y_test = get("x_test", False), get("y_test", False)
    assert x is not None and y is not None
    if (x_test is None) != (y_test is None):
        field = "y_test" if y_test is None else "x_test"
        raise DataError(
            f"expected both test keys in {path}, received only one of x_test/y_test",
            key=f"data.{field}",
            hint=f"available keys: {', '.join(keys)}",
        )
    return Raw(x, y, x_test, y_test, task_hint=guess_task(y))


# --- IDX, MNIST, Fashion-MNIST -------------------------------------------------------------------


def _idx(spec: Any, base_dir: Path, seed: int) -> Raw:
    x, y = idx.read_images_labels(
        resolve(base_dir, spec.images, "data.images"), resolve(base_dir, spec.labels, "data.labels")
    )
    if (spec.test_images is None) != (spec.test_labels is None):
        key = "data.test_labels" if spec.test_labels is None else "data.test_images"
        raise ConfigError("expected test_images and test_labels together, received only one", key=key)
    if spec.test_images is None:
        return Raw(x, y, task_hint="classification")
    xt, yt = idx.read_images_labels(
        resolve(base_dir, spec.test_images, "data.test_images"),
        resolve(base_dir, spec.test_labels, "data.test_labels"),
    )
    return Raw(x, y, xt, yt, task_hint="classification")


def _keras_dataset(spec: Any, base_dir: Path, seed: int) -> Raw:
    """Same arrays as ``keras.datasets.<source>.load_data()``: uint8 (N, 28, 28), labels 0..9."""
    f = download.locate(spec.source, spec.path, base_dir=base_dir, download=spec.download)
    x, y = idx.read_images_labels(f[download.TRAIN_IMAGES], f[download.TRAIN_LABELS])
    xt, yt = idx.read_images_labels(f[download.TEST_IMAGES], f[download.TEST_LABELS])
    names = FASHION_NAMES if spec.source == "fashion_mnist" else DIGIT_NAMES
    return Raw(x, y, xt, yt, class_names=list(names), task_hint="classification")


def _table(spec: Any, base_dir: Path, seed: int) -> Raw:
    """CSV or Parquet: in memory when ``data.cache`` resolves to memory, else parsed once, chunk
    by chunk, into a scratch table on disk (see :mod:`trainctl.data.tables`)."""
    from trainctl.data import tables
    from trainctl.data.dataset import plan_cache

    path = resolve(base_dir, spec.path, "data.path")
    test_path = None if spec.test_path is None else resolve(base_dir, spec.test_path, "data.test_path")
    cache = "memory" if spec.cache == "memory" else plan_cache(spec.cache, tables.table_size(spec, path))
    if cache == "memory" and spec.source == "csv":
        x, y, xt, yt, names = load_csv(spec, base_dir)
    else:
        x, y, xt, yt, names = tables.load_table(spec, path, test_path, stream=cache == "none")
    task = "classification" if names else guess_task(y)
    return Raw(x, y, xt, yt, class_names=names, task_hint=task, cache=cache)


LOADERS: dict[str, Callable[[Any, Path, int], Raw]] = {
    "synthetic": _synthetic,
    "sklearn": _sklearn,
    "csv": _table,
    "parquet": _table,
    "npz": _npz,
    "npy": _npy,
    "idx": _idx,
    "mnist": _keras_dataset,
    "fashion_mnist": _keras_dataset,
}


def load_raw(spec: Any, *, base_dir: Path, seed: int) -> Raw:
    """Dispatch on ``spec.source``; relative paths resolve against ``base_dir``."""
    from trainctl.data.values import check_raw

    raw = LOADERS[spec.source](spec, Path(base_dir), seed)
    check_raw(raw, spec)
    return raw
