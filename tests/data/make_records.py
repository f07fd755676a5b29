"""Real schema-v1 record shards for the Hub tests, made in milliseconds.

Rows are shaped like MetaSchedule's (a trace is trace JSON, run times are seconds), every
workload is a real TVM module (a matmul) whose structural hash is its id, and every
record id is the real hash of (workload, trace, target), so deduplication and the
contribution checks work exactly as they do for measured data. ``first`` offsets the traces: two
calls with disjoint ``range(first, first + per_workload)`` give disjoint record ids.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa

from tunezoo.records import record_row, write_shards
from tunezoo.schema import RECORD_SCHEMA, WORKLOAD_SCHEMA

CREATED = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def _matmul(rows: int) -> tuple[str, str]:
    """(workload id, TVM JSON) of a ``rows`` x 64 x 64 matmul whose block is ``C``."""
    import tvm
    from tvm import te

    from tunezoo.workloads import workload_id

    a = te.placeholder((rows, 64), name="A")
    b = te.placeholder((64, 64), name="B")
    k = te.reduce_axis((0, 64), name="k")
    c = te.compute((rows, 64), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    mod = tvm.IRModule({"main": te.create_prim_func([a, b, c])})
    return workload_id(mod), tvm.ir.save_json(mod)


MODULES = dict(_matmul(64 + 8 * i) for i in range(8))  # workload id -> TVM JSON
WORKLOADS = list(MODULES)
_TARGETS = {
    "llvm-znver4": {"kind": "llvm", "mcpu": "znver4", "num-cores": 2},
    "cuda-a100": {"kind": "cuda", "arch": "sm_80", "max_threads_per_block": 1024},
}


def _trace(i: int) -> str:
    insts = [
        ["GetSBlock", [], ["C", "main"], ["b0"]],
        ["GetLoops", ["b0"], [], ["l1", "l2"]],
        ["SamplePerfectTile", ["l1"], [2, 64], ["v3", "v4"]],
    ]
    return json.dumps([insts, [[2, [i + 1, 4096 // (i + 1)]]]], separators=(",", ":"))


def tables(
    target_key: str = "llvm-znver4",
    workloads: list[str] = WORKLOADS,
    per_workload: int = 3,
    first: int = 0,
) -> tuple[pa.Table, pa.Table]:
    """(workloads, records) tables; one failed build per workload keeps error kinds honest."""
    target = json.dumps(_TARGETS.get(target_key, {"kind": "llvm"}), separators=(",", ":"))
    rows = []
    for w in workloads:
        for i in range(first, first + per_workload):
            failed = i == first and per_workload > 2
            lat = 1e-3 * (1 + i)
            rows.append(
                record_row(
                    workload_id=w,
                    target_key=target_key,
                    target_json=target,
                    trace_json=_trace(i),
                    args_info_json='[["TENSOR","float32",[64,64]]]',
                    run_secs=[1e10] if failed else [lat, lat * 1.01, lat * 0.99],
                    error_kind="build" if failed else None,
                    error_msg="build failed: test" if failed else None,
                    hardware={"hw_cpu_model": "test cpu", "hw_num_cores": 2},
                    tvm_version="0.27.0",
                    measure_settings='{"repeat":3}',
                    sampling="random",
                    source="tests/data/make_records.py",
                    created_at=CREATED,
                )
            )
    wl = [
        {
            "workload_id": w,
            "name": f"matmul_{w[-2:]}",
            "mod_json": MODULES[w],
            "tvmscript": None,
            "flops": 2.0 * 64**3,
            "models": [{"model": "testnet", "weight": 1}],
            "source_hash": None,
            "tvm_version": "0.27.0",
        }
        for w in workloads
    ]
    return (
        pa.Table.from_pylist(wl, schema=WORKLOAD_SCHEMA),
        pa.Table.from_pylist(rows, schema=RECORD_SCHEMA),
    )


def make_dataset(out_dir: str | Path, target_key: str = "llvm-znver4", **kwargs) -> Path:
    """A dataset directory (``records/``, ``workloads/``) written by tunezoo.records."""
    wl, rec = tables(target_key, **kwargs)
    write_shards(out_dir, wl, rec)
    return Path(out_dir)
