"""The ``tune:`` section: a declarative search space for ``trainctl tune`` (Optuna). No torch here.

Each parameter is a dotted key exactly as a ``key=value`` override takes it, with one distribution:
``{loguniform: [a, b]}``, ``{uniform: [a, b]}``, ``{int: [a, b]}`` or ``{choice: [...]}``.
:func:`check_tune` applies each parameter's extreme values (and every choice) through the override
machinery and validates the result, so ``config validate`` rejects a key the config does not have,
or a value its field cannot take, before any trial starts.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, field_validator, model_validator

from trainctl.config.base import Spec
from trainctl.errors import ConfigError, Problem

Scalar = bool | int | float | str | None
# history keys that get smaller as a model gets better (Keras names); anything else is maximized
MINIMIZE_HINTS = ("loss", "error", "mse", "mae", "mape", "msle", "crossentropy", "hinge", "divergence", "poisson")


class Distribution(Spec):
    """One of loguniform, uniform, int (ranges [low, high], both ends included) or choice."""

    loguniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    int_: tuple[int, int] | None = Field(None, alias="int")
    choice: list[Scalar] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k in ("loguniform", "uniform", "int", "choice") if self.get(k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"expected exactly one of loguniform, uniform, int or choice, received {', '.join(given) or 'none'}"
            )
        kind = given[0]
        if kind != "choice":
            low, high = self.get(kind)
            if not low < high:
                raise ValueError(f"expected {kind}: [low, high] with low < high, received [{low}, {high}]")
            if kind == "loguniform" and low <= 0:
                raise ValueError(f"expected loguniform bounds above 0, received [{low}, {high}]")
        return self

    def get(self, kind: str) -> Any:
        return self.int_ if kind == "int" else getattr(self, kind)

    @property
    def kind(self) -> str:
        return next(k for k in ("loguniform", "uniform", "int", "choice") if self.get(k) is not None)

    def probes(self) -> list[Any]:
        """Values that must all fit the field: both ends, one value with a fraction, every choice."""
        value = self.get(self.kind)
        if self.kind == "choice":
            return list(value)
        low, high = value
        if self.kind == "int":
            return [int(low), int(high)]
        inner = low * (high / low) ** 0.377 if self.kind == "loguniform" else low + (high - low) * 0.377
        return [float(low), float(high), float(inner)]


class TuneSpec(Spec):
    """``trainctl tune``'s study: what to optimize, how to sample and prune, and the search space."""

    objective: str = "val_loss"
    direction: Literal["minimize", "maximize"] | None = None
    sampler: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    # the median pruner's patience: trials that finish before it prunes, epochs before it judges
    startup_trials: NonNegativeInt = 2
    warmup_epochs: NonNegativeInt = 1
    parameters: dict[str, Distribution] = Field(min_length=1)
    trials: PositiveInt | None = None  # the default of --trials

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected a history key such as val_loss or val_accuracy, received ''")
        return value

    @model_validator(mode="after")
    def _grid(self) -> TuneSpec:
        if self.sampler == "grid":
            ranges = [k for k, d in self.parameters.items() if d.kind in ("uniform", "loguniform")]
            if ranges:
                raise ValueError(
                    f"sampler grid needs choice or int parameters, received a continuous range for {ranges[0]}"
                )
        return self

    @property
    def resolved_direction(self) -> str:
        """``direction``, else minimize for losses and errors (``val_loss``, ``mae``), maximize otherwise."""
        if self.direction is not None:
            return self.direction
        key = self.objective.lower()
        return "minimize" if any(h in key for h in MINIMIZE_HINTS) else "maximize"


def scalar_text(value: Any) -> str:
    """A value as override text that YAML reads back as the same value (``1.0e-05``, not ``1e-05``)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text.removesuffix("...").strip()


def check_tune(loaded: Any) -> None:
    """Every parameter's key exists and every value it may take fits its field (exit 2 otherwise).

    Each probe value goes through the same path as a ``key=value`` override: applied to the raw
    config (the ``tune`` section removed), validated by the schema, then shape inference.
    """
    from pydantic import ValidationError

    from trainctl.config.loader import apply_override, problems_from
    from trainctl.config.schema import RunConfig

    spec = loaded.config.tune
    if spec is None:
        return
    base = {k: v for k, v in loaded.raw.items() if k != "tune"}
    problems: list[Problem] = []
    for key, dist in spec.parameters.items():
        where_key = f"tune.parameters.{key}"
        for value in dist.probes():
            text = f"{key}={scalar_text(value)}"
            raw = copy.deepcopy(base)
            try:
                apply_override(raw, text)
                cfg = RunConfig.model_validate(raw, context={"base_dir": str(loaded.base_dir)})
                _shapes(cfg)
            except ConfigError as exc:
                problems.append(_probe_problem(loaded, where_key, key, value, exc.problems[0].message))
                break
            except ValidationError as exc:
                found = problems_from(exc, RunConfig, raw)
                mine = [p for p in found if (p.key or "").startswith(_prefix(key))] or found
                problems.append(_probe_problem(loaded, where_key, key, value, mine[0].message))
                break
    if problems:
        raise ConfigError(problems[0].message, problems=problems)


def _prefix(key: str) -> str:
    return key.split("=")[0]


def _probe_problem(loaded: Any, where_key: str, key: str, value: Any, message: str) -> Problem:
    return Problem(
        f"{key}={scalar_text(value)} does not fit the config: {message}",
        key=where_key,
        where=loaded.where(where_key),
        hint="give a dotted key as `trainctl train CONFIG key=value` takes it, and values its field accepts",
    )


def _shapes(cfg: Any) -> None:
    from trainctl.model.shapes import infer

    infer(list(cfg.model.layers))
