"""Data source and preprocessing specs. ``data.source`` picks the source; ``x``/``y`` list steps.

Relative paths are kept as written here; ``trainctl.data`` resolves them against the config
file's folder, so validation never touches the file system.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PositiveFloat, PositiveInt, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from trainctl.config.base import SOURCES, ComponentSpec, Spec, did_you_mean, norm

# ---------------------------------------------------------------------------------------------
# preprocessing steps: `standardize`, or a one-key mapping such as `{scale: 255}`

STEP_OPS = ("scale", "standardize", "normalize", "flatten", "reshape", "cast", "one_hot", "clip")
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8")


class Step(Spec):
    """One preprocessing step. ``arg`` is the step's single argument, if it takes one."""

    op: Literal["scale", "standardize", "normalize", "flatten", "reshape", "cast", "one_hot", "clip"]
    arg: Any = None

    @model_validator(mode="after")
    def _check_arg(self) -> Step:
        op, arg = self.op, self.arg
        if op == "scale":
            if not isinstance(arg, (int, float)) or isinstance(arg, bool) or arg <= 0:
                raise ValueError(f"scale expects a positive number to divide by, e.g. {{scale: 255}}; received {arg!r}")
        elif op in ("standardize", "normalize", "flatten"):
            if arg not in (None, {}):
                raise ValueError(f"{op} takes no argument; write it as a bare `- {op}`")
        elif op == "reshape":
            if not isinstance(arg, (list, tuple)) or not all(isinstance(d, int) and (d > 0 or d == -1) for d in arg):
                raise ValueError(
                    "reshape expects a list of positive ints (one may be -1), e.g. {reshape: [28, 28, 1]}; "
                    f"received {arg!r}"
                )
        elif op == "cast":
            if arg not in DTYPES:
                guess = did_you_mean(str(arg), DTYPES)
                raise ValueError(
                    f"cast expects one of {', '.join(DTYPES)}; received {arg!r}"
                    + (f" (did you mean {guess!r}?)" if guess else "")
                )
        elif op == "one_hot":
            if not isinstance(arg, int) or isinstance(arg, bool) or arg < 2:
                raise ValueError(
                    f"one_hot expects the number of classes (an int >= 2), e.g. {{one_hot: 10}}; received {arg!r}"
                )
        elif op == "clip":
            if not (isinstance(arg, (list, tuple)) and len(arg) == 2 and all(isinstance(v, (int, float)) for v in arg)):
                raise ValueError(f"clip expects [low, high]; received {arg!r}")
        return self

    def label(self) -> str:
        return self.op if self.arg is None else f"{{{self.op}: {self.arg}}}"

    @model_serializer
    def _as_written(self) -> Any:
        """Dump in the YAML form (``standardize``, ``{scale: 255}``) so a dump validates again."""
        return self.op if self.arg is None else {self.op: self.arg}


def _step(value: Any) -> Any:
    if isinstance(value, Step):
        return value
    if isinstance(value, str):
        op, arg = value, None
    elif isinstance(value, dict) and set(value) == {"op", "arg"}:
        op, arg = value["op"], value["arg"]
    elif isinstance(value, dict) and len(value) == 1:
        ((op, arg),) = value.items()
    else:
        raise PydanticCustomError(
            "step_form",
            "expected a step name or a one-key mapping such as {scale: 255}, received {received}",
            {"received": repr(value)},
        )
    canonical = {norm(s): s for s in STEP_OPS}.get(norm(str(op)))
    if canonical is None:
        guess = did_you_mean(str(op), STEP_OPS)
        raise PydanticCustomError(
            "unknown_step",
            "unknown preprocessing step {op}; expected one of: {choices}{hint}",
            {
                "op": repr(op),
                "choices": ", ".join(STEP_OPS),
                "hint": f" (did you mean {guess!r}?)" if guess else "",
            },
        )
    return {"op": canonical, "arg": arg}


StepField = Annotated[Step, BeforeValidator(_step)]

# ---------------------------------------------------------------------------------------------
# sources


class SourceSpec(ComponentSpec):
    """Fields every source takes: the preprocessing and the held-out test fraction."""

    x: list[StepField] = []
    y: list[StepField] = []
    test_split: float | None = Field(None, gt=0.0, lt=1.0)
    stratify: bool = True
    # the batch path: `memory` puts the decoded split on the device and slices it (the fast path);
    # `none` streams whole batches from worker processes; `auto` is memory when it fits the budget
    cache: Literal["memory", "none", "auto"] = "auto"
    workers: Annotated[int, Field(ge=0)] | Literal["auto"] = "auto"
    prefetch: PositiveInt = 2  # batches each worker fetches ahead

    def steps(self) -> tuple[list[Step], list[Step]]:
        """``(x steps, y steps)``: npy names its files ``x``/``y``, so it keeps steps elsewhere."""
        return list(self.x), list(self.y)


@SOURCES.register()
class synthetic(SourceSpec):  # noqa: N801
    """Tutorial data: linear ``y = 4x + 3``, quadratic ``1.5x² − 12x + 0.5``, xor, random, blobs,
    sequences (token ids; ``features`` is the length, default 30, ``classes`` the vocabulary, default 10)."""

    source: Literal["synthetic"] = "synthetic"
    kind: Literal["linear", "quadratic", "xor", "random", "blobs", "sequences"]
    n: PositiveInt = 100
    noise: float = Field(0.0, ge=0.0)
    features: PositiveInt = 2
    classes: PositiveInt = 3
    low: float = 0.0
    high: float = 10.0


@SOURCES.register()
class sklearn(SourceSpec):  # noqa: N801
    source: Literal["sklearn"] = "sklearn"
    name: Literal["digits", "iris", "wine", "breast_cancer", "diabetes"]


Column = str | int  # a CSV column: its header name, or its index


@SOURCES.register()
class csv(SourceSpec):  # noqa: N801
    """A CSV file with a header row.

    For a model with several inputs, ``features`` maps each model input to its group of columns;
    for several outputs, ``target`` maps each output to its column (both by name, as declared in
    ``model.inputs`` and ``model.outputs``). A model with one input and one output takes a list of
    columns and one target column, as before.
    """

    source: Literal["csv"] = "csv"
    path: str
    target: Column | dict[str, Column]
    features: list[Column] | dict[str, list[Column]] | None = None
    delimiter: str = ","
    test_path: str | None = None


def check_data_for_model(data: Any, inputs: list[str], outputs: list[str], *, loading: bool = False) -> None:
    """The data section against the model's inputs and outputs. Raises ConfigError with the dotted key.

    A model with several inputs or outputs reads one array per input and per output: from an
    ``.npz`` keyed by name, or from a CSV whose ``features`` map each input to a group of columns
    and whose ``target`` maps each output to a column. At ``config validate`` time a CSV section is
    checked in full; another source only when the data is ``loading`` (a config that only describes
    a model, for ``summary``, may keep a placeholder data section).
    """
    from trainctl.errors import ConfigError

    several = len(inputs) > 1 or len(outputs) > 1
    features = getattr(data, "features", None) if data.source == "csv" else None
    target = getattr(data, "target", None) if data.source == "csv" else None
    if not several:
        for key, value, kind in (("features", features, "a list of columns"), ("target", target, "one column")):
            if isinstance(value, dict):
                raise ConfigError(
                    f"expected {kind} for a model with one input and one output, received a mapping",
                    key=f"data.{key}",
                    hint="a mapping by name is for a model with several inputs (features) or outputs (target)",
                )
        return
    if data.source not in ("npz", "csv"):
        if not loading:
            return
        raise ConfigError(
            f"expected `source: npz` or `source: csv` for a model with several inputs or outputs, "
            f"received {data.source!r}",
            key="data.source",
            hint="npz: one array per input and output (x_train_<input>, y_train_<output>, ...); "
            "csv: features by input name, target by output name",
        )
    x_steps, y_steps = data.steps()
    if x_steps or y_steps:
        raise ConfigError(
            "expected no preprocessing steps for a model with several inputs or outputs",
            key="data.x" if x_steps else "data.y",
            hint="scale the values when writing the data file",
        )
    if data.source != "csv":
        return
    _check_names(features, inputs, "features", "model input", "a group of columns per input: {a: [col, ...], b: [...]}")
    _check_names(target, outputs, "target", "model output", "a column per output: {out_a: col, out_b: col}")


def _check_names(value: Any, names: list[str], key: str, what: str, form: str) -> None:
    from trainctl.errors import ConfigError

    if not isinstance(value, dict):
        if len(names) == 1 and (value is not None or key == "features"):
            return  # one input (output): a plain list (column) still says which
        raise ConfigError(
            f"expected data.{key} to map each {what} ({', '.join(names)}) to its "
            f"{'columns' if key == 'features' else 'column'}, received "
            + ("nothing" if value is None else repr(value)),
            key=f"data.{key}",
            hint=f"write {form}",
        )
    for name in value:
        if name not in names:
            guess = did_you_mean(name, names)
            raise ConfigError(
                f"expected a {what} name ({', '.join(names)}), received {name!r}",
                key=f"data.{key}.{name}",
                hint=f"did you mean {guess!r}?" if guess else None,
            )
    empty = next((n for n, cols in value.items() if isinstance(cols, list) and not cols), None)
    if empty is not None:
        raise ConfigError(
            f"expected at least one column for {what} {empty!r}, received none", key=f"data.{key}.{empty}"
        )
    missing = [n for n in names if n not in value]
    if missing:
        raise ConfigError(
            f"expected a {'column group' if key == 'features' else 'target column'} for every {what}, "
            f"received none for {', '.join(repr(n) for n in missing)}",
            key=f"data.{key}",
        )


@SOURCES.register()
class parquet(SourceSpec):  # noqa: N801
    """A Parquet table with the column spec of ``csv``; read by row group through pyarrow (the
    optional ``parquet`` extra). Features are numeric columns; the target numbers or text."""

    source: Literal["parquet"] = "parquet"
    path: str
    target: str | int
    features: list[str | int] | None = None
    test_path: str | None = None


@SOURCES.register()
class npz(SourceSpec):  # noqa: N801
    """Key names default to those of Keras's ``mnist.npz``."""

    source: Literal["npz"] = "npz"
    path: str | None = None
    # shards: a list of archives, or a glob (sorted by name), read as one table; each archive holds
    # the same keys. Members stored uncompressed (np.savez) stream from disk when data.cache is none
    paths: str | Annotated[list[str], Field(min_length=1)] | None = None
    x_train: str = "x_train"
    y_train: str = "y_train"
    x_test: str | None = "x_test"
    y_test: str | None = "y_test"

    @model_validator(mode="after")
    def _one_path(self) -> npz:
        if (self.path is None) == (self.paths is None):
            raise ValueError("expected exactly one of path (one archive) and paths (a list or a glob of shards)")
        return self


@SOURCES.register()
class npy(SourceSpec):  # noqa: N801
    source: Literal["npy"] = "npy"
    # each file key takes one file, a list of shards or a glob (sorted by name), read as one table
    x: str | Annotated[list[str], Field(min_length=1)]  # type: ignore[assignment]  # steps go under x_steps
    y: str | Annotated[list[str], Field(min_length=1)]  # type: ignore[assignment]
    x_test: str | Annotated[list[str], Field(min_length=1)] | None = None
    y_test: str | Annotated[list[str], Field(min_length=1)] | None = None
    x_steps: list[StepField] = []
    y_steps: list[StepField] = []

    def steps(self) -> tuple[list[Step], list[Step]]:
        return list(self.x_steps), list(self.y_steps)


@SOURCES.register()
class idx(SourceSpec):  # noqa: N801
    source: Literal["idx"] = "idx"
    images: str
    labels: str
    test_images: str | None = None
    test_labels: str | None = None


class _KerasDataset(SourceSpec):
    """``path`` (a folder of the original IDX .gz files) wins; then $TRAINCTL_DATA_DIR/<source>/;
    then the cache folder, downloading with md5 verification when ``download`` is true."""

    path: str | None = None
    download: bool = True


@SOURCES.register()
class mnist(_KerasDataset):  # noqa: N801
    source: Literal["mnist"] = "mnist"


@SOURCES.register()
class fashion_mnist(_KerasDataset):  # noqa: N801
    source: Literal["fashion_mnist"] = "fashion_mnist"


@SOURCES.register()
class image_directory(SourceSpec):  # noqa: N801
    """A folder with one sub-folder per class, read as Keras's ``image_dataset_from_directory``
    (same names and defaults). ``validation_split`` is Keras's seeded file split (the run's seed);
    ``bad_images: skip`` skips unreadable files and counts them in run.json instead of failing."""

    source: Literal["image_directory"] = "image_directory"
    directory: str
    labels: Literal["inferred"] | list[int] | None = "inferred"
    label_mode: Literal["int", "categorical", "binary"] | None = "int"
    class_names: list[str] | None = None
    color_mode: Literal["grayscale", "rgb", "rgba"] = "rgb"
    image_size: PositiveInt | tuple[PositiveInt, PositiveInt] = (256, 256)
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    crop_to_aspect_ratio: bool = False
    pad_to_aspect_ratio: bool = False
    follow_links: bool = False
    validation_split: float | None = Field(None, gt=0.0, lt=1.0)
    test_directory: str | None = None
    bad_images: Literal["error", "skip"] = "error"

    @model_validator(mode="after")
    def _check(self) -> image_directory:
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError("expected at most one of crop_to_aspect_ratio and pad_to_aspect_ratio, received both")
        if self.class_names is not None and self.labels != "inferred":
            raise ValueError("class_names needs labels: inferred (class sub-folders)")
        if self.test_split is not None:
            raise ValueError("expected test_directory for an image folder, received test_split")
        return self


if TYPE_CHECKING:  # the union is built at run time from the registry
    Data = Any
else:
    Data = SOURCES.field()

__all__ = ["Data", "PositiveFloat", "SourceSpec", "Step", "StepField"]
