"""Print an old TIR workload graph as TVMScript in TVM 0.27's dialect.

Why TVMScript rather than rewriting the JSON node by node: TVM 0.27 changed the *model*
of TIR, not just type names. A buffer is now a ``Var`` with a ``BufferType`` (no
``buffer_map``, no data pointer), ``tir.Block`` is ``s_tir.SBlock``, ``LetStmt`` became a
body-less ``Bind``, arithmetic nodes moved to ``ir.prim.*`` and so on. Printing the old
function as source text and letting 0.27's own parser build it gives exactly the IR that
0.27 would build for that program, with every invariant its verifier checks.

The printer is deliberately literal: constants carry their dtype (``T.int64(4)``),
arithmetic uses node constructors (``T.Add(a, b)``) rather than Python operators (which
would promote or fold), and block reads/writes are printed as stored, so the parsed
function has the same loops, blocks and regions as the original. It needs no TVM.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
from collections.abc import Callable

from tunezoo.upgrade.graph import Graph, GraphError

# old op name prefix -> the 0.27 prefixes to try, in order
_OP_PREFIXES = (("tir.", ("tirx.", "prim.")),)
# calls that 0.27 represents as expression nodes instead
_CALL_NODES = {
    "tir.shift_right": "T.RShift",
    "tir.shift_left": "T.LShift",
    "tir.bitwise_and": "T.BitwiseAnd",
    "tir.bitwise_or": "T.BitwiseOr",
    "tir.bitwise_xor": "T.BitwiseXor",
    "tir.bitwise_not": "T.BitwiseNot",
}
# function attribute keys renamed between eras
_ATTR_KEY_PREFIXES = (("tir.", "tirx."),)

_BINARY = {
    "tir.Add": "T.Add",
    "tir.Sub": "T.Sub",
    "tir.Mul": "T.Mul",
    "tir.Div": "T.Div",
    "tir.Mod": "T.Mod",
    "tir.FloorDiv": "T.FloorDiv",
    "tir.FloorMod": "T.FloorMod",
    "tir.Min": "T.Min",
    "tir.Max": "T.Max",
    "tir.EQ": "T.EQ",
    "tir.NE": "T.NE",
    "tir.LT": "T.LT",
    "tir.LE": "T.LE",
    "tir.GT": "T.GT",
    "tir.GE": "T.GE",
    "tir.And": "T.And",
    "tir.Or": "T.Or",
}

# IterVar.iter_type -> T.axis constructor
_AXIS = {0: "spatial", 2: "reduce", 3: "scan", 4: "opaque"}
# For.kind -> T loop constructor
_LOOP = {0: "serial", 1: "parallel", 2: "vectorized", 3: "unroll"}
# Buffer.buffer_type: 1 is the default; 2 (auto broadcast) has no 0.27 equivalent
_BUFFER_TYPE_DEFAULT = 1

_RESERVED = {"T", "I", "tvm", "range"} | set(dir(builtins))


class UnsupportedNode(GraphError):
    """A node the printer does not translate (the message names it)."""


def _op_candidates(old: str) -> list[str]:
    for before, afters in _OP_PREFIXES:
        if old.startswith(before):
            return [after + old[len(before) :] for after in afters]
    return [old]


def _attr_key(old: str) -> str:
    for before, after in _ATTR_KEY_PREFIXES:
        if old.startswith(before):
            return after + old[len(before) :]
    return old


def _float_text(value: float) -> str:
    if math.isnan(value):
        return '"nan"'
    if math.isinf(value):
        return '"inf"' if value > 0 else '"-inf"'
    return repr(float(value))


class ScriptPrinter:
    """Turns the single PrimFunc of an old workload graph into TVMScript source."""

    def __init__(self, graph: Graph, op_exists: Callable[[str], bool] | None = None) -> None:
        self.g = graph
        self._op_exists = op_exists
        self._names: dict[int, str] = {}
        self._used: set[str] = set()
        self._lines: list[str] = []

    # ------------------------------------------------------------------ names

    def _fresh(self, base: str) -> str:
        name = re.sub(r"\W", "_", base, flags=re.ASCII) or "v"
        if name[0].isdigit():
            name = "_" + name
        if keyword.iskeyword(name) or name in _RESERVED:
            name += "_"
        candidate, k = name, 0
        while candidate in self._used:
            k += 1
            candidate = f"{name}_{k}"
        self._used.add(candidate)
        return candidate

    def name_of(self, i: int) -> str:
        """The unique identifier of a Var or Buffer node (assigned on first use)."""
        if i not in self._names:
            kind = self.g.type(i)
            if kind not in ("tir.Var", "tir.SizeVar", "tir.Buffer"):
                raise GraphError(f"node {i} is {kind}, expected a Var or Buffer")
            self._names[i] = self._fresh(self.g.string(self.g.ref(i, "name")))
        return self._names[i]

    # ------------------------------------------------------------------ module

    def function(self) -> tuple[str, str]:
        """(global name, TVMScript source) of the module's only PrimFunc."""
        g = self.g
        root = g.root
        if g.type(root) == "IRModule":
            items = g.map_items(g.ref(root, "functions"))
            funcs = [(k, v) for k, v in items if g.type(v) == "tir.PrimFunc"]
            if len(funcs) != 1 or len(items) != 1:
                kinds = sorted({g.type(v) for _, v in items})
                raise UnsupportedNode(
                    f"module holds {len(items)} functions ({', '.join(kinds)}); "
                    "a MetaSchedule workload has exactly one PrimFunc"
                )
            gvar, func = funcs[0]
            gname = gvar if isinstance(gvar, str) else g.string(g.ref(int(gvar), "name_hint"))
        elif g.type(root) == "tir.PrimFunc":
            gname, func = "main", root
        else:
            raise UnsupportedNode(f"graph root is {g.type(root)}, expected IRModule or PrimFunc")
        self._prim_func(func, gname)
        return gname, "\n".join(self._lines) + "\n"

    def _emit(self, depth: int, text: str) -> None:
        self._lines.append("    " * depth + text)

    def _prim_func(self, f: int, gname: str) -> None:
        g = self.g
        params = g.array(g.ref(f, "params"))
        buffer_map = dict(g.map_items(g.ref(f, "buffer_map")))
        sig = []
        for p in params:
            dtype = g.lit_str(p, "dtype")
            sig.append(f"{self.name_of(p)}: {'T.handle' if dtype == 'handle' else 'T.' + dtype}")
        fname = self._fresh(gname)
        self._emit(0, "@T.prim_func(s_tir=True)")
        self._emit(0, f"def {fname}({', '.join(sig)}):")
        attrs = self._func_attrs(g.ref(f, "attrs"))
        if attrs:
            self._emit(1, f"T.func_attr({{{', '.join(attrs)}}})")
        # shape variables defined by the buffers of the signature
        param_set = set(params)
        free: list[int] = []
        for p in params:
            buf = buffer_map.get(p)
            if buf is None:
                continue
            for field in ("shape", "strides"):
                for e in g.array(g.ref(buf, field)):
                    self._collect_vars(e, free, param_set)
            offset = g.ref(buf, "elem_offset")
            if offset is not None:
                self._collect_vars(offset, free, param_set)
        for v in free:
            self._emit(1, f"{self.name_of(v)} = T.{g.lit_str(v, 'dtype')}()")
        for p in params:
            buf = buffer_map.get(p)
            if buf is not None:
                self._emit(1, f"{self.name_of(buf)} = T.match_buffer({self._buffer_args(buf, p)})")
        body = g.ref(f, "body")
        if body is None:
            raise GraphError(f"PrimFunc node {f} has no body")
        self._stmt(body, 1)

    def _func_attrs(self, attrs: int | None) -> list[str]:
        if attrs is None:
            return []
        out = []
        for key, value in self.g.map_str_items(self.g.ref(attrs, "__dict__")):
            out.append(f"{_attr_key(key)!r}: {self._attr_value(value)}")
        return out

    def _attr_value(self, i: int) -> str:
        """An attribute or annotation value as a Python literal (what 0.27 stores boxed)."""
        g = self.g
        kind = g.type(i)
        if kind == "String":
            return repr(g.string(i))
        if kind == "IntImm":
            value = g.lit_int(i, "value")
            return repr(bool(value)) if g.lit_str(i, "dtype") == "bool" else str(value)
        if kind == "FloatImm":
            return _float_text(g.lit_float(i, "value"))
        if kind in ("int", "bool", "float"):
            return repr(g.pod(i))
        if kind == "Array":
            return "[" + ", ".join(self._attr_value(e) for e in g.array(i)) + "]"
        if kind == "Map":
            items = [f"{k!r}: {self._attr_value(v)}" for k, v in g.map_str_items(i)]
            return "{" + ", ".join(items) + "}"
        raise UnsupportedNode(f"attribute value node {i} of type {kind}")

    def _collect_vars(self, e: int, out: list[int], skip: set[int]) -> None:
        g = self.g
        kind = g.type(e)
        if kind in ("tir.Var", "tir.SizeVar"):
            if e not in skip and e not in out:
                out.append(e)
            return
        for name in ("a", "b", "value"):
            if g.has(e, name) and kind not in ("IntImm", "FloatImm"):
                ref = g.ref(e, name)
                if ref is not None:
                    self._collect_vars(ref, out, skip)

    def _buffer_args(self, buf: int, source: int | None) -> str:
        """Arguments of T.match_buffer / T.sblock_alloc_buffer for one old Buffer node."""
        g = self.g
        args = [] if source is None else [self.name_of(source)]
        shape = [self.expr(e) for e in g.array(g.ref(buf, "shape"))]
        args.append("(" + "".join(s + ", " for s in shape) + ")")
        args.append(repr(g.lit_str(buf, "dtype")))
        strides = [self.expr(e) for e in g.array(g.ref(buf, "strides"))]
        if strides:
            args.append(f"strides=({''.join(s + ', ' for s in strides)})")
        offset = g.ref(buf, "elem_offset")
        if offset is not None:
            args.append(f"elem_offset={self.expr(offset)}")
        scope = self._storage_scope(buf)
        if scope not in ("", "global"):
            args.append(f"scope={scope!r}")
        args.append(f"align={g.lit_int(buf, 'data_alignment')}")
        args.append(f"offset_factor={g.lit_int(buf, 'offset_factor')}")
        if g.has(buf, "buffer_type") and g.lit_int(buf, "buffer_type") != _BUFFER_TYPE_DEFAULT:
            raise UnsupportedNode(f"buffer node {buf} has buffer_type auto_broadcast")
        if g.has(buf, "axis_separators") and g.array(g.ref(buf, "axis_separators")):
            raise UnsupportedNode(f"buffer node {buf} has axis_separators")
        return ", ".join(args)

    def _storage_scope(self, buf: int) -> str:
        g = self.g
        data = g.ref(buf, "data")
        if data is None:
            return ""
        ann = g.ref(data, "type_annotation")
        if ann is None or g.type(ann) != "PointerType":
            return ""
        return g.string(g.ref(ann, "storage_scope"))

    # ------------------------------------------------------------------ statements

    def _stmt(self, s: int, depth: int) -> None:
        g = self.g
        kind = g.type(s)
        if kind == "tir.SeqStmt":
            for child in g.array(g.ref(s, "seq")):
                self._stmt(child, depth)
        elif kind == "tir.BlockRealize":
            self._block(s, depth)
        elif kind == "tir.For":
            self._for(s, depth)
        elif kind == "tir.BufferStore":
            self._check_no_predicate(s)
            buf = g.ref(s, "buffer")
            value = self.expr(g.ref(s, "value"))
            self._emit(depth, f"{self._access(buf, g.ref(s, 'indices'))} = {value}")
        elif kind == "tir.LetStmt":
            var = g.ref(s, "var")
            dtype = g.lit_str(var, "dtype")
            value = self.expr(g.ref(s, "value"))
            self._emit(depth, f"{self.name_of(var)}: T.let[T.{dtype}] = {value}")
            self._stmt(g.ref(s, "body"), depth)
        elif kind == "tir.Evaluate":
            self._emit(depth, f"T.evaluate({self.expr(g.ref(s, 'value'))})")
        elif kind == "tir.IfThenElse":
            self._emit(depth, f"if {self.expr(g.ref(s, 'condition'))}:")
            self._stmt(g.ref(s, "then_case"), depth + 1)
            other = g.ref(s, "else_case")
            if other is not None:
                self._emit(depth, "else:")
                self._stmt(other, depth + 1)
        else:
            raise UnsupportedNode(f"statement node {s} of type {kind}")

    def _check_no_predicate(self, node: int) -> None:
        if self.g.has(node, "predicate") and self.g.ref(node, "predicate") is not None:
            raise UnsupportedNode(f"{self.g.type(node)} node {node} has a predicate")

    def _for(self, s: int, depth: int) -> None:
        g = self.g
        kind = g.lit_int(s, "kind")
        if kind not in _LOOP:
            raise UnsupportedNode(f"For node {s} has loop kind {kind}")
        if g.has(s, "thread_binding") and g.ref(s, "thread_binding") is not None:
            raise UnsupportedNode(f"For node {s} is bound to a thread")
        if g.has(s, "step") and g.ref(s, "step") is not None:
            raise UnsupportedNode(f"For node {s} has a step")
        var = g.ref(s, "loop_var")
        # the loop variable's dtype follows the bounds (0.27 refuses an explicit int64)
        args = self._begin_end(g.ref(s, "min"), g.ref(s, "extent"))
        ann = g.map_str_items(g.ref(s, "annotations"))
        if ann:
            args.append(
                "annotations={" + ", ".join(f"{k!r}: {self._attr_value(v)}" for k, v in ann) + "}"
            )
        self._emit(depth, f"for {self.name_of(var)} in T.{_LOOP[kind]}({', '.join(args)}):")
        self._stmt(g.ref(s, "body"), depth + 1)

    def _begin_end(self, mn: int | None, extent: int | None) -> list[str]:
        """Loop bounds as TVMScript's (begin, end), folding constants so no Add appears."""
        g = self.g
        if mn is None or extent is None:
            raise GraphError("loop or axis without min/extent")
        if g.type(mn) == "IntImm" and g.lit_int(mn, "value") == 0:
            return [self.expr(extent)]
        if g.type(mn) == "IntImm" and g.type(extent) == "IntImm":
            end = g.lit_int(mn, "value") + g.lit_int(extent, "value")
            return [self.expr(mn), f"T.{g.lit_str(extent, 'dtype')}({end})"]
        return [self.expr(mn), f"T.Add({self.expr(mn)}, {self.expr(extent)})"]

    def _block(self, realize: int, depth: int) -> None:
        g = self.g
        block = g.ref(realize, "block")
        name = g.string(g.ref(block, "name_hint"))
        self._emit(depth, f"with T.sblock({name!r}):")
        inner = depth + 1
        iter_vars = g.array(g.ref(block, "iter_vars"))
        values = g.array(g.ref(realize, "iter_values"))
        if len(iter_vars) != len(values):
            raise GraphError(f"block {name!r}: {len(iter_vars)} iter vars, {len(values)} values")
        for iv, value in zip(iter_vars, values, strict=True):
            itype = g.lit_int(iv, "iter_type")
            if itype not in _AXIS:
                raise UnsupportedNode(f"block {name!r}: iter var type {itype}")
            var = g.ref(iv, "var")
            dom = g.ref(iv, "dom")
            bounds = self._begin_end(g.ref(dom, "min"), g.ref(dom, "extent"))
            dom_text = bounds[0] if len(bounds) == 1 else f"({bounds[0]}, {bounds[1]})"
            self._emit(
                inner,
                f"{self.name_of(var)} = T.axis.{_AXIS[itype]}({dom_text}, {self.expr(value)}, "
                f"dtype={g.lit_str(var, 'dtype')!r})",
            )
        pred = g.ref(realize, "predicate")
        if pred is not None and not (g.type(pred) == "IntImm" and g.lit_int(pred, "value") == 1):
            self._emit(inner, f"T.where({self.expr(pred)})")
        reads = [self._region(r) for r in g.array(g.ref(block, "reads"))]
        writes = [self._region(r) for r in g.array(g.ref(block, "writes"))]
        self._emit(inner, f"T.reads({', '.join(reads)})")
        self._emit(inner, f"T.writes({', '.join(writes)})")
        ann = g.map_str_items(g.ref(block, "annotations"))
        if ann:
            items = ", ".join(f"{k!r}: {self._attr_value(v)}" for k, v in ann)
            self._emit(inner, f"T.sblock_attr({{{items}}})")
        for buf in g.array(g.ref(block, "alloc_buffers")):
            args = self._buffer_args(buf, None)
            self._emit(inner, f"{self.name_of(buf)} = T.sblock_alloc_buffer({args})")
        for mb in g.array(g.ref(block, "match_buffers")):
            buf = g.ref(mb, "buffer")
            source = self._region(g.ref(mb, "source"))
            args = self._buffer_args(buf, None)
            self._emit(inner, f"{self.name_of(buf)} = T.match_buffer({source}, {args})")
        init = g.ref(block, "init")
        if init is not None:
            self._emit(inner, "with T.init():")
            self._stmt(init, inner + 1)
        self._stmt(g.ref(block, "body"), inner)

    def _region(self, r: int) -> str:
        g = self.g
        buf = g.ref(r, "buffer")
        parts = []
        for rng in g.array(g.ref(r, "region")):
            mn, extent = g.ref(rng, "min"), g.ref(rng, "extent")
            if g.type(extent) == "IntImm" and g.lit_int(extent, "value") == 1:
                parts.append(self.expr(mn))
            else:
                parts.append(f"{self.expr(mn)}:{self._end(mn, extent)}")
        if not parts:
            return f"{self.name_of(buf)}[()]"
        return f"{self.name_of(buf)}[{', '.join(parts)}]"

    def _end(self, mn: int, extent: int) -> str:
        g = self.g
        if g.type(mn) == "IntImm" and g.lit_int(mn, "value") == 0:
            return self.expr(extent)
        if g.type(mn) == "IntImm" and g.type(extent) == "IntImm":
            end = g.lit_int(mn, "value") + g.lit_int(extent, "value")
            return f"T.{g.lit_str(extent, 'dtype')}({end})"
        return f"T.Add({self.expr(mn)}, {self.expr(extent)})"

    def _access(self, buf: int | None, indices: int | None) -> str:
        if buf is None:
            raise GraphError("buffer access without a buffer")
        idx = [self.expr(e) for e in self.g.array(indices)]
        return f"{self.name_of(buf)}[{', '.join(idx) if idx else '()'}]"

    # ------------------------------------------------------------------ expressions

    def _op_name(self, old: str) -> str:
        """The 0.27 name of an old operator (the first registered candidate)."""
        candidates = _op_candidates(old)
        if self._op_exists is None:
            return candidates[0]
        for name in candidates:
            if self._op_exists(name):
                return name
        raise UnsupportedNode(f"operator {old} has no TVM 0.27 equivalent (tried {candidates})")

    def expr(self, e: int | None) -> str:
        """One expression as TVMScript text."""
        g = self.g
        if e is None:
            raise GraphError("null expression")
        kind = g.type(e)
        if kind in ("tir.Var", "tir.SizeVar"):
            return self.name_of(e)
        if kind == "IntImm":
            dtype = g.lit_str(e, "dtype")
            value = g.lit_int(e, "value")
            return f"T.bool({bool(value)})" if dtype == "bool" else f"T.{dtype}({value})"
        if kind == "FloatImm":
            return f"T.{g.lit_str(e, 'dtype')}({_float_text(g.lit_float(e, 'value'))})"
        if kind == "tir.StringImm":
            return repr(g.lit_str(e, "value"))
        if kind in _BINARY:
            return f"{_BINARY[kind]}({self.expr(g.ref(e, 'a'))}, {self.expr(g.ref(e, 'b'))})"
        if kind == "tir.Not":
            return f"T.Not({self.expr(g.ref(e, 'a'))})"
        if kind == "tir.Cast":
            return f"T.Cast({g.lit_str(e, 'dtype')!r}, {self.expr(g.ref(e, 'value'))})"
        if kind == "tir.Select":
            parts = [self.expr(g.ref(e, f)) for f in ("condition", "true_value", "false_value")]
            return f"T.Select({', '.join(parts)})"
        if kind == "tir.BufferLoad":
            self._check_no_predicate(e)
            return self._access(g.ref(e, "buffer"), g.ref(e, "indices"))
        if kind == "tir.Call":
            op = g.ref(e, "op")
            if op is None or g.type(op) != "Op":
                raise UnsupportedNode(f"Call node {e} calls a non-Op ({g.type(op or 0)})")
            args = [self.expr(a) for a in g.array(g.ref(e, "args"))]
            old = g.op_name(op)
            if old in _CALL_NODES:
                return f"{_CALL_NODES[old]}({', '.join(args)})"
            name = self._op_name(old)
            rest = "".join(", " + a for a in args)
            return f"T.call_intrin({g.lit_str(e, 'dtype')!r}, {name!r}{rest})"
        raise UnsupportedNode(f"expression node {e} of type {kind}")


def graph_to_tvmscript(
    graph: Graph, op_exists: Callable[[str], bool] | None = None
) -> tuple[str, str]:
    """(global function name, TVMScript source) for a legacy or ``tir``-era workload.

    ``op_exists`` tells which operator names the running TVM registers, so renamed
    operators (``tir.if_then_else`` is ``prim.if_then_else`` in 0.27) resolve.
    """
    return ScriptPrinter(graph, op_exists).function()
