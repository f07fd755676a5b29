#!/usr/bin/env python
"""Benchmark: tunezoo Parquet records against MetaSchedule's JSON database, same records.

Goals (from the issue): loading Parquet into memory at least 10x faster than
``JSONDatabase`` reading the same records, and shards at most a third of the JSON size.

What is timed, each ``--repeats`` times after one untimed warm-up (median, min, max):
  json_load        JSONDatabase(work_dir=...) + get_all_tuning_records(): how users load
                   a database today (parses every workload into TIR and every trace).
  parquet_load     tunezoo.records.read_records(dir) + read_workloads(dir) into pyarrow
                   tables (raw columns; traces stay JSON strings).
  parquet_to_tvm   (information, no goal) parquet_load plus turning every row into the
                   same TVM objects JSONDatabase returns (Workload, TuningRecord), so the
                   reader can see how much of the speed-up is deferred parsing.
  import_checked   tunezoo.convert.import_database(..., check_traces=True) (replays traces)
  import_unchecked the same with check_traces=False
Sizes: the two JSON database files against the Parquet shards (records + workloads), both
the shards as collected and the shards the import writes from the JSON database.

The dataset directory is only read: its complete shards (a workloads file and its record
files; a collection writes the workloads file last) are copied to a temp dir first, so a
collection writing into it meanwhile changes nothing here. Everything else lives in a
temp dir that is removed at the end. Run it pinned to a core that no measurement uses:

    taskset -c 0 python scripts/bench_records.py --dataset data/llvm-znver4 --repeats 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO / "data" / "llvm-znver4"
DEFAULT_OUT = REPO / "scripts" / "results" / "bench_records.json"
LOAD_SPEEDUP_GOAL = 10.0  # parquet_load at least this many times faster than json_load
SIZE_RATIO_GOAL = 1 / 3  # parquet bytes at most this fraction of the JSON bytes
TINY_RECORDS = 10_000  # below this, fixed per-file costs dominate: say so in the output


# ---------------------------------------------------------------------------- helpers


def snapshot_dataset(src: Path, dst: Path) -> dict[str, int]:
    """Copy the complete shards of ``src`` into ``dst``; a shard is complete once its
    workloads file exists (write_shards writes it after the record files)."""
    workload_files = sorted((src / "workloads").glob("*.parquet"))
    (dst / "workloads").mkdir(parents=True)
    (dst / "records").mkdir(parents=True)
    n_records = 0
    for wl in workload_files:
        shard = wl.stem
        recs = sorted((src / "records").glob(f"*-{shard}.parquet"))
        for rec in recs:
            shutil.copy2(rec, dst / "records" / rec.name)
        shutil.copy2(wl, dst / "workloads" / wl.name)
        n_records += len(recs)
    return {"workload_files": len(workload_files), "record_files": n_records}


def dir_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def parquet_files(dataset: Path) -> list[Path]:
    return sorted((dataset / "records").glob("*.parquet")) + sorted(
        (dataset / "workloads").glob("*.parquet")
    )


def time_it(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> dict:
    """Seconds per call: one untimed warm-up, then ``repeats`` timed calls."""
    if setup is not None:
        setup()
    fn()
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "times_s": times,
    }


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    import numpy
    import pyarrow
    import tvm

    import tunezoo

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "tvm": tvm.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": numpy.__version__,
        "tunezoo": tunezoo.__version__,
        "git_commit": commit or None,
    }


def cold_import_s(statement: str, repeats: int) -> dict:
    """Seconds for a fresh interpreter to run ``statement`` (the price of a first load)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


# ------------------------------------------------------------------------------ bench


def run(dataset: Path, repeats: int, tmp: Path) -> dict:
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from tunezoo.convert import RECORD_FILE, WORKLOAD_FILE, export_database, import_database
    from tunezoo.records import read_records, read_workloads

    snap = tmp / "snapshot"
    copied = snapshot_dataset(dataset, snap)
    records = read_records(snap, columns=["target_key"])
    keys = sorted(set(records.column("target_key").to_pylist()))
    if len(keys) != 1:
        raise SystemExit(f"{dataset}: expected records of one target, found {keys}")
    target_key = keys[0]
    db = tmp / "jsondb"
    exported = export_database(snap, db)
    n_records, n_workloads = exported["records"], exported["workloads"]
    print(
        f"snapshot of {dataset}: {n_records} records, {n_workloads} workloads "
        f"({copied['record_files']} record shards), target {target_key}",
        flush=True,
    )

    def json_load() -> None:
        database = ms.database.JSONDatabase(work_dir=str(db))
        got = database.get_all_tuning_records()
        assert len(got) == n_records, (len(got), n_records)

    def parquet_load() -> tuple:
        recs, wls = read_records(snap), read_workloads(snap)
        assert recs.num_rows == n_records, (recs.num_rows, n_records)
        return recs, wls

    def parquet_to_tvm() -> None:
        recs, wls = parquet_load()
        by_id = {
            wid: ms.database.Workload(tvm.ir.load_json(mod_json))
            for wid, mod_json in zip(
                wls.column("workload_id").to_pylist(),
                wls.column("mod_json").to_pylist(),
                strict=True,
            )
        }
        cols = [recs.column(c).to_pylist() for c in ("workload_id", "trace", "run_secs")]
        targets = recs.column("target").to_pylist()
        args = recs.column("args_info").to_pylist()
        out = [
            ms.database.TuningRecord.from_json(
                [json.loads(tr), secs, json.loads(tg), json.loads(ai)], by_id[wid]
            )
            for wid, tr, secs, tg, ai in zip(*cols, targets, args, strict=True)
        ]
        assert len(out) == n_records

    counter = {"i": 0}

    def fresh_out() -> None:
        counter["i"] += 1

    def importer(check: bool) -> Callable[[], None]:
        def call() -> None:
            out = tmp / f"import-{counter['i']}-{check}"
            report = import_database(db, out, target_key=target_key, check_traces=check)
            assert report.records == n_records and not report.rejected, report.summary()

        return call

    timings: dict[str, dict] = {}
    for name, fn, setup in [
        ("json_load", json_load, None),
        ("parquet_load", parquet_load, None),
        ("parquet_to_tvm", parquet_to_tvm, None),
        ("import_checked", importer(True), fresh_out),
        ("import_unchecked", importer(False), fresh_out),
    ]:
        print(f"timing {name} ({repeats} repeats + 1 warm-up) ...", flush=True)
        timings[name] = time_it(fn, repeats, setup)
        timings[name]["records_per_s"] = n_records / timings[name]["median_s"]

    print("timing cold interpreter imports ...", flush=True)
    cold = {
        "tvm_meta_schedule": cold_import_s("import tvm.s_tir.meta_schedule", repeats),
        "tunezoo_records": cold_import_s("import tunezoo.records", repeats),
    }

    json_bytes = dir_bytes([db / WORKLOAD_FILE, db / RECORD_FILE])
    collected_bytes = dir_bytes(parquet_files(snap))
    imported_dir = tmp / f"import-{counter['i']}-False"
    imported_bytes = dir_bytes(parquet_files(imported_dir))
    sizes = {
        "json_db_bytes": json_bytes,
        "json_workload_file_bytes": (db / WORKLOAD_FILE).stat().st_size,
        "json_record_file_bytes": (db / RECORD_FILE).stat().st_size,
        "parquet_collected_bytes": collected_bytes,
        "parquet_collected_files": len(parquet_files(snap)),
        "parquet_imported_bytes": imported_bytes,
        "parquet_imported_files": len(parquet_files(imported_dir)),
    }
    speedup = timings["json_load"]["median_s"] / timings["parquet_load"]["median_s"]
    speedup_tvm = timings["json_load"]["median_s"] / timings["parquet_to_tvm"]["median_s"]
    ratio_collected = collected_bytes / json_bytes
    ratio_imported = imported_bytes / json_bytes
    goals = {
        "load_speedup": {
            "value": speedup,
            "goal": f">= {LOAD_SPEEDUP_GOAL:g}",
            "pass": speedup >= LOAD_SPEEDUP_GOAL,
        },
        "size_ratio_collected": {
            "value": ratio_collected,
            "goal": "<= 1/3",
            "pass": ratio_collected <= SIZE_RATIO_GOAL,
        },
        "size_ratio_imported": {
            "value": ratio_imported,
            "goal": "<= 1/3",
            "pass": ratio_imported <= SIZE_RATIO_GOAL,
        },
    }
    notes = []
    if n_records < TINY_RECORDS:
        notes.append(
            f"tiny dataset: {n_records} records (< {TINY_RECORDS}); per-file and per-call "
            "fixed costs weigh more than they will on the full dataset"
        )
    affinity = machine_info()["cpu_affinity"]
    if affinity is not None and 1 in affinity:
        notes.append("ran with core 1 allowed; a measurement job may share it (taskset -c 0)")
    return {
        "dataset": str(dataset),
        "target_key": target_key,
        "records": n_records,
        "workloads": n_workloads,
        "snapshot": copied,
        "repeats": repeats,
        "timings": timings,
        "cold_import": cold,
        "sizes": sizes,
        "ratios": {
            "load_speedup_parquet_vs_json": speedup,
            "load_speedup_parquet_to_tvm_vs_json": speedup_tvm,
            "import_checked_vs_json_load": timings["import_checked"]["median_s"]
            / timings["json_load"]["median_s"],
            "size_collected_over_json": ratio_collected,
            "size_imported_over_json": ratio_imported,
        },
        "goals": goals,
        "notes": notes,
    }


# ------------------------------------------------------------------------------ report


def _fmt_s(t: dict) -> str:
    return f"{t['median_s'] * 1e3:9.1f} ms  [{t['min_s'] * 1e3:.1f}, {t['max_s'] * 1e3:.1f}]"


def print_table(result: dict) -> None:
    n = result["records"]
    print()
    print(f"records: {n}  workloads: {result['workloads']}  repeats: {result['repeats']}")
    print(f"{'step':<18} {'median [min, max]':<34} {'records/s':>12}")
    for name, t in result["timings"].items():
        print(f"{name:<18} {_fmt_s(t):<34} {t['records_per_s']:>12,.0f}")
    for name, t in result["cold_import"].items():
        print(f"cold import {name:<18} {_fmt_s(t)}")
    s = result["sizes"]
    print()
    print(f"{'size':<28} {'bytes':>12} {'/ JSON':>8}")
    print(f"{'JSON database (2 files)':<28} {s['json_db_bytes']:>12,} {1.0:>8.3f}")
    for label, key, files in [
        ("Parquet as collected", "parquet_collected_bytes", "parquet_collected_files"),
        ("Parquet as imported", "parquet_imported_bytes", "parquet_imported_files"),
    ]:
        label = f"{label} ({s[files]} files)"
        print(f"{label:<28} {s[key]:>12,} {s[key] / s['json_db_bytes']:>8.3f}")
    print()
    r = result["ratios"]
    speedup = r["load_speedup_parquet_vs_json"]
    print(f"load speed-up, Parquet tables vs JSONDatabase: {speedup:.1f}x")
    print(
        f"load speed-up, Parquet -> TVM objects vs JSONDatabase: "
        f"{r['load_speedup_parquet_to_tvm_vs_json']:.1f}x (information)"
    )
    for name, g in result["goals"].items():
        verdict = "PASS" if g["pass"] else "FAIL"
        print(f"goal {name:<22} {g['value']:.3f} (goal {g['goal']}): {verdict}")
    for note in result["notes"]:
        print(f"NOTE: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="read only")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (>= 3)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result JSON")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (median, min and max need them)")
    if not (args.dataset / "workloads").is_dir():
        parser.error(f"{args.dataset}: not a tunezoo dataset directory (no workloads/)")
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="tunezoo-bench-") as tmp:
        result = run(args.dataset.resolve(), args.repeats, Path(tmp))
    result = {
        "benchmark": "bench_records",
        "command": [Path(sys.executable).name, *sys.argv],
        "started_at": started.isoformat(),
        "seconds": (dt.datetime.now(dt.UTC) - started).total_seconds(),
        "machine": machine_info(),
        "versions": versions(),
        **result,
    }
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
