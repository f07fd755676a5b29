"""Benchmark: what a cost model pays per candidate while tuning, for each feature kind.

At tune time a candidate arrives already scheduled, so the cost is the feature extraction
and the forward pass, not the trace replay that offline extraction needs. This script
replays ``--per-workload`` records of each of several workloads of the dataset into
MetaSchedule candidates (untimed), then times, per workload kind:

* per-store: ``PerStoreFeature.extract_from`` (lowers every candidate);
* trace: ``str(trace)`` plus :func:`tunezoo.trace_features.trace_tokens`, with the line
  cache cold at each workload's start, as in a fresh tuning session;
* the forward passes of the bundled predictors on those features (one batch per
  workload, as a tuner scores a generation).

Each figure is the median of ``--repeats`` runs, in milliseconds per candidate; the JSON
also holds the minimum and maximum.

    taskset -c 0 python scripts/bench_features.py --dataset data/llvm-znver4
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import tvm
from tvm.s_tir import meta_schedule as ms

from tunezoo.feature_kinds import PER_STORE, TRACE
from tunezoo.features import features_of_candidates, light_tune_context, mod_json_by_workload
from tunezoo.hardware import detect_hardware
from tunezoo.loading import bundled_predictors
from tunezoo.predictor import Predictor
from tunezoo.records import read_records, read_workloads
from tunezoo.trace_features import clear_line_cache, trace_tokens, workload_blocks

# one workload of each kind the datasets hold most of, chosen by name
KINDS = {
    "matmul": "fused_matmul",
    "conv2d": "fused_conv2d",
    "reduction": "layer_norm",
    "softmax": "softmax",
    "pooling": "max_pool2d",
    "layout": "transpose",
}


def candidates_of(records: list[dict], mod_json: str):
    mod = tvm.ir.load_json(mod_json)
    workload = ms.database.Workload(mod)
    out = []
    for r in records:
        body = json.loads(f"[{r['trace']},[1.0],{r['target']},{r['args_info']}]")
        out.append(ms.database.TuningRecord.from_json(body, workload).as_measure_candidate())
    target = tvm.target.Target(json.loads(records[0]["target"]))
    return mod, light_tune_context(mod, target), out


def timed(fn, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def trace_features(mod, candidates) -> list[np.ndarray]:
    """As a fresh session pays it: no line parsed yet, the workload's blocks read once."""
    clear_line_cache()
    blocks = workload_blocks(mod)
    return [trace_tokens(str(c.sch.trace), blocks) for c in candidates]


def summary(times: list[float], n: int) -> dict[str, float]:
    per = [1e3 * t / n for t in times]
    return {"ms_median": statistics.median(per), "ms_min": min(per), "ms_max": max(per)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="data/llvm-znver4")
    parser.add_argument("--per-workload", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="scripts/results/bench_features.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    workloads = read_workloads(args.dataset)
    names = dict(
        zip(
            workloads.column("workload_id").to_pylist(),
            workloads.column("name").to_pylist(),
            strict=True,
        )
    )
    mods = mod_json_by_workload(workloads)
    rows = read_records(
        args.dataset, columns=["workload_id", "trace", "target", "args_info"]
    ).to_pylist()
    by_workload: dict[str, list[dict]] = {}
    for r in rows:
        by_workload.setdefault(r["workload_id"], []).append(r)
    bundled = {n: Predictor.load(p) for n, p in bundled_predictors().items() if ".meta-" not in n}
    results: dict = {
        "cpu": detect_hardware().cpu_model,
        "llvm_cpu": tvm.get_global_func("target.llvm_get_system_cpu")(),
        "torch_threads": 1,
        "per_workload": args.per_workload,
        "repeats": args.repeats,
        "predictors": sorted(bundled),
        "kinds": {},
    }
    for kind, needle in KINDS.items():
        chosen = [w for w, rs in by_workload.items() if needle in names[w] and len(rs) >= 32]
        if not chosen:
            print(f"{kind}: no workload with '{needle}' and 32 records; skipped")
            continue
        wid = max(chosen, key=lambda w: len(by_workload[w]))
        mod, context, candidates = candidates_of(by_workload[wid][: args.per_workload], mods[wid])
        n = len(candidates)
        store_times, stores = timed(
            functools.partial(features_of_candidates, context, candidates), args.repeats
        )
        trace_times, toks = timed(functools.partial(trace_features, mod, candidates), args.repeats)
        row = {
            "workload": names[wid],
            "candidates": n,
            "rows_per_candidate": {
                "per-store": float(np.mean([len(m) for m in stores])),
                "trace": float(np.mean([len(m) for m in toks])),
            },
            "features": {"per-store": summary(store_times, n), "trace": summary(trace_times, n)},
            "scoring": {},
        }
        for name, predictor in sorted(bundled.items()):
            mats = stores if predictor.feature_version == PER_STORE.version else toks
            assert predictor.feature_version in (PER_STORE.version, TRACE.version)
            times, _ = timed(lambda p=predictor, m=mats: p.score_matrices(m), args.repeats)
            row["scoring"][name] = summary(times, n)
        results["kinds"][kind] = row
        store_ms = row["features"]["per-store"]["ms_median"]
        trace_ms = row["features"]["trace"]["ms_median"]
        print(
            f"{kind:12s} {names[wid][:34]:34s} per-store {store_ms:.3f} ms, trace {trace_ms:.3f}"
            f" ms ({store_ms / trace_ms:.1f}x); scoring "
            + ", ".join(f"{k} {v['ms_median']:.3f} ms" for k, v in row["scoring"].items())
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
