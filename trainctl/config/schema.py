"""The run config: one YAML file, validated into a frozen tree of specs. No torch here."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    NonNegativeInt,
    PositiveInt,
    Tag,
    field_validator,
    model_validator,
)

from trainctl.config.base import LAYERS, Spec
from trainctl.config.callbacks import Callback
from trainctl.config.compile import Loss, Metric, Optimizer
from trainctl.config.data import Data
from trainctl.config.graph import CallSpec, ModelInput, entry_kind, one_or_list
from trainctl.config.tune import TuneSpec

if TYPE_CHECKING:  # the union is built at run time from the registry
    Layer = Any
    LayerEntry = Any
else:
    Layer = LAYERS.field()
    # a layer, or a `call:` entry that applies an earlier layer again
    LayerEntry = Annotated[
        Annotated[CallSpec, Tag("call-entry")] | Annotated[Layer, Tag("layer-entry")],
        Discriminator(entry_kind),
    ]


def _loss_kind(value: Any) -> str:
    return "per-output" if isinstance(value, dict) and "type" not in value else "one-loss"


def _metrics_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "per-output"
    if isinstance(value, list) and any(isinstance(v, list) for v in value):
        return "per-output-list"
    return "one-list"


if TYPE_CHECKING:
    LossArg = Any
    MetricsArg = Any
else:  # tags are not identifiers, so the loader's error paths skip them
    LossArg = Annotated[
        Annotated[Loss, Tag("one-loss")] | Annotated[dict[str, Loss], Tag("per-output")], Discriminator(_loss_kind)
    ]
    MetricsArg = Annotated[
        Annotated[list[Metric], Tag("one-list")]
        | Annotated[list[list[Metric]], Tag("per-output-list")]
        | Annotated[dict[str, Annotated[list[Metric], BeforeValidator(lambda v: v if isinstance(v, list) else [v])]],
                    Tag("per-output")],
        Discriminator(_metrics_kind),
    ]  # fmt: skip

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


class ModelSpec(Spec):
    """A Keras model: a ``Sequential`` (layers in order; the first declares the input shape), or a
    Functional graph when ``inputs``/``outputs`` or per-layer ``inputs:``/``call:`` keys are given."""

    name: str = "sequential"
    inputs: list[ModelInput] | None = Field(None, min_length=1)
    layers: list[LayerEntry] = Field(min_length=1)  # type: ignore[valid-type]
    outputs: list[str] | None = Field(None, min_length=1)

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, value: Any) -> Any:
        return one_or_list(value)

    @property
    def is_graph(self) -> bool:
        """Whether this is a Functional model (else today's Sequential chain)."""
        return (
            self.inputs is not None
            or self.outputs is not None
            or any(isinstance(e, CallSpec) or e.inputs is not None for e in self.layers)
        )

    @model_validator(mode="after")
    def _input_shape(self) -> ModelSpec:
        first: Any = self.layers[0]
        if self.inputs is not None:
            for i, layer in enumerate(self.layers):
                if isinstance(layer, CallSpec):
                    continue
                if layer.type == "InputLayer" or layer.declared_input_shape() is not None:
                    raise ValueError(
                        f"layers[{i}] declares an input shape, but model.inputs already declares the inputs; "
                        "remove it (or the InputLayer entry)"
                    )
            return self
        if isinstance(first, CallSpec):
            raise ValueError("the first layer cannot be a `call:` entry: there is no layer to call yet")
        if first.declared_input_shape() is None:
            raise ValueError(
                "the first layer needs an input shape: add `input_shape: [...]` to it "
                "(or `input_dim` on Dense), or start with `{type: InputLayer, shape: [...]}`"
            )
        for i, layer in enumerate(self.layers[1:], start=1):
            if not isinstance(layer, CallSpec) and layer.type == "InputLayer":
                raise ValueError(f"InputLayer may only be the first layer; found it at layers[{i}]")
        return self


class CompileSpec(Spec):
    """``model.compile(optimizer, loss, metrics, loss_weights)``. Keras's default optimizer is rmsprop.

    With several outputs, ``loss`` and ``loss_weights`` may be one value (every output) or a mapping
    by output name, and ``metrics`` a mapping by output name (or one list per output); they are
    matched to the model's outputs in :mod:`trainctl.training.outputs`.
    """

    optimizer: Optimizer = "rmsprop"  # type: ignore[valid-type]
    loss: LossArg
    metrics: MetricsArg = []
    loss_weights: float | list[float] | dict[str, float] | None = None


class FitSpec(Spec):
    """``model.fit`` arguments, with Keras defaults (``batch_size`` None means 32)."""

    epochs: PositiveInt = 1
    batch_size: PositiveInt | None = None
    validation_split: float = Field(0.0, ge=0.0, lt=1.0)
    validation_data: Literal["test"] | None = None
    shuffle: bool = True
    initial_epoch: NonNegativeInt = 0
    class_weight: dict[int, float] | None = None
    callbacks: list[Callback] = []  # type: ignore[valid-type]
    verbose: Literal[0, 1, 2, "auto"] = "auto"
    # opt-in speed features (not Keras arguments): torch.compile, and Lightning's precision names;
    # mixed precision is CUDA-only and refused elsewhere at start (trainctl.devices.check_precision)
    compile: bool = False
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"

    @field_validator("precision", mode="before")
    @classmethod
    def _precision(cls, value: Any) -> Any:
        return "32" if value == 32 and not isinstance(value, bool) else value  # YAML reads `32` as int

    @model_validator(mode="after")
    def _validation(self) -> FitSpec:
        if self.validation_split and self.validation_data:
            raise ValueError("give validation_split or validation_data, not both")
        if self.initial_epoch >= self.epochs:
            raise ValueError(f"initial_epoch ({self.initial_epoch}) must be below epochs ({self.epochs})")
        return self

    @property
    def resolved_batch_size(self) -> int:
        return self.batch_size or 32


class RunConfig(Spec):
    """One training run."""

    name: str | None = None
    seed: int | None = None
    device: str = "auto"
    threads: int | None = Field(None, ge=1, le=1024)
    data: Data  # type: ignore[valid-type]
    model: ModelSpec
    compile: CompileSpec
    fit: FitSpec = Field(default_factory=lambda: FitSpec())
    tune: TuneSpec | None = None  # `trainctl tune`'s search space; `train` ignores it

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise ValueError(f"expected auto, cpu, cuda or cuda:N, received {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        from trainctl.errors import ConfigError
        from trainctl.paths import check_run_name

        if value is not None:
            try:
                check_run_name(value)
            except ConfigError as exc:
                raise ValueError(exc.render().removeprefix("name: ")) from None
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value < 2**63:
            raise ValueError(f"expected a seed in 0..2**63-1 (torch's range), received {value}")
        return value
