"""``source: image_directory``: Keras's ``image_dataset_from_directory`` without TensorFlow.

The file listing, the seeded file split and the labels follow Keras 3.15.1
(``keras/src/utils/dataset_utils.py``; see ``shared/notes/keras-functional.md`` §7). Pixels match
TensorFlow's non-antialiased bilinear resize (half-pixel centres), which is what Keras uses; it is
done here in numpy so worker processes need no torch. numpy + Pillow (+ ``simplejpeg`` when
installed, which decodes JPEG exactly as TensorFlow does) only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from trainctl.errors import ConfigError, DataError

ALLOWED = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # Keras's list, compared case-insensitively
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
PIL_MODE = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


# ---------------------------------------------------------------------------------------------
# listing and splitting


def _walk(folder: Path, follow_links: bool) -> list[str]:
    """Every allowed file under ``folder``, recursively, sorted by folder path then file name."""
    found: list[str] = []
    for root, _, files in sorted(os.walk(folder, followlinks=follow_links), key=lambda t: t[0]):
        found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(ALLOWED)]
    return found


def list_files(
    directory: Path, *, labels: Any = "inferred", class_names: list[str] | None = None, follow_links: bool = False
) -> tuple[list[str], np.ndarray | None, list[str]]:
    """``(paths, labels, class_names)`` in Keras's order: class folders in code-point order (or
    ``class_names``' order), each walked recursively; with ``labels`` None or a list, the whole
    folder is walked. Raises DataError (exit 3) for a missing folder, an empty class, no images."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"expected a folder of images at {directory}, found none", key="data.directory")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory)) if (directory / d).is_dir() and not d.startswith(".")]
        if class_names is not None:
            missing = [c for c in class_names if c not in subdirs]
            if missing:
                raise DataError(
                    f"expected class_names to be sub-folders of {directory}, received {missing} "
                    f"(sub-folders: {subdirs})",
                    key="data.class_names",
                )
            subdirs = list(class_names)
        paths: list[str] = []
        label_list: list[int] = []
        for i, name in enumerate(subdirs):
            files = _walk(directory / name, follow_links)
            if not files:
                raise DataError(
                    f"expected at least one image ({', '.join(ALLOWED)}) in the class folder {directory / name}, "
                    "found none",
                    key="data.directory",
                    hint="remove the empty folder or add images to it",
                )
            paths += files
            label_list += [i] * len(files)
        if not paths:
            raise DataError(
                f"expected one sub-folder of images per class in {directory}, found no images",
                key="data.directory",
                hint="put the images in <directory>/<class name>/, or set labels: null",
            )
        return paths, np.asarray(label_list, dtype=np.int64), subdirs
    paths = _walk(directory, follow_links)
    if not paths:
        raise DataError(f"expected images ({', '.join(ALLOWED)}) in {directory}, found none", key="data.directory")
    if labels is None:
        return paths, None, []
    if len(labels) != len(paths):
        raise DataError(
            f"expected one label per image ({len(paths)} files in {directory}), received {len(labels)} labels",
            key="data.labels",
        )
    return paths, np.asarray(labels, dtype=np.int64), []


def split_files(
    paths: list[str], labels: np.ndarray | None, validation_split: float | None, seed: int
) -> tuple[tuple[list[str], np.ndarray | None], tuple[list[str], np.ndarray | None]]:
    """Keras's shuffle-then-split: one ``RandomState(seed).shuffle`` of the sorted list (the labels
    get the same permutation), then the last ``int(v * N)`` files validate."""
    order = np.arange(len(paths))
    np.random.RandomState(seed).shuffle(order)
    shuffled = [paths[i] for i in order]
    lab = None if labels is None else labels[order]
    n_val = int(validation_split * len(paths)) if validation_split else 0
    cut = len(paths) - n_val
    if validation_split and (n_val == 0 or cut == 0):
        raise DataError(
            f"expected validation_split={validation_split} of {len(paths)} files to leave both subsets "
            f"non-empty, received {cut} training and {n_val} validation files",
            key="data.validation_split",
            hint="use more images or a different validation_split",
        )
    return (shuffled[:cut], None if lab is None else lab[:cut]), (shuffled[cut:], None if lab is None else lab[cut:])


# ---------------------------------------------------------------------------------------------
# decoding and resizing


def _read(path: str, color_mode: str) -> np.ndarray:
    """uint8 (H, W, C). JPEG through simplejpeg (TensorFlow's fast integer IDCT) when installed."""
    if path.lower().endswith((".jpg", ".jpeg")):
        try:
            import simplejpeg  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            simplejpeg = None
        if simplejpeg is not None and color_mode in ("rgb", "grayscale"):
            try:
                with open(path, "rb") as fh:
                    fmt = "RGB" if color_mode == "rgb" else "Gray"
                    img = simplejpeg.decode_jpeg(fh.read(), colorspace=fmt, fastdct=True, fastupsample=False)
                return np.asarray(img, dtype=np.uint8).reshape(img.shape[0], img.shape[1], -1)
            except (ValueError, OSError):
                pass  # let Pillow try, and name the file if it cannot
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            arr = np.asarray(opened.convert(PIL_MODE[color_mode]), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(
            f"expected a readable image, received a corrupt or unreadable file: {path} ({exc})",
            key="data.directory",
            hint="delete or replace the file, or set data.bad_images: skip",
        ) from None
    return arr.reshape(arr.shape[0], arr.shape[1], -1)


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TensorFlow's half-pixel bilinear sampling along one axis (no antialiasing)."""
    scale = n_in / n_out
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


def resize_bilinear(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 (h, w, C) from (H, W, C), as ``tf.image.resize(bilinear, antialias=False)``."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img.astype(np.float32)
    y0, y1, fy = _axis_weights(img.shape[0], h)
    x0, x1, fx = _axis_weights(img.shape[1], w)
    a = img.astype(np.float32)
    top = a[y0] + (a[y1] - a[y0]) * fy[:, None, None]
    return top[:, x0] + (top[:, x1] - top[:, x0]) * fx[None, :, None]


def resize_nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    ys = np.minimum(np.floor((np.arange(h) + 0.5) * img.shape[0] / h).astype(np.int64), img.shape[0] - 1)
    xs = np.minimum(np.floor((np.arange(w) + 0.5) * img.shape[1] / w).astype(np.int64), img.shape[1] - 1)
    return img[ys][:, xs].astype(np.float32)


def _crop_box(height: int, width: int, target: tuple[int, int]) -> tuple[int, int, int, int]:
    """The centred window with the target's aspect ratio (Keras's ``crop_to_aspect_ratio``)."""
    th, tw = target
    crop_h = min(height, int(width * th / tw))
    crop_w = min(width, int(height * tw / th))
    crop_h, crop_w = max(crop_h, 1), max(crop_w, 1)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return top, left, crop_h, crop_w


def _pad(img: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """Zero-pad to the target's aspect ratio as Keras 3 does: ``start = (padded - dim) // 2`` on
    BOTH sides, so an odd total pads one row or column less than the ratio asks for."""
    height, width = img.shape[:2]
    th, tw = target
    start_h = (max(height, int(width * th / tw)) - height) // 2
    start_w = (max(width, int(height * tw / th)) - width) // 2
    out = np.zeros((height + 2 * start_h, width + 2 * start_w, img.shape[2]), dtype=img.dtype)
    out[start_h : start_h + height, start_w : start_w + width] = img
    return out


def decode(
    path: str,
    *,
    color_mode: str = "rgb",
    image_size: tuple[int, int] = (256, 256),
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
) -> np.ndarray:
    """One image as Keras yields it: float32 (h, w, C) in 0..255."""
    img = _read(path, color_mode)
    if crop_to_aspect_ratio:
        top, left, ch, cw = _crop_box(img.shape[0], img.shape[1], image_size)
        img = img[top : top + ch, left : left + cw]
    elif pad_to_aspect_ratio:
        img = _pad(img, image_size)
    if interpolation == "nearest":
        return resize_nearest(img, image_size)
    return resize_bilinear(img, image_size)


class ImageRows:
    """Image files decoded one WHOLE batch at a time (in a streaming source's worker processes).
    ``paths`` is one numpy string array, so forked workers do not copy it page by page."""

    def __init__(self, paths: list[str], labels: np.ndarray | None, options: dict[str, Any], transform: Any = None):
        self.paths = np.asarray(paths)
        self.labels = labels
        self.options = options
        self.transform = transform
        self.shape = (len(paths), *options["image_size"], CHANNELS[options["color_mode"]])
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, rows: Any) -> np.ndarray:
        picked = self.paths[rows]
        picked = np.atleast_1d(picked)
        return (
            np.stack([decode(str(p), **self.options) for p in picked])
            if len(picked)
            else np.zeros((0, *self.shape[1:]), np.float32)
        )


class TrainedImageReader:
    """``predict``'s reader for a run trained on an image folder: image files, or folders walked as
    Keras walks them with ``labels=None``, decoded, colour-converted and resized as in training."""

    def __init__(self, sources: list[Path], spec: Any) -> None:
        self.options = _options(spec)
        files: list[str] = []
        for src in sources:
            if src.is_dir():
                found = _walk(src, spec.follow_links)
                if not found:
                    raise DataError(f"expected images ({', '.join(ALLOWED)}) in {src}, found none")
                files += found
            elif src.is_file():
                files.append(str(src))
            else:
                raise DataError(f"expected an image file or a folder of images at {src}, found none")
        self.files = files
        self.rows: int | None = len(files)
        self.name = str(sources[0]) if len(sources) == 1 else f"{len(sources)} inputs"

    def chunks(self, size: int) -> Any:
        for i in range(0, len(self.files), size):
            yield np.stack([decode(p, **self.options) for p in self.files[i : i + size]])


def decode_all(paths: list[str], options: dict[str, Any], *, skip_bad: bool) -> tuple[np.ndarray, list[int]]:
    """Every image decoded once (float32, as Keras yields it, so resized pixels are not rounded)
    and the positions of the files skipped as unreadable (``bad_images: skip``)."""
    out = np.empty((len(paths), *options["image_size"], CHANNELS[options["color_mode"]]), dtype=np.float32)
    bad: list[int] = []
    for i, p in enumerate(paths):
        try:
            out[i] = decode(p, **options)
        except DataError:
            if not skip_bad:
                raise
            bad.append(i)
    if bad:
        out = np.delete(out, bad, axis=0)
    return out, bad


def _options(spec: Any) -> dict[str, Any]:
    size = spec.image_size
    return {
        "color_mode": spec.color_mode,
        "image_size": (size, size) if isinstance(size, int) else (int(size[0]), int(size[1])),
        "interpolation": spec.interpolation,
        "crop_to_aspect_ratio": spec.crop_to_aspect_ratio,
        "pad_to_aspect_ratio": spec.pad_to_aspect_ratio,
    }


def _labels_out(labels: np.ndarray | None, mode: str | None, classes: int, key: str) -> np.ndarray:
    """Keras's label_mode: int -> int64 (N,), categorical -> one-hot float32, binary -> float32 (N, 1)."""
    if labels is None or mode is None:
        raise ConfigError(
            "expected labels to train on, received label_mode: null (or labels: null)",
            key=key,
            hint="use labels: inferred (class sub-folders) with label_mode: int",
        )
    if mode == "categorical":
        return np.eye(max(classes, int(labels.max()) + 1), dtype=np.float32)[labels]
    if mode == "binary":
        if classes not in (0, 2) and classes != 2:
            raise DataError(
                f"expected exactly 2 classes for label_mode: binary, received {classes}",
                key="data.label_mode",
                hint="use label_mode: int or categorical",
            )
        return labels.astype(np.float32).reshape(-1, 1)
    return labels.astype(np.int64)


def load_image_directory(spec: Any, *, base_dir: Path, seed: int) -> Any:
    """The Dataset of an image folder: decoded once into memory when it fits the cache budget,
    otherwise streamed (files decoded per batch by the workers)."""
    from trainctl.data.dataset import Dataset, decoded_bytes, plan_cache
    from trainctl.data.paths import resolve
    from trainctl.data.preprocess import Preprocessor

    options = _options(spec)
    directory = resolve(base_dir, spec.directory, "data.directory", folder=True)
    paths, labels, names = list_files(
        directory, labels=spec.labels, class_names=spec.class_names, follow_links=spec.follow_links
    )
    (tr_paths, tr_labels), (va_paths, va_labels) = split_files(paths, labels, spec.validation_split, seed)
    te_paths: list[str] = []
    te_labels = None
    if spec.test_directory is not None:
        te_dir = resolve(base_dir, spec.test_directory, "data.test_directory", folder=True)
        te_paths, te_labels, _ = list_files(
            te_dir,
            labels=spec.labels if spec.labels == "inferred" else None,
            class_names=spec.class_names or (names or None),
            follow_links=spec.follow_links,
        )
    classes = len(names)
    x_steps, y_steps = spec.steps()
    extra: dict[str, Any] = {
        "image_size": list(options["image_size"]),
        "color_mode": spec.color_mode,
        "class_names": names,
        "files": {"train": len(tr_paths), "validation": len(va_paths), "test": len(te_paths)},
    }
    full = ImageRows(tr_paths, None, options)
    if plan_cache(spec.cache, decoded_bytes(full)) == "memory":
        skip = spec.bad_images == "skip"
        x_tr, bad_tr = decode_all(tr_paths, options, skip_bad=skip)
        y_tr = _labels_out(
            np.delete(tr_labels, bad_tr) if tr_labels is not None else None, spec.label_mode, classes, "data.label_mode"
        )
        pre, x_tr, y_tr = Preprocessor.fit(x_steps, y_steps, x_tr, y_tr)
        splits: dict[str, Any] = {}
        skipped = [tr_paths[i] for i in bad_tr]
        for name, ps, ls in (("val", va_paths, va_labels), ("test", te_paths, te_labels)):
            if ps:
                xs, bad = decode_all(ps, options, skip_bad=skip)
                skipped += [ps[i] for i in bad]
                ys = _labels_out(
                    np.delete(ls, bad) if ls is not None else None, spec.label_mode, classes, "data.label_mode"
                )
                splits[name] = (pre.transform_x(xs), pre.transform_y(ys))
        extra["skipped_images"] = {"count": len(skipped), "paths": skipped[:20]}
        x_te, y_te = splits.get("test", (None, None))
        return Dataset(x_tr, y_tr, x_te, y_te, pre, names, "classification", extra=extra, val=splits.get("val"))
    y_tr = _labels_out(tr_labels, spec.label_mode, classes, "data.label_mode")
    pre = Preprocessor.fit_streaming(x_steps, y_steps, full, y_tr)  # type: ignore[arg-type]
    y_tr = pre.transform_y(y_tr)
    val: tuple[Any, Any] = (None, None)
    test: tuple[Any, Any] = (None, None)
    if va_paths:
        val = (
            ImageRows(va_paths, None, options),
            pre.transform_y(_labels_out(va_labels, spec.label_mode, classes, "data.label_mode")),
        )
    if te_paths:
        test = (
            ImageRows(te_paths, None, options),
            pre.transform_y(_labels_out(te_labels, spec.label_mode, classes, "data.label_mode")),
        )
    return Dataset(
        full,
        y_tr,
        test[0],
        test[1],
        pre,
        names,
        "classification",
        streamed=True,
        cache="none",
        extra=extra,
        val=val if va_paths else None,
    )
