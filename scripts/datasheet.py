"""Write the datasheet of a measured dataset (data/<target>/README.md) from its records.

Everything in the datasheet is computed from the committed shards: counts, measurement
settings, machine fingerprint, collection rate and the noise of repeated measurements
(relative spread of each record's repeats), so it cannot drift from the data.

    python scripts/datasheet.py data/llvm-znver4
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from tunezoo.records import (
    RICH_CANDIDATES,
    depth_kind,
    info,
    read_records,
    read_workloads,
    shard_files,
    split_of,
    successful_candidates,
)


def hourly_rate(created: list, per_core: list[str]) -> dict:
    """Records per clock hour on each core, median over the hours a collector ran."""
    hours: dict[str, Counter] = {}
    for t, core in zip(created, per_core, strict=True):
        hours.setdefault(core, Counter())[t.replace(minute=0, second=0, microsecond=0)] += 1
    return {
        core: {"median_per_hour": float(np.median(list(c.values()))), "hours": len(c)}
        for core, c in sorted(hours.items())
    }


def noise_stats(run_secs: list[list[float]]) -> dict:
    """Relative spread (max - min) / median and coefficient of variation per record."""
    spread, cv = [], []
    for secs in run_secs:
        a = np.asarray(secs)
        if len(a) < 2:
            continue
        spread.append((a.max() - a.min()) / np.median(a))
        cv.append(a.std() / a.mean())
    s, c = np.array(spread), np.array(cv)
    return {
        "records_with_repeats": len(s),
        "spread_median": float(np.median(s)) if len(s) else None,
        "spread_p90": float(np.percentile(s, 90)) if len(s) else None,
        "spread_p99": float(np.percentile(s, 99)) if len(s) else None,
        "cv_median": float(np.median(c)) if len(c) else None,
        "share_spread_over_10pct": float((s > 0.10).mean()) if len(s) else None,
    }


def partial_workloads(path: Path) -> list[dict]:
    """Workloads with 2..RICH_CANDIDATES-1 distinct successful schedules, and why.

    Every task asked for 128 candidates. One that measured fewer records, all distinct and
    successful, stopped because sampling without replacement ran out: its design space is
    fully measured. Otherwise the records say what was lost: schedules repeated within the
    random phase (the early ``ReplayTrace`` tasks sampled with replacement), schedules the
    evolutionary phase measured again (its search does not see the random phase's
    measurements, which matters only when the design space is small), or failed candidates."""
    records = read_records(path, columns=["workload_id", "record_id", "error_kind", "sampling"])
    table = read_workloads(path, columns=["workload_id", "name", "models"]).to_pylist()
    names = {w["workload_id"]: (w["name"], [m["model"] for m in w["models"]]) for w in table}
    ok = successful_candidates(records)
    count: Counter = Counter()
    every: dict[str, set] = {}
    errors: dict[str, Counter] = {}
    random_count: Counter = Counter()
    random_ids: dict[str, set] = {}
    for wid, rid, err, how in zip(
        *(
            records.column(c).to_pylist()
            for c in ("workload_id", "record_id", "error_kind", "sampling")
        ),
        strict=True,
    ):
        count[wid] += 1
        every.setdefault(wid, set()).add(rid)
        if how == "random":
            random_count[wid] += 1
            random_ids.setdefault(wid, set()).add(rid)
        if err is not None:
            errors.setdefault(wid, Counter())[err] += 1
    out = []
    for wid, ids in sorted(ok.items(), key=lambda kv: (split_of(kv[0]), len(kv[1]))):
        if depth_kind(len(ids)) != "partial":
            continue
        why = []
        within_random = random_count[wid] - len(random_ids.get(wid, ()))
        across = count[wid] - len(every[wid]) - within_random
        if within_random:
            why.append(f"{within_random} repeated in the random phase (sampled with replacement)")
        if across:
            why.append(f"{across} re-measured by the evolutionary phase")
        if wid in errors:
            why.append("failed: " + ", ".join(f"{n} {k}" for k, n in errors[wid].items()))
        if not why:
            why.append("design space fully measured (sampling without replacement ran out)")
        name, models = names.get(wid, ("?", []))
        out.append(
            {
                "workload_id": wid,
                "split": split_of(wid),
                "name": name,
                "models": models,
                "records": count[wid],
                "distinct": len(ids),
                "why": "; ".join(why),
            }
        )
    return out


# How each dataset's collection changed while it ran (one folder's history is not another's).
COLLECTION_HISTORY: dict[str, dict[str, str]] = {
    "llvm-znver4": {
        "sampling": (
            "The first 21 tasks\n  sampled the random phase with `ReplayTrace` (with"
            " replacement: the same schedule could be\n  measured several times; these show up"
            " as duplicate record ids and are pooled by\n  `tunezoo records merge` and by"
            " training); later tasks sample without replacement\n  (`EvolutionarySearch`,"
            " `eps_greedy=1`)."
        ),
        "builder": (
            "from 15:50 UTC on 2026-11-24 the same build in `tunezoo.pooled_builder`, one"
            " worker\n  pool per 16 batches, `builder_pool_batches` in the settings"
        ),
        "number": " (from 16:05 UTC on\n  2026-11-24)",
        "cores": (
            "Core 1 is the collection core; records measured on core 0 shared\n  it with"
            " development work (niced below it), so filter on their repeat spread if that\n "
            " matters."
        ),
    },
    "default": {
        "sampling": (
            "The random phase samples\n  without replacement (`EvolutionarySearch`,"
            " `eps_greedy=1`)."
        ),
        "builder": (
            "the same build in `tunezoo.pooled_builder`, one worker pool per 16\n  batches,"
            " `builder_pool_batches` in the settings"
        ),
        "number": "",
        "cores": (
            "While one core collected, the other ran development work or a\n  second"
            " collector, so filter on the repeat spread if that matters."
        ),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    args = parser.parse_args()
    path = Path(args.dataset)
    summary = info(path)
    records = read_records(
        path,
        columns=[
            "run_secs",
            "error_kind",
            "measure_settings",
            "hw_cpu_model",
            "hw_num_cores",
            "hw_driver",
            "tvm_version",
            "created_at",
            "target",
        ],
    )
    ok = [
        r
        for r, e in zip(
            records.column("run_secs").to_pylist(),
            records.column("error_kind").to_pylist(),
            strict=True,
        )
        if e is None
    ]
    noise = noise_stats(ok)
    all_settings = Counter(records.column("measure_settings").to_pylist())
    settings = all_settings.most_common(1)[0][0]
    per_core: Counter = Counter()
    for text, count in all_settings.items():
        per_core[str(json.loads(text).get("cpu_affinity"))] += count
    affinity_text = ", ".join(
        f"`taskset -c {core}`: {count}" for core, count in sorted(per_core.items())
    )
    per_timing: Counter = Counter()
    for text, count in all_settings.items():
        d = json.loads(text)
        per_timing[(d.get("number"), d.get("repeat"), d.get("min_repeat_ms"))] += count
    timing_text = "; ".join(
        f"number={n}, repeat={r}, min_repeat_ms={m}: {count} records"
        for (n, r, m), count in sorted(per_timing.items(), key=lambda kv: -kv[1])
    )
    cpu = Counter(records.column("hw_cpu_model").to_pylist()).most_common(1)[0][0]
    target = Counter(records.column("target").to_pylist()).most_common(1)[0][0]
    created = records.column("created_at").to_pylist()
    hours = (max(created) - min(created)).total_seconds() / 3600 if created else 0
    depth = summary["workloads_by_candidates"]
    settings_per_record = records.column("measure_settings").to_pylist()
    cores = [str(json.loads(t).get("cpu_affinity")) for t in settings_per_record]
    rate = hourly_rate(created, cores)
    # the shards only: a collector's task cache (.task-cache/) is derived and git-ignored
    shard_bytes = sum(
        p.stat().st_size for k in ("records", "workloads") for p in shard_files(path, k)
    )
    stats = {
        "summary": summary,
        "noise": noise,
        "records_per_core": dict(per_core),
        "records_per_timing": {
            f"number={n},repeat={r},min_repeat_ms={m}": c for (n, r, m), c in per_timing.items()
        },
        "measure_settings": json.loads(settings),
        "cpu": cpu,
        "target": target,
        "span_hours": round(hours, 2),
        "workloads_by_candidates": depth,
        "records_per_hour": rate,
        "shard_bytes": shard_bytes,
        "partial_workloads": partial_workloads(path),
    }
    (path / "datasheet.json").write_text(json.dumps(stats, indent=2, default=str) + "\n")
    s = settings and json.loads(settings)
    models = "\n".join(f"| {m} | {c} |" for m, c in summary["models"].items())
    partial = "\n".join(
        f"| {w['split']} | {w['name']} | {', '.join(w['models'])} | {w['records']} | "
        f"{w['distinct']} | {w['why']} |"
        for w in stats["partial_workloads"]
    )
    history = COLLECTION_HISTORY.get(path.name, COLLECTION_HISTORY["default"])
    text = f"""# Datasheet: {path.name}

Measured tuning records for TVM MetaSchedule, collected by `scripts/collect_llvm_znver4.sh`
(`tunezoo collect`) on the development machine. Raw records only (workload, schedule trace,
every measured run time, errors); features are derived, never stored. Figures below are
computed from the shards by `scripts/datasheet.py` (also in `datasheet.json`).

## How it was collected
- Workloads: tasks extracted with MetaSchedule's relax integration from the torch model zoo
  in `dataset_builders/zoo` (random weights), deduplicated by structural hash; TVM's own
  MetaSchedule test workloads are excluded (they serve as an independent benchmark).
- Candidates per task: 64 uniform samples of the design space, then up to 64 from
  `EvolutionarySearch` guided by XGBoost trained on the random phase. {history["sampling"]}
  Small design spaces run out early (layout-only
  tasks often have a handful of schedules), so some workloads have few records and are
  skipped for ranking. Within each model, compute-heavy tasks are collected first. Failed
  builds/runs are kept with an error kind.
- Measurement: MetaSchedule `LocalBuilder` (the default build minus the tensor-intrinsic
  import; {history["builder"]}) and `LocalRunner`, cache
  flush {s.get("enable_cpu_cache_flush")}; timing settings
  ({timing_text}). TVM raises `number` until a repeat lasts `min_repeat_ms`, so every run
  time of a fast kernel averages >= 25 ms of calls either way; `number=1`{history["number"]}
  stops running slow kernels 3 times per repeat;
  each collector is pinned to one core and the target uses `num-cores: 1`; records per
  core: {affinity_text}. {history["cores"]}
- Target: `{target}`
- Machine: {cpu}; TVM {records.column("tvm_version")[0]}.

## Counts
- records: {summary["records"]} (failed: {sum(summary["failed"].values())})
- workloads with records: {summary["workloads_with_records"]}
- records per workload: min {summary["records_per_workload"]["min"]}, median
  {summary["records_per_workload"]["median"]}, max {summary["records_per_workload"]["max"]}
- records per split (by workload hash): {summary["splits"]}
- sampling: {summary["sampling"]}
- duplicate record ids (the same schedule sampled twice; `tunezoo records merge` pools
  them): {summary["duplicate_record_ids"]}
- collection span: {hours:.2f} h; size on disk: {shard_bytes / 1e6:.2f} MB
- collection rate, records per clock hour (median over the hours each core collected):
  {", ".join(f"core {c}: {v['median_per_hour']:.0f} over {v['hours']} h" for c, v in rate.items())}
- workloads by distinct successful candidates (rich: >= {RICH_CANDIDATES}; single schedule: the
  design space holds one schedule, so there is nothing to rank; partial: in between):
  {"; ".join(f"{split}: {c}" for split, c in depth.items())}

| model | records |
|---|---|
{models}

Workloads with more than one but fewer than {RICH_CANDIDATES} distinct successful schedules:

| split | workload | models | records | distinct schedules | why |
|---|---|---|---|---|---|
{partial}

## Noise
Relative spread of each record's {s.get("repeat")} repeats, (max - min) / median, over
{noise["records_with_repeats"]} successful records: median {noise["spread_median"]:.4f},
90th percentile {noise["spread_p90"]:.4f}, 99th percentile {noise["spread_p99"]:.4f};
{100 * noise["share_spread_over_10pct"]:.1f}% of records spread more than 10%. Median
coefficient of variation {noise["cv_median"]:.4f}. Filter on `run_secs` to drop noisy
records.
"""
    (path / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
