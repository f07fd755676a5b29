"""Builder benchmark: seconds per batch of MetaSchedule's LocalBuilder (a new worker pool
per batch) against tunezoo's PooledLocalBuilder (one pool for many batches).

Each batch builds the same real workloads (two matmuls and a conv, unscheduled, LLVM, the fast CPU
build) so only the builders differ. Prints a table and writes
``scripts/results/bench_builder.json``.

    taskset -c 0 python scripts/bench_builder.py --batches 8 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from tvm.s_tir import meta_schedule as ms

from tunezoo.measure import MeasureSettings, make_builder
from tunezoo.targets import get_target
from tunezoo.tuning import WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out", default=str(RESULTS / "bench_builder.json"))
    args = p.parse_args(argv)
    target = get_target("llvm-znver4").tvm_target(1)
    names = ["matmul-64", "matmul-512", "conv2d-resnet-1x1"]
    mods = [WORKLOADS[n].build() for n in names]
    inputs = [ms.builder.BuilderInput(mods[i % len(mods)], target) for i in range(args.batch_size)]
    report: dict = {
        "benchmark": "builder seconds per batch",
        "batches": args.batches,
        "batch_size": args.batch_size,
        "workloads": names,
        "machine": platform.processor() or platform.machine(),
        "builders": {},
    }
    for label, pool_batches in (("LocalBuilder", 1), ("PooledLocalBuilder", 16)):
        builder = make_builder(MeasureSettings(builder_pool_batches=pool_batches), target)
        times = []
        for _ in range(args.batches):
            t0 = time.perf_counter()
            results = builder.build(inputs)
            times.append(time.perf_counter() - t0)
            failed = [r.error_msg for r in results if r.error_msg]
            if failed:
                raise SystemExit(f"{label}: a build failed: {failed[0][:500]}")
        report["builders"][label] = {
            "seconds_per_batch": times,
            "median_s": statistics.median(times),
            "first_s": times[0],
            "rest_median_s": statistics.median(times[1:]) if len(times) > 1 else None,
        }
        print(f"{label:20s} median {statistics.median(times):.2f} s/batch, first {times[0]:.2f} s")
    local = report["builders"]["LocalBuilder"]["median_s"]
    pooled = report["builders"]["PooledLocalBuilder"]["median_s"]
    report["saved_s_per_batch"] = local - pooled
    print(f"saved {local - pooled:.2f} s per batch of {args.batch_size} ({local / pooled:.2f}x)")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
