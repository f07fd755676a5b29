"""Build the small sample dataset that ships inside the package (tunezoo/samples/<target>).

The sample is a deterministic subset of the committed measured data: the first N
workloads (by id) that have at least 100 records, all of their records. It lets
`tunezoo records info` and the README's first command work on a fresh install, offline.

    python scripts/make_sample.py --dataset data/llvm-znver4 --workloads 3

``--until`` (an ISO time) cuts the dataset back to the shards finished by then, so a
grown dataset still gives the committed sample (``tunezoo.records.shards_after``); the
committed one is ``--until 2026-11-24T12:54:00+00:00``.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tunezoo.records import read_records, read_workloads, shards_after, utc_time, write_shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="data/llvm-znver4")
    parser.add_argument("--target", default="llvm-znver4")
    parser.add_argument("--workloads", type=int, default=3)
    parser.add_argument("--until", type=utc_time, default=None, help="ISO time snapshot")
    parser.add_argument("--out", type=Path, default=None, help="default: tunezoo/samples/TARGET")
    args = parser.parse_args()
    excluded = shards_after(args.dataset, args.until) if args.until else set()
    records = read_records(args.dataset, exclude_shards=excluded)
    counts = Counter(records.column("workload_id").to_pylist())
    chosen = sorted(w for w, c in counts.items() if c >= 100)[: args.workloads]
    keep = pa.array(chosen)
    sample_records = records.filter(pc.is_in(records["workload_id"], keep))
    workloads = read_workloads(args.dataset, exclude_shards=excluded)
    sample_workloads = workloads.filter(pc.is_in(workloads["workload_id"], keep))
    out = args.out or Path(__file__).resolve().parents[1] / "tunezoo" / "samples" / args.target
    if out.exists():
        shutil.rmtree(out)
    write_shards(out, sample_workloads, sample_records, shard="sample")
    size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    print(f"{out}: {sample_records.num_rows} records, {len(chosen)} workloads, {size} bytes")


if __name__ == "__main__":
    main()
