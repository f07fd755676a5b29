"""Workload rows: a TIR IRModule turned into the ``workloads`` table of schema v1.

The workload id is MetaSchedule's own structural hash of the module (a decimal string),
the same value a ``JSONDatabase`` writes as the first field of ``database_workload.json``,
so ids agree with every MetaSchedule database and survive a round trip.
"""

from __future__ import annotations

from typing import Any

import tvm
import tvm_ffi

from tunezoo.schema import WORKLOAD_SCHEMA


def workload_id(mod: tvm.IRModule) -> str:
    """MetaSchedule's structural hash of ``mod`` as a decimal string."""
    return str(tvm_ffi.structural_hash(mod))


def estimate_flops(mod: tvm.IRModule) -> float | None:
    """Floating-point operations of one call of the module (None if TVM cannot tell)."""
    from tvm.s_tir.analysis import estimate_tir_flops  # noqa: PLC0415

    try:
        return float(estimate_tir_flops(mod))
    except Exception:  # data-dependent loops and the like: FLOPs unknown, not an error
        return None


def workload_name(mod: tvm.IRModule, fallback: str = "main") -> str:
    """A readable name: the PrimFunc's global symbol, else its GlobalVar name."""
    for gv, func in mod.functions.items():
        symbol = func.attrs.get("global_symbol") if func.attrs is not None else None
        return str(symbol or gv.name_hint)
    return fallback


def workload_row(
    mod: tvm.IRModule,
    *,
    name: str | None = None,
    models: list[tuple[str, int]] | None = None,
    source_hash: str | None = None,
) -> dict[str, Any]:
    """One ``workloads`` row for ``mod`` (models: (model name, task weight) pairs)."""
    try:
        script = mod.script()
    except Exception:  # printing is for people; a module that won't print still counts
        script = None
    return {
        "workload_id": workload_id(mod),
        "name": name or workload_name(mod),
        "mod_json": tvm.ir.save_json(mod),
        "tvmscript": script,
        "flops": estimate_flops(mod),
        "models": [{"model": m, "weight": int(w)} for m, w in (models or [])],
        "source_hash": source_hash,
        "tvm_version": tvm.__version__,
    }


def load_workload(mod_json: str) -> tvm.IRModule:
    """The IRModule of a stored workload row."""
    return tvm.ir.load_json(mod_json)


def empty_workload_table():
    return WORKLOAD_SCHEMA.empty_table()
