"""The model as a graph, from its spec alone: inputs, one node per layer call, outputs, shapes.

Pure Python (no torch), so ``config validate`` and ``summary`` check and show a Functional model
instantly. A spec without graph keys is a Keras ``Sequential``: the graph is then the chain of
:func:`trainctl.model.shapes.infer`, row for row, so Sequential names and shapes never change.

Value ids: ``0 .. len(inputs)-1`` are the model inputs, ``len(inputs) + k`` is node ``k``'s output.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import Any

from trainctl.errors import ConfigError
from trainctl.model.shapes import MERGE_TYPES, LayerInfo, Shape, format_shape, infer, rules, unique_name


@dataclass(frozen=True)
class SummaryRow(LayerInfo):
    """A summary row of a Functional model: ``connected`` is Keras's "Connected to" cell
    (``stem[0][0], block_conv2[0][0]``; ``-`` for an input), None in the 3-column layout."""

    connected: str | None = None


@dataclass(frozen=True)
class GraphInput:
    """A model input (Keras's InputLayer)."""

    name: str
    shape: Shape
    dtype: str = "float32"


@dataclass(frozen=True)
class Node:
    """One call of a layer: ``layers[layer]`` applied to the values ``args`` (a list when ``merge``)."""

    entry: int  # index in spec.layers
    layer: int  # index in Graph.layers
    call: int  # 0 for the layer's first call, 1 for the second...
    args: tuple[int, ...]
    merge: bool
    in_shapes: tuple[Shape, ...]
    out_shape: Shape


@dataclass(frozen=True)
class Graph:
    name: str
    inputs: tuple[GraphInput, ...]
    layers: tuple[LayerInfo, ...]  # one row per layer (not per call), in config order
    nodes: tuple[Node, ...]  # in config order, which is a topological order
    outputs: tuple[int, ...]  # value ids
    functional: bool  # False: a Keras Sequential

    @property
    def is_chain(self) -> bool:
        """One input, one output, each node taking the value just before it: forward is a loop."""
        n = len(self.inputs)
        return (
            n == 1
            and len(self.outputs) == 1
            and self.outputs[0] == n + len(self.nodes) - 1
            and all(node.args == (n + k - 1,) and not node.merge for k, node in enumerate(self.nodes))
        )

    def shape_of(self, value: int) -> Shape:
        n = len(self.inputs)
        return self.inputs[value].shape if value < n else self.nodes[value - n].out_shape

    def history(self, value: int) -> tuple[str, int, int]:
        """Keras's ``keras_history`` of a value: (layer name, node index, tensor index)."""
        n = len(self.inputs)
        if value < n:
            return (self.inputs[value].name, 0, 0)
        node = self.nodes[value - n]
        return (self.layers[node.layer].name, node.call, 0)

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """Keras's ``model.output_names``: the output layers' names."""
        return [self.history(v)[0] for v in self.outputs]

    def keras_order(self) -> list[tuple[str, int]]:
        """Keras's ``model.layers`` order: ``("input", i)`` and ``("layer", j)`` items sorted by
        depth from the outputs, ties by first-seen index of a DFS from the outputs (map_graph)."""
        n = len(self.inputs)

        def op(value: int) -> tuple[str, int]:
            return ("input", value) if value < n else ("layer", self.nodes[value - n].layer)

        order: list[int] = []  # values, inputs first (post-order)
        seen_ops: dict[tuple[str, int], int] = {}
        done: set[int] = set()

        def visit(value: int) -> None:
            if value in done:
                return
            seen_ops.setdefault(op(value), len(seen_ops))
            if value >= n:
                for arg in self.nodes[value - n].args:
                    visit(arg)
            done.add(value)
            order.append(value)

        for out in self.outputs:
            visit(out)
        node_depth: dict[int, int] = {}
        op_depth: dict[tuple[str, int], int] = {}
        for value in reversed(order):
            depth = max(node_depth.setdefault(value, 0), op_depth.get(op(value), 0))
            op_depth[op(value)] = depth
            node_depth[value] = depth
            if value >= n:
                for arg in self.nodes[value - n].args:
                    node_depth[arg] = max(depth + 1, node_depth.get(arg, 0))
        for i in range(n):  # inputs no output depends on (refused at validation; kept for safety)
            if ("input", i) not in op_depth:
                op_depth[("input", i)] = 0
                seen_ops[("input", i)] = -1
        return sorted(op_depth, key=lambda o: (-op_depth[o], seen_ops[o]))


def summary_rows(graph: Graph) -> list[LayerInfo]:
    """Keras's ``model.summary()`` rows: the layers of a Sequential; for a Functional model every
    operation in ``model.layers`` order, InputLayers included, with "Connected to" unless the model
    is sequential-like (one input, one output, no merge, no shared layer: keras summary_utils)."""
    if not graph.functional:
        return list(graph.layers)
    calls: dict[int, list[Node]] = {}
    for node in graph.nodes:
        calls.setdefault(node.layer, []).append(node)
    seq_like = (
        len(graph.inputs) == 1
        and len(graph.outputs) == 1
        and all(len(n.args) == 1 for n in graph.nodes)
        and all(len(c) == 1 for c in calls.values())
    )
    rows: list[LayerInfo] = []
    for kind, i in graph.keras_order():
        if kind == "input":
            inp = graph.inputs[i]
            connected = None if seq_like else "-"
            rows.append(SummaryRow(-1, inp.name, "InputLayer", inp.shape, inp.shape, 0, 0, connected))
            continue
        row = graph.layers[i]
        refs = [graph.history(a) for node in calls[i] for a in node.args]
        connected = None if seq_like else ", ".join(f"{n}[{k}][{t}]" for n, k, t in refs) or "-"
        rows.append(SummaryRow(row.index, row.name, row.class_name, row.input_shape, row.output_shape,
                               row.trainable_params, row.non_trainable_params, connected))  # fmt: skip
    return rows


def _as_list(value: str | list[str] | None) -> list[str] | None:
    return [value] if isinstance(value, str) else value


# the last graph built, by spec identity: loading, the memory estimate, the weights check and the
# model all want the graph of the same frozen spec, and a 20,000-layer one takes 0.1 s to build
_last: tuple[weakref.ref[Any], str, Graph] | None = None


def build_graph(spec: Any, key_prefix: str = "model") -> Graph:
    """Check the wiring and infer every shape. Raises :class:`ConfigError` naming the layer and key."""
    global _last
    if _last is not None and _last[0]() is spec and _last[1] == key_prefix:
        return _last[2]
    graph = _build_graph(spec, key_prefix)
    with contextlib.suppress(TypeError):  # a spec that takes no weak reference is not remembered
        _last = (weakref.ref(spec), key_prefix, graph)
    return graph


def _build_graph(spec: Any, key_prefix: str) -> Graph:
    if not getattr(spec, "is_graph", False):
        input_shape, rows = infer(list(spec.layers), f"{key_prefix}.layers")
        first = spec.layers[0]
        in_name = (first.name or "input_layer") if first.type == "InputLayer" else "input_layer"
        dtype = getattr(first, "dtype", "float32") if first.type == "InputLayer" else "float32"
        nodes = tuple(Node(r.index, k, 0, (k,), False, (r.input_shape,), r.output_shape) for k, r in enumerate(rows))
        return Graph(spec.name, (GraphInput(in_name, input_shape, dtype),), tuple(rows), nodes, (len(rows),), False)
    return _Builder(spec, key_prefix).build()


class _Builder:
    def __init__(self, spec: Any, key_prefix: str) -> None:
        self.spec = spec
        self.kp = key_prefix
        self.values: dict[str, int] = {}  # name -> value id
        self.later: dict[str, int] = {}  # names defined further down -> entry index
        self.inputs: list[GraphInput] = []
        self.rows: list[LayerInfo] = []
        self.nodes: list[Node] = []
        self.layer_of: dict[str, int] = {}  # layer name -> row index
        self.calls: dict[int, int] = {}  # row index -> number of calls so far

    def key(self, i: int, field: str = "") -> str:
        return f"{self.kp}.layers[{i}]" + (f".{field}" if field else "")

    # ------------------------------------------------------------------ names
    def _inputs(self) -> list[int]:
        """Declare the model inputs; return the entry indices that are InputLayer entries."""
        skip: list[int] = []
        if self.spec.inputs is not None:
            for i, inp in enumerate(self.spec.inputs):
                self._claim(inp.name, f"{self.kp}.inputs[{i}].name")
                self.inputs.append(GraphInput(inp.name, tuple(inp.shape), inp.dtype))
            return skip
        first = self.spec.layers[0]
        if first.type == "InputLayer":
            name = first.name or "input_layer"
            self._claim(name, self.key(0, "name"))
            self.inputs.append(GraphInput(name, tuple(first.declared_input_shape()), first.dtype))
            skip.append(0)
        else:
            self.inputs.append(GraphInput("input_layer", tuple(first.declared_input_shape()), "float32"))
        return skip

    def _claim(self, name: str, key: str) -> None:
        if name in self.values or name in self.layer_of:
            raise ConfigError(f"name {name!r} is used twice in the model", key=key, hint="names must be unique")
        self.values[name] = -1  # placeholder until defined

    def _names(self, skip: list[int]) -> list[str]:
        """Each entry's name: explicit, or Keras's auto name (``dense``, ``dense_1``...)."""
        explicit: dict[str, int] = {}
        for i, e in enumerate(self.spec.layers):
            if i in skip or e.name is None:
                continue
            if e.name in explicit or e.name in self.values:
                raise ConfigError(f"name {e.name!r} is used twice in the model", key=self.key(i, "name"))
            explicit[e.name] = i
        used = set(explicit) | set(self.values)
        counts: dict[str, int] = {}
        names = []
        for i, e in enumerate(self.spec.layers):
            if i in skip:
                names.append(self.inputs[0].name)
            elif e.name is not None:
                names.append(e.name)
            elif getattr(e, "call", None) is not None:
                names.append("")  # an unnamed call: only the entry below can take it
            else:
                names.append(unique_name(e.type, counts, used))
        self.later = {nm: i for i, nm in enumerate(names) if nm}
        for inp in self.inputs:
            self.later.setdefault(inp.name, -1)
        return names

    def _resolve(self, ref: str, i: int) -> int:
        if ref in self.values and self.values[ref] >= 0:
            return self.values[ref]
        if ref in self.later and self.later[ref] >= i:
            what = "itself" if self.later[ref] == i else f"a later layer (model.layers[{self.later[ref]}])"
            raise ConfigError(
                f"{ref!r} is {what}; a layer can only take model inputs or the outputs of layers above it",
                key=self.key(i, "inputs"),
                hint="move this layer below the one it takes",
            )
        known = [nm for nm, v in self.values.items() if v >= 0]
        from trainctl.config.base import did_you_mean

        guess = did_you_mean(ref, known)
        raise ConfigError(
            f"unknown layer or input {ref!r}; expected one of: {', '.join(known)}",
            key=self.key(i, "inputs"),
            hint=f"did you mean {guess!r}?" if guess else None,
        )

    # ------------------------------------------------------------------ build
    def build(self) -> Graph:
        skip = self._inputs()
        names = self._names(skip)
        for k, inp in enumerate(self.inputs):
            self.values[inp.name] = k
        n_in = len(self.inputs)
        prev: int | None = 0 if n_in == 1 else None
        for i, entry in enumerate(self.spec.layers):
            if i in skip:
                continue
            refs = _as_list(entry.inputs)
            if refs is None:
                if prev is None:
                    raise ConfigError(
                        f"layer {names[i] or entry.call!r} has no `inputs` and nothing above it to take; "
                        f"the model has {n_in} inputs",
                        key=self.key(i),
                        hint="name what it takes: `inputs: <input or layer name>`",
                    )
                args: tuple[int, ...] = (prev,)
            else:
                if not refs:
                    raise ConfigError("expected at least one name, received []", key=self.key(i, "inputs"))
                args = tuple(self._resolve(r, i) for r in refs)
            value = n_in + len(self.nodes)
            self._node(i, entry, names[i], args, isinstance(entry.inputs, list))
            if names[i]:
                self.values[names[i]] = value
            prev = value
        outputs = self._outputs(n_in)
        self._check_used(outputs, n_in)
        return Graph(self.spec.name, tuple(self.inputs), tuple(self.rows), tuple(self.nodes), outputs, True)

    def _node(self, i: int, entry: Any, name: str, args: tuple[int, ...], listed: bool) -> None:
        shapes = tuple(self._shape(a) for a in args)
        call = getattr(entry, "call", None)
        if call is not None:
            row_i = self.layer_of.get(call)
            if row_i is None:
                guess = None
                from trainctl.config.base import did_you_mean

                guess = did_you_mean(call, list(self.layer_of))
                where = " above" if call not in self.later else " above (it is defined later or is an input)"
                raise ConfigError(
                    f"`call: {call}` expected the name of a layer{where}, received {call!r}",
                    key=self.key(i, "call"),
                    hint=f"did you mean {guess!r}?" if guess else None,
                )
            row = self.rows[row_i]
            spec = self.spec.layers[row.index]
        else:
            spec = entry
            row = None
        label = f"{row.name if row else name} ({spec.type})"
        merge = spec.type in MERGE_TYPES
        if spec.type == "InputLayer":
            raise ConfigError(
                "InputLayer may only be the first layer; declare more inputs under model.inputs", key=self.key(i)
            )
        if not merge and len(args) != 1:
            raise ConfigError(
                f"{label} takes one input, received {len(args)}: {', '.join(_as_list(entry.inputs) or [])}",
                key=self.key(i, "inputs"),
                hint="merge them first with Concatenate or Add",
            )
        if merge and not listed:
            raise ConfigError(
                f"{label} merges a list of inputs, received one",
                key=self.key(i, "inputs"),
                hint="name what it merges: `inputs: [a, b]`",
            )
        rule = rules()[spec.type]
        in_arg: Any = shapes if merge else shapes[0]
        out, trainable, frozen = rule(spec, in_arg, self.key(i))
        if not spec.trainable:
            trainable, frozen = 0, trainable + frozen
        if row is None:
            row_i = len(self.rows)
            self.layer_of[name] = row_i
            self.rows.append(LayerInfo(i, name, spec.type, shapes[0], out, trainable, frozen))
            self.calls[row_i] = 1
            ncall = 0
        else:
            assert row_i is not None
            if trainable + frozen != row.params:
                raise ConfigError(
                    f"`call: {row.name}` expected an input that fits the weights of its first call "
                    f"({format_shape(row.input_shape)}), received {format_shape(shapes[0])}",
                    key=self.key(i, "inputs"),
                )
            ncall = self.calls[row_i]
            self.calls[row_i] = ncall + 1
            # Keras's summary shows a shared layer's last output shape
            self.rows[row_i] = LayerInfo(
                row.index, row.name, row.class_name, row.input_shape, out, row.trainable_params,
                row.non_trainable_params,
            )  # fmt: skip
        self.nodes.append(Node(i, row_i, ncall, args, merge, shapes, out))

    def _shape(self, value: int) -> Shape:
        n = len(self.inputs)
        return self.inputs[value].shape if value < n else self.nodes[value - n].out_shape

    def _outputs(self, n_in: int) -> tuple[int, ...]:
        if self.spec.outputs is None:
            if not self.nodes:
                raise ConfigError("the model has no layers to output", key=f"{self.kp}.layers")
            return (n_in + len(self.nodes) - 1,)
        outs = []
        for j, ref in enumerate(self.spec.outputs):
            if ref not in self.values or self.values[ref] < 0:
                from trainctl.config.base import did_you_mean

                known = [nm for nm, v in self.values.items() if v >= 0]
                guess = did_you_mean(ref, known)
                raise ConfigError(
                    f"unknown layer {ref!r} in outputs; expected one of: {', '.join(known)}",
                    key=f"{self.kp}.outputs[{j}]",
                    hint=f"did you mean {guess!r}?" if guess else None,
                )
            outs.append(self.values[ref])
        return tuple(outs)

    def _check_used(self, outputs: tuple[int, ...], n_in: int) -> None:
        used = set(outputs) | {a for node in self.nodes for a in node.args}
        for k, inp in enumerate(self.inputs):
            if k not in used:
                key = f"{self.kp}.inputs[{k}]" if self.spec.inputs is not None else self.key(0)
                raise ConfigError(
                    f"model input {inp.name!r} is not used by any layer",
                    key=key,
                    hint=f"give it to a layer with `inputs: {inp.name}`, or remove it",
                )
        for k, node in enumerate(self.nodes):
            if n_in + k not in used:
                name = self.rows[node.layer].name
                raise ConfigError(
                    f"the output of layer {name!r} is not used: no layer below takes it and it is not in model.outputs",
                    key=self.key(node.entry),
                    hint=f"add it to `model.outputs`, or give it to a layer with `inputs: {name}`",
                )
