"""Turn one stored workload (any era) into a TVM 0.27 IRModule and its database line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tunezoo.upgrade.graph import ERA_CURRENT, Graph, decode_workload_b64
from tunezoo.upgrade.tvmscript import graph_to_tvmscript


@dataclass
class UpgradedWorkload:
    """A workload as TVM 0.27 sees it, plus what it was before."""

    mod: Any  # tvm.IRModule
    line: list[str]  # [structural hash (decimal), base64 graph]: the 0.27 JSON database line
    era: str
    tvm_version: str | None  # as the original graph records it
    tvmscript: str | None  # the source the old graph was printed to (None if current)

    @property
    def shash(self) -> str:
        return self.line[0]


def _op_exists(name: str) -> bool:
    import tvm  # noqa: PLC0415

    try:
        tvm.ir.Op.get(name)
    except Exception:  # TVM raises its own error types for unknown ops
        return False
    return True


def strip_spans(mod: Any) -> Any:
    """The module without source spans.

    Parsing TVMScript attaches a span to every node; kept, they would bloat every stored
    graph with line numbers of a temporary text. Structural hashing ignores spans, so this
    changes nothing else.
    """
    import tvm  # noqa: PLC0415

    graph = json.loads(tvm.ir.save_json(mod))
    for node in graph["nodes"]:
        data = node.get("data")
        if isinstance(data, dict) and "span" in data:
            data["span"] = 0
    # unreferenced span nodes disappear on the load/save round trip
    return tvm.ir.load_json(tvm.ir.save_json(tvm.ir.load_json(json.dumps(graph))))


def upgrade_workload(b64: str) -> UpgradedWorkload:
    """Decode a workload line's base64 field and rebuild it for TVM 0.27.

    Raises ``GraphError`` (unreadable or untranslatable graph) or TVM's own errors (the
    printed TVMScript does not parse, the module does not load); callers turn both into a
    rejection reason.
    """
    import tvm  # noqa: PLC0415
    import tvm.script  # noqa: PLC0415
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

    text = decode_workload_b64(b64)
    graph = Graph.from_json(text)
    if graph.era == ERA_CURRENT:
        mod = tvm.ir.load_json(text)
        script = None
    else:
        gname, script = graph_to_tvmscript(graph, _op_exists)
        func = tvm.script.from_source(script)
        mod = strip_spans(tvm.IRModule({gname: func}))
    line = [str(x) for x in ms.database.Workload(mod).as_json()]
    return UpgradedWorkload(mod, line, graph.era, graph.tvm_version, script)
