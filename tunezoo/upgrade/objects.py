"""Rebuild small TIR objects embedded in old traces (``TransformLayout``'s IndexMap).

Some instructions carry a TIR object as an input, serialised as a JSON object graph in
the era the trace was written (``TransformLayout`` stores its ``IndexMap`` that way).
TVM 0.27 refuses the old graph (``expected 'root_index'``), so the object is rebuilt
with TVM 0.27's constructors from the old graph and serialised again with
``tvm.ir.save_json``, exactly as 0.27 writes it into a trace.
"""

from __future__ import annotations

from typing import Any

from tunezoo.upgrade.graph import ERA_CURRENT, Graph, GraphError
from tunezoo.upgrade.tvmscript import UnsupportedNode

# old tir.<name> binary nodes rebuilt with tvm.tirx.<name>
_BINARY = frozenset(
    {"Add", "Sub", "Mul", "Div", "Mod", "FloorDiv", "FloorMod", "Min", "Max"}
    | {"EQ", "NE", "LT", "LE", "GT", "GE", "And", "Or"}
)


class _Builder:
    def __init__(self, graph: Graph) -> None:
        import tvm  # noqa: PLC0415

        self.g = graph
        self.tirx = tvm.tirx
        self.memo: dict[int, Any] = {}

    def obj(self, i: int | None) -> Any:
        if i is None:
            return None
        if i not in self.memo:
            self.memo[i] = self._build(i)
        return self.memo[i]

    def _build(self, i: int) -> Any:
        g, tirx = self.g, self.tirx
        kind = g.type(i)
        if kind == "tir.IndexMap":
            initial = [self.obj(v) for v in g.array(g.ref(i, "initial_indices"))]
            final = [self.obj(e) for e in g.array(g.ref(i, "final_indices"))]
            inverse = self.obj(g.ref(i, "inverse_index_map"))
            return tirx.IndexMap(initial, final, inverse)
        if kind in ("tir.Var", "tir.SizeVar"):
            return tirx.Var(g.string(g.ref(i, "name")), g.lit_str(i, "dtype"))
        if kind == "IntImm":
            return tirx.IntImm(g.lit_str(i, "dtype"), g.lit_int(i, "value"))
        if kind == "FloatImm":
            return tirx.FloatImm(g.lit_str(i, "dtype"), g.lit_float(i, "value"))
        if kind == "tir.Cast":
            return tirx.Cast(g.lit_str(i, "dtype"), self.obj(g.ref(i, "value")))
        if kind.startswith("tir.") and kind[4:] in _BINARY:
            ctor = getattr(tirx, kind[4:])
            return ctor(self.obj(g.ref(i, "a")), self.obj(g.ref(i, "b")))
        raise UnsupportedNode(f"node {i} of type {kind} in an embedded object")


def upgrade_embedded_graph(text: str) -> str:
    """An old object graph embedded in a trace, rebuilt and saved by TVM 0.27."""
    import tvm  # noqa: PLC0415

    graph = Graph.from_json(text)
    if graph.era == ERA_CURRENT:
        return text
    obj = _Builder(graph).obj(graph.root)
    if obj is None:
        raise GraphError("embedded object graph has a null root")
    return tvm.ir.save_json(obj)


def looks_like_old_graph(value: Any) -> bool:
    """Whether a trace input is an embedded object graph of an old era."""
    return (
        isinstance(value, str)
        and value.lstrip().startswith("{")
        and '"nodes"' in value
        and ('"root"' in value or '"tir.' in value)
    )
