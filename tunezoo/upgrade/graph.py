"""Read the JSON object graphs that older TVM versions wrote for workloads.

A MetaSchedule workload line stores ``base64(8-byte length + JSON graph)``. Three eras of
that graph exist in the wild, and TVM 0.27 loads only the last:

* ``legacy`` (TVM up to about 0.18): ``{"root", "nodes": [{"type_key", "attrs"}], "attrs":
  {"tvm_version"}, "b64ndarrays"}``; every field value is a string (an index or a literal).
* ``tir`` (about 0.19 to 0.23): the current ``{"root_index", "nodes": [{"type", "data"}],
  "metadata"}`` layout, but TIR node types still named ``tir.*`` and fields such as
  ``buffer_map`` that 0.27 no longer has.
* ``current`` (0.27): what ``tvm.ir.save_json`` writes now.

:class:`Graph` hides the first two behind one accessor so the TVMScript printer
(:mod:`tunezoo.upgrade.tvmscript`) reads either without caring which it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any

ERA_LEGACY = "legacy"
ERA_TIR = "tir"
ERA_CURRENT = "current"
ERAS = (ERA_LEGACY, ERA_TIR, ERA_CURRENT)

# TVM version assumed when a graph does not say (used only for provenance)
ERA_DEFAULT_VERSION = {ERA_LEGACY: "<=0.18", ERA_TIR: "0.19-0.23", ERA_CURRENT: "0.27"}

# Both old spellings of a node type, mapped to one name the printer uses.
_TYPE_ALIASES = {
    "": "None",
    "ffi.Array": "Array",
    "ffi.Map": "Map",
    "ffi.String": "String",
    "runtime.String": "String",
    "ir.IntImm": "IntImm",
    "ir.FloatImm": "FloatImm",
    "ir.Range": "Range",
    "ir.PrimType": "PrimType",
    "ir.PointerType": "PointerType",
    "ir.TupleType": "TupleType",
    "ir.Op": "Op",
    "ir.GlobalVar": "GlobalVar",
    "ir.IRModule": "IRModule",
    "ir.DictAttrs": "DictAttrs",
    "ir.SourceMap": "SourceMap",
    "runtime.BoxInt": "int",
    "runtime.BoxBool": "bool",
    "runtime.BoxFloat": "float",
}


class GraphError(ValueError):
    """A workload graph that cannot be read; the message names the node and field."""


def decode_workload_b64(b64: str) -> str:
    """The JSON text inside a workload line's base64 field (8-byte length prefix dropped)."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise GraphError(f"workload is not valid base64 ({exc})") from exc
    if len(raw) < 8:
        raise GraphError("workload bytes are shorter than the 8-byte length header")
    (length,) = struct.unpack("<Q", raw[:8])
    body = raw[8:]
    if length != len(body):
        raise GraphError(f"workload length header says {length} bytes, found {len(body)}")
    return body.decode("utf-8")


def detect_era(graph: dict[str, Any]) -> str:
    """Which era wrote this graph (see the module docstring)."""
    if "root" in graph and "root_index" not in graph:
        return ERA_LEGACY
    if "root_index" not in graph:
        raise GraphError("neither 'root' nor 'root_index': not a TVM JSON object graph")
    for node in graph.get("nodes", []):
        kind = node.get("type", "")
        if kind.startswith("tir."):
            return ERA_TIR
    return ERA_CURRENT


@dataclass
class Graph:
    """A parsed legacy or ``tir``-era object graph with era-independent accessors."""

    era: str
    tvm_version: str | None
    nodes: list[dict[str, Any]]
    root: int

    @classmethod
    def from_json(cls, text: str) -> Graph:
        """Parse graph JSON text (not base64)."""
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise GraphError(f"workload graph is not valid JSON ({exc})") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("nodes"), list):
            raise GraphError("workload graph has no 'nodes' list")
        era = detect_era(obj)
        if era == ERA_LEGACY:
            version = (obj.get("attrs") or {}).get("tvm_version")
            root = int(obj["root"])
        else:
            version = (obj.get("metadata") or {}).get("tvm_version")
            root = int(obj["root_index"])
        return cls(era, version, obj["nodes"], root)

    # ------------------------------------------------------------------ node access

    def _node(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self.nodes):
            raise GraphError(f"node index {i} out of range (graph has {len(self.nodes)})")
        return self.nodes[i]

    def type(self, i: int) -> str:
        """The node's type with era spellings unified (``ffi.Array`` and ``Array`` alike)."""
        node = self._node(i)
        raw = node.get("type_key") if self.era == ERA_LEGACY else node.get("type")
        raw = raw or ""
        return _TYPE_ALIASES.get(raw, raw)

    def fields(self, i: int) -> dict[str, Any]:
        node = self._node(i)
        data = node.get("attrs") if self.era == ERA_LEGACY else node.get("data")
        return data if isinstance(data, dict) else {}

    def has(self, i: int, name: str) -> bool:
        return name in self.fields(i)

    def raw(self, i: int, name: str) -> Any:
        fields = self.fields(i)
        if name not in fields:
            raise GraphError(f"node {i} ({self.type(i)}) has no field '{name}'")
        return fields[name]

    def ref(self, i: int, name: str) -> int | None:
        """An object field: the referenced node index, or None for a null reference."""
        value = self.raw(i, name)
        try:
            index = int(value)
        except (TypeError, ValueError) as exc:
            raise GraphError(
                f"node {i} ({self.type(i)}) field '{name}' is {value!r}, expected a node index"
            ) from exc
        if index == 0 or self.type(index) == "None":
            return None
        return index

    def lit_str(self, i: int, name: str) -> str:
        """A POD string field (a dtype, for instance)."""
        return str(self.raw(i, name))

    def lit_int(self, i: int, name: str) -> int:
        value = self.raw(i, name)
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise GraphError(
                f"node {i} ({self.type(i)}) field '{name}' is {value!r}, expected an integer"
            ) from exc

    def lit_float(self, i: int, name: str) -> float:
        value = self.raw(i, name)
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise GraphError(
                f"node {i} ({self.type(i)}) field '{name}' is {value!r}, expected a number"
            ) from exc

    def string(self, i: int | None) -> str:
        """The value of a String node (a null reference or a missing value is "")."""
        if i is None:
            return ""
        node = self._node(i)
        if self.type(i) != "String":
            raise GraphError(f"node {i} is {self.type(i)}, expected a String")
        if self.era == ERA_LEGACY:
            return str(node.get("repr_str", ""))
        return str(node.get("data", ""))

    def op_name(self, i: int) -> str:
        node = self._node(i)
        if self.type(i) != "Op":
            raise GraphError(f"node {i} is {self.type(i)}, expected an Op")
        return str(node.get("repr_str") if self.era == ERA_LEGACY else node.get("data"))

    def array(self, i: int | None) -> list[int]:
        """The element indices of an Array node (a null reference is an empty array)."""
        if i is None:
            return []
        if self.type(i) != "Array":
            raise GraphError(f"node {i} is {self.type(i)}, expected an Array")
        return [int(x) for x in self._node(i).get("data", [])]

    def map_items(self, i: int | None) -> list[tuple[str | int, int]]:
        """A Map's (key, value-index) pairs; keys of legacy string maps come back as str."""
        if i is None:
            return []
        if self.type(i) != "Map":
            raise GraphError(f"node {i} is {self.type(i)}, expected a Map")
        node = self._node(i)
        data = [int(x) for x in node.get("data", [])]
        if self.era == ERA_LEGACY and "keys" in node:
            return list(zip(node["keys"], data, strict=True))
        return [(data[k], data[k + 1]) for k in range(0, len(data), 2)]

    def map_str_items(self, i: int | None) -> list[tuple[str, int]]:
        """A Map with string keys, keys resolved."""
        out = []
        for key, value in self.map_items(i):
            out.append((key if isinstance(key, str) else self.string(key), value))
        return out

    def pod(self, i: int) -> Any:
        """The value of a boxed POD node of the ``tir`` era (``int``, ``bool``, ``float``)."""
        return self._node(i).get("data")
