"""Small schema-v1 tables made without TVM, for fast tests of the Parquet layer.

The values are shaped like real records (a trace is a MetaSchedule trace JSON, run times
are seconds) but are generated, so each test states exactly what it feeds in.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from tunezoo.records import record_row
from tunezoo.schema import RECORD_SCHEMA, WORKLOAD_SCHEMA

TARGET = json.dumps({"kind": "llvm", "mcpu": "znver4", "num-cores": 1}, separators=(",", ":"))
CREATED = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def trace(tile: int) -> str:
    insts = [
        ["GetSBlock", [], ["C", "main"], ["b0"]],
        ["GetLoops", ["b0"], [], ["l1", "l2"]],
        ["SamplePerfectTile", ["l1"], [2, 64], ["v3", "v4"]],
    ]
    return json.dumps([insts, [[2, [tile, 64 // tile]]]], separators=(",", ":"))


def make_rows(
    workload_id: str,
    n: int,
    *,
    base_latency: float = 1e-3,
    sampling: str = "random",
    target_key: str = "llvm-znver4",
) -> list[dict]:
    rows = []
    for i in range(n):
        lat = base_latency * (1 + i)
        rows.append(
            record_row(
                workload_id=workload_id,
                target_key=target_key,
                target_json=TARGET,
                trace_json=trace(2 ** (i % 6)) if n <= 6 else trace(i + 1),
                args_info_json='[["TENSOR","float32",[64,64]]]',
                run_secs=[lat, lat * 1.01, lat * 0.99],
                error_kind=None,
                error_msg=None,
                hardware={"hw_cpu_model": "test cpu", "hw_num_cores": 1},
                tvm_version="0.27.0",
                measure_settings='{"repeat":3}',
                sampling=sampling,
                source="tests",
                created_at=CREATED,
            )
        )
    return rows


def workload_rows(ids: list[str], model: str = "testnet") -> list[dict]:
    return [
        {
            "workload_id": w,
            "name": f"op{w[-3:]}",
            "mod_json": "{}",
            "tvmscript": None,
            "flops": 1e6,
            "models": [{"model": model, "weight": 1}],
            "source_hash": None,
            "tvm_version": "0.27.0",
        }
        for w in ids
    ]


def tables(ids: list[str], per_workload: int = 5) -> tuple[pa.Table, pa.Table]:
    """(workloads, records) for the given workload ids."""
    rows = [r for w in ids for r in make_rows(w, per_workload)]
    return (
        pa.Table.from_pylist(workload_rows(ids), schema=WORKLOAD_SCHEMA),
        pa.Table.from_pylist(rows, schema=RECORD_SCHEMA),
    )
