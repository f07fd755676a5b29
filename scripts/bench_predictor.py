"""Benchmark: how fast a predictor scores candidates, and how fast features are extracted.

Scoring is timed on real per-store features (precomputed, from the dataset's cache), as a
tuner would batch them: one forward pass per batch of candidates. Feature extraction
(trace replay + PerStoreFeature) is timed separately on records not in the cache, since
it is the other half of the cost a tuner pays per candidate.

    python scripts/bench_predictor.py --dataset data/llvm-znver4 \
        --predictor tunezoo/artifacts/seed-ensemble.llvm-znver4
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tunezoo.features import ExtractionStats, extract_features
from tunezoo.hardware import detect_hardware
from tunezoo.models import ARCHITECTURES, build_model
from tunezoo.predictor import Predictor, fit_normalizer
from tunezoo.records import read_records, read_workloads

GOAL_CANDIDATES_PER_S = 20_000


def time_scoring(predictor: Predictor, values, offsets, batch: int, repeats: int) -> dict:
    n = len(offsets) - 1
    starts = list(range(0, n - batch + 1, batch)) or [0]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        scored = 0
        for s in starts:
            e = min(n, s + batch)
            part = offsets[s : e + 1]
            predictor.score_packed(values[part[0] : part[-1]], part - part[0])
            scored += e - s
        times.append(time.perf_counter() - t0)
    rates = [scored / t for t in times]
    return {
        "batch": batch,
        "candidates": scored,
        "per_s_median": statistics.median(rates),
        "per_s_min": min(rates),
        "per_s_max": max(rates),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="data/llvm-znver4")
    parser.add_argument(
        "--predictor",
        default=None,
        help="artifact dir (default: untrained "
        "models of every architecture, same size as the trained ones)",
    )
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--extract-records", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="scripts/results/bench_predictor.json")
    args = parser.parse_args()

    records = read_records(args.dataset)
    workloads = read_workloads(args.dataset)
    sample = records.slice(0, min(args.records, records.num_rows))
    fs, _ = extract_features(sample, workloads, progress=False)
    values, offsets = fs.values, fs.offsets
    mean, std = fit_normalizer(values)

    predictors = {}
    if args.predictor:
        p = Predictor.load(args.predictor)
        predictors[p.arch] = p
    else:
        # ensembles, blends and converted trees are built from trained models: --predictor
        for arch in ("segsum-mlp", "store-attention"):
            assert arch in ARCHITECTURES
            predictors[arch] = Predictor(build_model(arch), mean, std, "bench")

    results: dict = {
        "machine": platform.processor() or platform.machine(),
        "cpu": detect_hardware().cpu_model,  # figures differ between CPUs: say which
        "predictor": args.predictor,
        "torch": torch.__version__,
        "candidates_available": len(fs),
        "stores_per_candidate_mean": float(np.mean(fs.stores_per_record())),
        "goal_candidates_per_s": GOAL_CANDIDATES_PER_S,
        "scoring": {},
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for arch, predictor in predictors.items():
            for batch in (512, 2048, 8192):
                r = time_scoring(predictor, values, offsets, batch, args.repeats)
                results["scoring"][f"{arch}/threads={threads}/batch={batch}"] = r
                ok = "PASS" if r["per_s_median"] >= GOAL_CANDIDATES_PER_S else "FAIL"
                print(
                    f"{arch:16s} threads={threads} batch={batch:5d}: "
                    f"{r['per_s_median']:>10,.0f} candidates/s  [{ok}]"
                )

    # feature extraction on records that are not cached: a fresh cache directory
    extract = records.slice(max(0, records.num_rows - args.extract_records))
    for workers in (1, 2):
        stats = ExtractionStats()
        with tempfile.TemporaryDirectory() as cache:
            extract_features(
                extract, workloads, workers=workers, cache_dir=cache, progress=False, stats=stats
            )
        results[f"feature_extraction_workers={workers}"] = {
            "records": stats.computed,
            "seconds": round(stats.seconds, 2),
            "records_per_s": round(stats.records_per_second(), 1),
        }
        print(
            f"feature extraction, {workers} process(es): "
            f"{stats.records_per_second():.0f} records/s ({stats.computed} records, "
            "including process start-up)"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
