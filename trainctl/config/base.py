"""Spec base classes and the one name registry per component family.

Every component a YAML file can name (layer, optimizer, loss, metric, callback, schedule,
initializer...) is a frozen pydantic *spec* class whose ``type`` field is a ``Literal`` of its
canonical Keras spelling. The spec is the single place a name is written; the torch side maps spec
class -> builder. Nothing here imports torch, so validating a config stays fast.

Names are matched loosely, as Keras users type them: ``Dense``, ``dense``, ``early_stopping``,
``EarlyStopping`` and ``rmsprop`` all resolve, because we compare lower-cased names with ``_``/``-``
removed. A name that matches nothing gets a "did you mean" from the same family.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


@functools.lru_cache(maxsize=4096)  # a 1 MB config looks the same few names up 80,000 times
def norm(name: str) -> str:
    """Loose form of a component name: ``Early_Stopping`` -> ``earlystopping``."""
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """Closest choice to ``word`` (compared loosely), or None when nothing is close."""
    options = list(dict.fromkeys(choices))
    by_norm = {norm(c): c for c in options}
    hit = difflib.get_close_matches(norm(word), list(by_norm), n=1, cutoff=0.6)
    return by_norm[hit[0]] if hit else None


class Spec(BaseModel):
    """Base for every config node: frozen, and unknown keys are errors."""

    # allow_inf_nan=False: `learning_rate: .inf` and other non-finite floats are refused where they enter
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, validate_default=True, allow_inf_nan=False
    )


class ComponentSpec(Spec):
    """A named component, written ``{type: NAME, ...keras arguments}`` or a bare ``NAME``.

    Subclasses declare ``type: Literal["Name"] = "Name"`` (data sources use ``source`` instead).
    """

    family: ClassVar[str] = ""

    def kwargs(self) -> dict[str, Any]:
        """Keras arguments of this component (everything but its name tag)."""
        return {k: getattr(self, k) for k in type(self).model_fields if k not in ("type", "source")}


S = TypeVar("S", bound=type[ComponentSpec])


class Family:
    """All registered components of one kind, addressable by any loose spelling."""

    def __init__(self, name: str, plural: str, tag: str = "type", keep_spelling: str = "") -> None:
        self.name = name
        self.plural = plural
        self.tag = tag
        # metrics: a bare string keeps the user's spelling as the display name, as Keras does
        # (``metrics: [acc]`` logs ``acc``, ``metrics: [mae]`` logs ``mae``).
        self.keep_spelling = keep_spelling
        self.specs: dict[str, type[ComponentSpec]] = {}
        self._lookup: dict[str, str] = {}

    def register(self, *aliases: str) -> Callable[[S], S]:
        """Class decorator: register a spec under its ``type`` literal and extra aliases."""

        def deco(cls: S) -> S:
            (canonical,) = get_args(cls.__pydantic_fields__[self.tag].annotation)
            if canonical in self.specs:
                raise RuntimeError(f"{self.name} {canonical!r} registered twice")
            cls.family = self.name
            self.specs[canonical] = cls
            for alias in (canonical, *aliases):
                key = norm(alias)
                if key in self._lookup and self._lookup[key] != canonical:
                    raise RuntimeError(f"{self.name} alias {alias!r} is ambiguous")
                self._lookup[key] = canonical
            return cls

        return deco

    def canonical(self, name: str) -> str | None:
        return self._lookup.get(norm(name))

    def names(self) -> list[str]:
        return sorted(self.specs)

    def _coerce(self, value: Any) -> Any:
        """Turn ``"rmsprop"`` into ``{"type": "RMSprop"}`` and normalise ``type``."""
        if isinstance(value, ComponentSpec):
            return value
        if isinstance(value, str):
            value = {self.tag: value, **({self.keep_spelling: value} if self.keep_spelling else {})}
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "component_form",
                "expected a {family} name or a mapping with 'type', received {received}",
                {"family": self.name, "received": type(value).__name__},
            )
        if self.tag not in value:
            raise PydanticCustomError(
                "component_type_missing",
                # pydantic fills `{name}` only: no `!r`, no `{{` escapes in these templates
                "expected a '{tag}' key naming the {family}, e.g. {example}",
                {
                    "tag": self.tag,
                    "family": self.name,
                    "example": f"{{{self.tag}: {self.names()[0] if self.specs else '...'}}}",
                },
            )
        name = value[self.tag]
        canonical = self.canonical(name) if isinstance(name, str) else None
        if canonical is None:
            guess = did_you_mean(str(name), self._all_spellings())
            raise PydanticCustomError(
                "unknown_component",
                "unknown {family} {name}; expected one of: {choices}{hint}",
                {
                    "family": self.name,
                    "name": repr(name),
                    "choices": ", ".join(self.names()),
                    "hint": f" (did you mean {self.canonical(guess)!r}?)" if guess else "",
                },
            )
        return {**value, self.tag: canonical}

    def _all_spellings(self) -> list[str]:
        return list(self._lookup)

    def field(self) -> Any:
        """An annotation accepting any spec of this family, in long or short form."""
        members = tuple(self.specs.values())
        inner: Any
        if len(members) == 1:
            inner = members[0]
        else:
            inner = Annotated[Union[members], Field(discriminator=self.tag)]  # noqa: UP007
        return Annotated[inner, BeforeValidator(self._coerce)]


LAYERS = Family("layer", "layers")
OPTIMIZERS = Family("optimizer", "optimizers")
SCHEDULES = Family("learning-rate schedule", "schedules")
LOSSES = Family("loss", "losses")
METRICS = Family("metric", "metrics", keep_spelling="name")
REGULARIZERS = Family("regularizer", "regularizers")
CALLBACKS = Family("callback", "callbacks")
INITIALIZERS = Family("initializer", "initializers")
SOURCES = Family("data source", "sources", tag="source")

FAMILIES: dict[str, Family] = {
    f.plural: f
    for f in (LAYERS, OPTIMIZERS, SCHEDULES, LOSSES, METRICS, CALLBACKS, INITIALIZERS, REGULARIZERS, SOURCES)
}
