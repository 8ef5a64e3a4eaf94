"""YAML -> validated :class:`RunConfig`, keeping ``file:line`` for every key.

libyaml composes the node tree (lines, aliases); one pass over it then checks the bounds, builds
the plain data and records each key's line (:class:`_Reader`). Every validation problem is
collected, mapped back to its line and reported together in one :class:`ConfigError`.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from trainctl.config.base import FAMILIES, did_you_mean
from trainctl.errors import ConfigError, Problem

Path_ = tuple[Union[str, int], ...]  # noqa: UP007


def dotted(path: Sequence[str | int]) -> str:
    """``("model", "layers", 2, "units")`` -> ``model.layers[2].units``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class LoadedConfig:
    """A validated config plus where each key came from, for error messages downstream."""

    config: Any  # RunConfig; typed loosely to avoid an import cycle with schema
    path: Path | None
    raw: dict[str, Any]
    text: str
    overrides: tuple[str, ...] = ()
    locations: dict[str, str] = field(default_factory=dict)
    base_dir_override: Path | None = None

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the config resolve against (a resumed run keeps the
        original config's folder, recorded in run.json)."""
        if self.base_dir_override is not None:
            return self.base_dir_override
        return self.path.parent if self.path else Path.cwd()

    def where(self, key: str) -> str | None:
        """``file:line`` of a dotted key, or of its nearest located parent."""
        probe = key
        while probe:
            if probe in self.locations:
                return self.locations[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return None


# ---------------------------------------------------------------------------------------------
# YAML with line numbers


# Bounds on what one config may make us build. A shipped config is a few hundred values, 5 deep;
# a 1 MB config of 20,000 layers is about 300,000. Aliases are counted as if expanded, because
# the validated config (and pydantic on the way) sees them expanded: the "billion laughs" file
# of 700 bytes is refused here, before anything is built from it.
MAX_CONFIG_BYTES = 16 * 2**20
MAX_DEPTH = 100
MAX_VALUES = 2_000_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 20x faster


def _too_big(message: str, where: str, hint: str) -> ConfigError:
    return ConfigError(message, problems=[Problem(message, where=where, hint=hint)])


_TAG = "tag:yaml.org,2002:"
_STR, _SEQ, _MAP = _TAG + "str", _TAG + "seq", _TAG + "map"
# scalar tags built here; anything rarer (timestamps, binary, sets, merge keys...) is left to
# PyYAML's safe constructor, after the bounds below have been checked
_PLAIN = {_TAG + "null", _TAG + "bool", _TAG + "int", _TAG + "float"}


class _FastLoader(_Loader):  # type: ignore[misc,valid-type]
    """The safe loader with its scalar resolver memoised: a config repeats a few dozen distinct
    scalars (``Dense``, ``relu``, ``8``) thousands of times, and resolving each runs regexes."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._resolved: dict[tuple[str, Any], str] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode or self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = self._resolved[key] = super().resolve(kind, value, implicit)
        return tag


class _Reader:
    """One pass over the node tree that checks the bounds, builds the plain data, and records the
    ``file:line`` of every key.

    Bounds: too deep, a node that contains itself, or more than :data:`MAX_VALUES` values once
    aliases are expanded (the validated config sees them expanded: the 700-byte "billion laughs"
    file is refused here). An alias is the same node object as its anchor, so each distinct node
    is visited once and its (value, expanded size, height) memoised: linear in the file. Keys under
    a collection reached again through an alias resolve to that alias's own line.
    """

    def __init__(self, loader: Any, label: str) -> None:
        self.loader = loader
        self.label = label
        self.memo: dict[int, tuple[Any, int, int]] = {}  # id(node) -> (value, size, height)
        self.open: set[int] = set()  # collections on the current path: meeting one again is a cycle
        self.scalars: dict[tuple[str, str], Any] = {}
        self.locs: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.rare = False  # a tag or key this pass does not build: PyYAML builds the data instead

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        key = (tag, node.value)
        if key in self.scalars:
            return self.scalars[key]
        if tag not in _PLAIN:
            self.rare = True
            return None
        try:
            value = self.loader.yaml_constructors[tag](self.loader, node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:  # `!!int abc`
            raise _yaml_error(exc, self.label, "invalid YAML value", node) from None
        self.scalars[key] = value
        return value

    def visit(self, node: yaml.Node, depth: int, prefix: str) -> tuple[Any, int, int]:
        """(value, expanded size, height) of a collection node at ``depth`` (the root is 1)."""
        key = id(node)
        hit = self.memo.get(key)
        if hit is not None:
            if depth + hit[2] - 1 > MAX_DEPTH:
                raise self._too_deep(node)
            return hit
        if key in self.open:
            raise _too_big(
                "a YAML alias refers to a node that contains it", self.where(node), "remove the self-reference"
            )
        if depth > MAX_DEPTH:
            raise self._too_deep(node)
        self.open.add(key)
        size, height = 1, 1
        value: Any
        if node.id == "mapping":
            value = {}
            self.rare |= node.tag != _MAP
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.id != "scalar":
                    # `? [a, b]: 1` is valid YAML, but a list key is unhashable and names nothing:
                    # PyYAML's own pass refuses it with its line
                    self.rare = True
                    _, s, h = self.visit(key_node, depth + 1, prefix)
                    size, height = size + s, max(height, h + 1)
                    name = None
                else:
                    name = key_node.value
                    self.rare |= key_node.tag not in (_STR, *_PLAIN)  # `<<` merge keys
                    line = key_node.start_mark.line + 1
                    here = f"{prefix}.{name}" if prefix else name
                    if name in seen:
                        self.problems.append(
                            Problem(
                                f"duplicate key {name!r} (first given on line {seen[name]})",
                                key=here,
                                where=f"{self.label}:{line}",
                                hint="remove one of them",
                            )
                        )
                    seen[name] = line
                    self.locs[here] = f"{self.label}:{line}"
                    size += 1
                if value_node.id == "scalar":
                    item, size = self.scalar(value_node), size + 1
                else:
                    item, s, h = self.visit(value_node, depth + 1, here if name is not None else prefix)
                    size, height = size + s, max(height, h + 1)
                if name is not None:
                    value[self.scalar(key_node)] = item
            if node.value:
                height = max(height, 2)
        else:
            value = []
            self.rare |= node.tag != _SEQ
            for i, item_node in enumerate(node.value):
                here = f"{prefix}[{i}]"
                self.locs[here] = self.where(item_node)
                if item_node.id == "scalar":
                    value.append(self.scalar(item_node))
                    size += 1
                    height = max(height, 2)
                else:
                    item, s, h = self.visit(item_node, depth + 1, here)
                    value.append(item)
                    size, height = size + s, max(height, h + 1)
        self.open.discard(key)
        if size > MAX_VALUES:
            raise _too_big(
                f"the config expands to more than {MAX_VALUES:,} values (YAML aliases count once per use)",
                self.where(node),
                "use fewer or smaller aliases; a run config is a few hundred values",
            )
        self.memo[key] = (value, size, height)
        return value, size, height

    def where(self, node: yaml.Node) -> str:
        return f"{self.label}:{node.start_mark.line + 1}"

    def _too_deep(self, node: yaml.Node) -> ConfigError:
        return _too_big(
            f"the config nests deeper than {MAX_DEPTH} levels",
            self.where(node),
            "flatten it; a run config is a few levels deep",
        )


def _yaml_error(exc: Exception, label: str, what: str, node: yaml.Node | None = None) -> ConfigError:
    """``what: reason`` at the line PyYAML marks, else at ``node``'s line, else at ``label``."""
    mark = getattr(exc, "problem_mark", None) or (node.start_mark if node is not None else None)
    where = f"{label}:{mark.line + 1}" if mark else label
    reason = getattr(exc, "problem", None) or str(exc)
    return ConfigError(f"{what}: {reason}", problems=[Problem(f"{what}: {reason}", where=where)])


def _compose(text: str, label: str) -> tuple[Any, yaml.Node | None, _Reader | None]:
    """Parse once: the node tree (lines, aliases), then one pass that checks it and builds the data."""
    if len(text) > MAX_CONFIG_BYTES:
        raise _too_big(
            f"the config is {len(text):,} characters; expected at most {MAX_CONFIG_BYTES:,}",
            label,
            "a run config is a few kB",
        )
    loader = _FastLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, label, "invalid YAML") from None
        if node is None:
            return None, None, None
        reader = _Reader(loader, label)
        data = reader.scalar(node) if node.id == "scalar" else reader.visit(node, 1, "")[0]
        if not reader.rare:
            return data, node, reader
        try:
            return loader.construct_document(node), node, reader
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # tags the safe loader refuses (`!!python/object`), bad `!!binary`, impossible dates...
            raise _yaml_error(exc, label, "invalid YAML value") from None
    finally:
        loader.dispose()


def safe_load(text: str, label: str) -> Any:
    """``yaml.safe_load`` within the config bounds (depth, expanded size, no self-reference)."""
    return _compose(text, label)[0]


def parse_yaml(text: str, label: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Safe-load YAML text and return ``(data, {dotted key: 'label:line'})``."""
    data, node, reader = _compose(text, label)
    if node is None or reader is None:
        raise ConfigError(
            "the file is empty",
            problems=[Problem("expected a mapping with data, model and compile; the file is empty", where=label)],
        )
    if reader.problems:
        raise ConfigError(reader.problems[0].message, problems=reader.problems)
    if not isinstance(data, dict):
        raise ConfigError(
            "top level must be a mapping",
            problems=[
                Problem(
                    f"expected a mapping at the top level, received {type(data).__name__}",
                    where=f"{label}:1",
                )
            ],
        )
    return data, reader.locs


# ---------------------------------------------------------------------------------------------
# overrides


def _parse_key(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in key.replace("[", ".").replace("]", "").split("."):
        if piece == "":
            raise ConfigError(f"empty segment in override key {key!r}")
        parts.append(int(piece) if piece.lstrip("-").isdigit() else piece)
    return parts


def apply_override(data: dict[str, Any], text: str) -> Path_:
    """Apply one ``dotted.key=value`` override in place; the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(
            f"expected an override of the form key=value, received {text!r}",
            hint="e.g. fit.epochs=3",
        )
    key, _, raw_value = text.partition("=")
    path = _parse_key(key.strip())
    try:
        value = safe_load(raw_value, f"override {text!r}") if raw_value.strip() else None
    except ConfigError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc.render()})") from None
    node: Any = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(node, list):
            if not isinstance(part, int) or not -len(node) <= part < len(node):
                raise ConfigError(
                    f"override {text!r}: index {part!r} out of range at {dotted(path[:i])} (list has {len(node)} items)"
                )
            if isinstance(node[part], str) and isinstance(nxt, str):
                node[part] = {"type": node[part]}
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {text!r}: {dotted(path[:i])} is not a mapping")
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and isinstance(nxt, str):
            # `optimizer: adam` + `compile.optimizer.learning_rate=0.1`
            child = node[part] = {"type" if part != "data" else "source": child}
        node = child
    last = path[-1]
    if isinstance(node, list) and isinstance(last, int) and -len(node) <= last < len(node):
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override {text!r}: cannot set {dotted(path)}")
    return tuple(path)


# ---------------------------------------------------------------------------------------------
# pydantic errors -> problems


def _flatten(ann: Any) -> list[Any]:
    origin = get_origin(ann)
    if origin is not None and getattr(origin, "__name__", "") == "Annotated":
        return _flatten(get_args(ann)[0])
    if str(origin) in ("typing.Annotated",):
        return _flatten(get_args(ann)[0])
    if origin is Union or (origin is not None and getattr(origin, "__name__", "") == "UnionType"):
        return [m for arg in get_args(ann) for m in _flatten(arg)]
    if hasattr(ann, "__metadata__"):
        return _flatten(ann.__origin__)
    import types

    if isinstance(ann, types.UnionType):
        return [m for arg in get_args(ann) for m in _flatten(arg)]
    return [ann]


def _models_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[type[BaseModel]]:
    """The spec classes that could sit at ``loc`` (pydantic's loc, union tags included)."""
    current: list[Any] = [root]
    for part in loc:
        if isinstance(part, str) and not part.isidentifier():
            continue  # a union member's label (`layer-entry`): the same node
        nxt: list[Any] = []
        for ann in current:
            for t in _flatten(ann):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    if isinstance(part, str) and part in t.model_fields:
                        nxt.append(t.model_fields[part].annotation)
                    elif isinstance(part, str) and any(
                        part in get_args(t.model_fields[tag].annotation)
                        for tag in ("type", "source")
                        if tag in t.model_fields
                    ):
                        nxt.append(t)
                    continue
                origin = get_origin(t)
                if origin in (list, tuple) and isinstance(part, int):
                    nxt.extend(a for a in get_args(t) if a is not Ellipsis)
                elif origin is dict:
                    nxt.append(get_args(t)[1])
        current = nxt
    return [t for ann in current for t in _flatten(ann) if isinstance(t, type) and issubclass(t, BaseModel)]


def _data_path(raw: Any, loc: Sequence[str | int]) -> Path_:
    """Drop the parts of a pydantic loc that are union tags, keeping the real data path."""
    path: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(part, str) and not part.isidentifier():
            # a union member's label (`constrained-float`, `function-before[...]`): names no data
            continue
        elif isinstance(node, (dict, list)):
            # a union tag or a model name in the loc: it names no data
            if isinstance(part, str) and isinstance(node, dict) and part not in node:
                if any(part == v for v in node.values() if isinstance(v, str)) or _is_tag(node, part):
                    continue
                if part[:1].isupper() or part in ("str", "int", "float", "bool", "list", "dict"):
                    continue
                path.append(part)  # missing key: still name it
                node = None
            continue
        else:
            # bare-string form turned into a mapping by the validator
            if isinstance(node, str) and isinstance(part, str):
                continue
            path.append(part)
    return tuple(path)


def _is_tag(node: dict[str, Any], part: str) -> bool:
    """True when ``part`` is the canonical name the node's loosely spelt tag resolved to
    (``{type: mae}`` shows up in pydantic's loc as ``mean_absolute_error``)."""
    return any(fam.canonical(node[fam.tag]) == part for fam in FAMILIES.values() if isinstance(node.get(fam.tag), str))


# Keras 2 spellings people still type; too far from the new name for a fuzzy match to find it
KERAS2_NAMES = {
    "lr": "learning_rate",
    "nb_epoch": "epochs",
    "output_dim": "units",
    "p": "rate",
    "decay": "weight_decay",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(err: Any, root: type[BaseModel], raw: dict[str, Any]) -> Problem:
    loc = tuple(err["loc"])
    kind = err["type"]
    path = _data_path(raw, loc)
    key = dotted(path)
    if kind == "extra_forbidden":
        allowed: list[str] = []
        for model in _models_at(root, loc[:-1]):
            allowed += [k for k in model.model_fields if k not in ("type", "source")]
        bad = str(loc[-1])
        guess = did_you_mean(bad, allowed) if allowed else None
        if guess is None and KERAS2_NAMES.get(bad) in allowed:
            guess = KERAS2_NAMES[bad]
        where = " here" if not path[:-1] else f" in {dotted(path[:-1])}"
        msg = f"unknown key {bad!r}{where}"
        if allowed:
            msg += f"; expected one of: {', '.join(dict.fromkeys(allowed))}"
        return Problem(msg, key=key, hint=f"did you mean {guess!r}?" if guess else None)
    if kind == "missing":
        return Problem(f"missing required key {str(loc[-1])!r}", key=key)
    if kind in ("unknown_component", "component_form") and path:
        node = _get(raw, path)
        for tag in ("type", "source"):
            if isinstance(node, dict) and tag in node:
                key = dotted((*path, tag))
    message = err["msg"]
    for prefix, repl in (("Input should be ", "expected "), ("Value error, ", ""), ("Assertion failed, ", "")):
        if message.startswith(prefix):
            message = repl + message[len(prefix) :]
    hint = None
    if kind in ("literal_error", "enum") and isinstance(err.get("input"), str):
        choices = [c.strip(" '\"") for c in str(err.get("ctx", {}).get("expected", "")).replace(" or ", ",").split(",")]
        guess = did_you_mean(err["input"], [c for c in choices if c])
        hint = f"did you mean {guess!r}?" if guess else None
    received = (
        ""
        if kind.startswith(("unknown_", "component_", "value_error")) or "received" in message
        else f", received {_short(err.get('input'))}"
    )
    head, sep, guess_text = message.rpartition(" (did you mean ")
    if sep and hint is None and message.endswith("?)"):
        # validators put their guess in the message; it belongs in `hint`, as everywhere else
        message, hint = head, "did you mean " + guess_text[:-1]
    return Problem(f"{message}{received}", key=key, hint=hint)


def _get(raw: Any, path: Sequence[str | int]) -> Any:
    node = raw
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def problems_from(exc: ValidationError, root: type[BaseModel], raw: dict[str, Any]) -> list[Problem]:
    """One :class:`Problem` per pydantic error, deduplicated, in file order.

    A "missing key" that a misspelt key in the same mapping explains (``unitz`` for ``units``)
    is dropped: the "did you mean" on the misspelling already says it.
    """
    seen: set[tuple[str | None, str]] = set()
    out: list[Problem] = []
    branch: set[int] = set()  # ids of problems raised inside one member of a union
    for err in exc.errors(include_url=False):
        p = _problem(err, root, raw)
        if (p.key, p.message) not in seen:
            seen.add((p.key, p.message))
            out.append(p)
            if err["type"].endswith(("_type", "_parsing")) and any(
                isinstance(part, str) and not part.isidentifier() for part in err["loc"]
            ):
                branch.add(id(p))
    # `learning_rate: {type: ExponentialDecay, ...}` with a bad field also fails the float member
    # of the union ("expected a valid number"); drop that when a deeper error explains more.
    keys = [p.key or "" for p in out]
    out = [
        p
        for p in out
        if id(p) not in branch or not any(k.startswith((f"{p.key}.", f"{p.key}[")) for k in keys if p.key)
    ]
    explained = {
        (p.key or "").rsplit(".", 1)[0] + "." + p.hint.split("'")[1]
        for p in out
        if p.message.startswith("unknown key") and p.hint and p.hint.count("'") >= 2
    }
    return [p for p in out if not (p.message.startswith("missing required key") and p.key in explained)]


# ---------------------------------------------------------------------------------------------
# entry points


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Loading a 1 MB config builds ~10^6 small objects (nodes, marks, dicts, specs), and each
    thousand of them starts the cyclic collector, which walks every live object: that is over half
    the load time. Nothing built here is cyclic (a self-referencing alias is refused), so reference
    counting frees it all; the collector is simply not needed until the load is done."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_config(
    path: str | os.PathLike[str] | None,
    overrides: Sequence[str] = (),
    *,
    text: str | None = None,
) -> LoadedConfig:
    """Read, override and validate a run config. Raises :class:`ConfigError` listing every problem."""
    with _gc_paused():
        return _load_config(path, overrides, text)


def _load_config(path: str | os.PathLike[str] | None, overrides: Sequence[str], text: str | None) -> LoadedConfig:
    file = Path(path) if path is not None else None
    if text is None:
        if file is None:
            raise ConfigError("no config file given")
        if not file.exists():
            guess = (
                did_you_mean(file.name, [p.name for p in file.parent.glob("*.y*ml")]) if file.parent.is_dir() else None
            )
            raise ConfigError(
                f"config file not found: {file}",
                hint=f"did you mean {str(file.parent / guess)!r}?" if guess else None,
            )
        if file.is_dir():
            raise ConfigError(f"expected a YAML file, received a folder: {file}")
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise _too_big(
                f"the config is {file.stat().st_size:,} bytes; expected at most {MAX_CONFIG_BYTES:,}",
                str(file),
                "a run config is a few kB",
            )
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{file}: expected a UTF-8 YAML text file, received bytes that are not UTF-8 "
                f"(byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r})",
                hint="save the file as UTF-8 text; a binary or UTF-16 file is not a config",
            ) from None
    label = str(file) if file is not None else "<config>"
    raw, locs = parse_yaml(text, label)
    for item in overrides:
        opath = apply_override(raw, item)
        for i in range(1, len(opath) + 1):
            locs.setdefault(dotted(opath[:i]), f"override {item!r}")
        locs[dotted(opath)] = f"override {item!r}"
    loaded = LoadedConfig(None, file, raw, text, tuple(overrides), locs)
    from trainctl.config.schema import RunConfig  # after parsing: a refused file never pays for it

    try:
        loaded.config = RunConfig.model_validate(raw, context={"base_dir": str(loaded.base_dir)})
    except ValidationError as exc:
        problems = problems_from(exc, RunConfig, raw)
        problems = [Problem(p.message, p.key, loaded.where(p.key or "") or label, p.hint) for p in problems]
        problems.sort(key=lambda p: _line_of(p.where))
        raise ConfigError(f"{len(problems)} problem(s) in {label}", problems=problems) from None
    _check_shapes(loaded)
    if loaded.config.tune is not None:
        from trainctl.config.tune import check_tune

        check_tune(loaded)
    return loaded


def _check_shapes(loaded: LoadedConfig) -> None:
    """Run Keras's shape inference now, so `config validate` catches a Reshape that cannot fit, and
    check the data section against the model's inputs and outputs."""
    from trainctl.config.data import check_data_for_model
    from trainctl.model.shapes_graph import build_graph

    try:
        graph = build_graph(loaded.config.model)
        check_data_for_model(loaded.config.data, graph.input_names, graph.output_names)
    except ConfigError as exc:
        exc.locate(loaded.where)
        raise


def _line_of(where: str | None) -> int:
    if where and ":" in where:
        tail = where.rsplit(":", 1)[1]
        if tail.isdigit():
            return int(tail)
    return 10**9
