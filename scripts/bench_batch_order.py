"""How well do cost models order the candidates within the batches a tuning run measured?

MetaSchedule measures a batch in the order its evolutionary search hands it over: the cost
model's best-scored first. ``bench_tuning.py`` reports where each session's fastest candidate
came in its first batch; this script asks why, by scoring every measured batch again, offline,
with each ``--predictor`` (and by the order it was measured in), on the sessions' own tuning
databases (``bench_tuning.py --work-dir`` keeps them; their records are in measurement order,
checked against the report's history). Per kind of batch (whose batches: xgb's, cascade's,
...; the first batch or a later one) and per scorer: where the batch's fastest candidate comes
in the scorer's order, how often first, and the top-1 score (the batch's best latency over the
latency of the scorer's first pick; a failed pick scores 0), each beside a random order.

The committed ``batch_order-zen4.{json,md}`` (the three Zen 4 draws of
``bench_tuning-zen4-pooled3``, run with ``--work-dir /tmp/bench16/work``, ``work2``, ``work3``):

    python scripts/bench_batch_order.py scripts/results/bench_tuning-zen4-sample4-s2.json \\
        scripts/results/bench_tuning-zen4-sample4-s3.json \\
        scripts/results/bench_tuning-zen4-sample4-s11.json \\
        --predictor seed-ensemble=tunezoo/artifacts/seed-ensemble.llvm-znver4 \\
        --predictor meta-init=tunezoo/artifacts/score-blend.meta-llvm-x86 \\
        --out scripts/results/batch_order-zen4
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tuning import measured_batches  # noqa: E402


def work_dir_of(report: dict[str, Any], path: Path) -> Path:
    """The ``--work-dir`` a bench report's command ran with (its sessions' databases)."""
    args = shlex.split(report["command"])
    if "--work-dir" not in args:
        raise SystemExit(
            f"{path}: its run kept no tuning databases (no --work-dir in its command); "
            "rerun bench_tuning.py with --work-dir DIR"
        )
    return Path(args[args.index("--work-dir") + 1])


def read_session(session_dir: Path, history: list) -> tuple[Any, list[Any], np.ndarray]:
    """(workload module, measure candidates, latencies in seconds: +inf for a failure) of one
    session's database, in the order it was measured; refused when its running best is not
    the report's history (another run's database in that folder)."""
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

    from tunezoo.cost_model import run_latency  # noqa: PLC0415 - as the report's history did

    records_path = session_dir / "database_tuning_record.json"
    if not records_path.exists():
        raise SystemExit(f"{records_path}: missing; was the work dir cleaned?")
    workload_line = (session_dir / "database_workload.json").read_text().splitlines()[0]
    workload = ms.database.Workload.from_json(json.loads(workload_line))
    candidates, latencies = [], []
    for line in records_path.read_text().splitlines():
        record = ms.database.TuningRecord.from_json(json.loads(line)[1], workload)
        latencies.append(run_latency(record))
        candidates.append(record.as_measure_candidate())
    latencies = np.asarray(latencies)
    expected = np.array([math.inf if h[2] is None else h[2] for h in history])
    running = np.minimum.accumulate(latencies)
    if len(running) != len(expected) or not np.allclose(running, expected, rtol=1e-6):
        raise SystemExit(
            f"{session_dir}: its records are not the ones the report measured (running best "
            "differs from the report's history); point at the run's own --work-dir"
        )
    return workload.mod, candidates, latencies


def order_stats(latencies: np.ndarray, scores: np.ndarray) -> tuple[int, float] | None:
    """(1-based position of the batch's fastest candidate in descending score order, top-1
    score of the scorer's first pick); None when fewer than two candidates ran."""
    ok = np.isfinite(latencies)
    if ok.sum() < 2:
        return None
    best = latencies[ok].min()
    ordered = latencies[np.argsort(-scores, kind="stable")]
    position = int(np.argmax(ordered <= best)) + 1
    return position, float(best / ordered[0]) if np.isfinite(ordered[0]) else 0.0


def random_stats(latencies: np.ndarray) -> tuple[float, float] | None:
    """What a random order gives on average: position (n + 1) / 2 of the best (ties to the
    first of them), and the mean top-1 score of a random first pick."""
    ok = np.isfinite(latencies)
    if ok.sum() < 2:
        return None
    n, best = len(latencies), latencies[ok].min()
    ties = int((latencies <= best).sum())
    return (n + 1) / (ties + 1), float(np.where(ok, best / latencies, 0.0).mean())


def analyse(
    reports: list[Path], predictors: dict[str, Path], target_override: str | None = None
) -> dict[str, Any]:
    from tunezoo.features import features_of_candidates, light_tune_context  # noqa: PLC0415
    from tunezoo.predictor import Predictor  # noqa: PLC0415
    from tunezoo.targets import get_target  # noqa: PLC0415

    scorers = {name: Predictor.load(folder) for name, folder in predictors.items()}
    rows: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    sessions = 0
    for path in reports:
        report = json.loads(path.read_text())
        root = work_dir_of(report, path)
        target_key = target_override or report["settings"]["target"]
        target = get_target(target_key).tvm_target(report["settings"].get("num_cores", 1))
        for workload, by_contender in report["runs"].items():
            for contender, by_seed in by_contender.items():
                for seed, run in by_seed.items():
                    history = run["history"]
                    batches = measured_batches([tuple(h) for h in history])
                    if not batches:
                        continue
                    session_dir = root / workload / f"{contender}-s{seed}"
                    mod, candidates, latencies = read_session(session_dir, history)
                    features = features_of_candidates(light_tune_context(mod, target), candidates)
                    scores = {n: p.score_matrices(features) for n, p in scorers.items()}
                    scores["as measured"] = -np.arange(len(latencies), dtype=np.float64)
                    sessions += 1
                    start = 0
                    for b, batch in enumerate(batches):
                        part = slice(start, start + len(batch))
                        start += len(batch)
                        which = "first" if b == 0 else "later"
                        chance = random_stats(latencies[part])
                        if chance is None:
                            continue
                        rows.setdefault((contender, which, "random"), []).append(chance)
                        for name, s in scores.items():
                            got = order_stats(latencies[part], s[part])
                            rows.setdefault((contender, which, name), []).append(got)
    table = []
    for (contender, which, scorer), values in rows.items():
        v = np.array(values, dtype=np.float64)
        table.append(
            {
                "batches_of": contender,
                "batch": which,
                "order_by": scorer,
                "batches": len(v),
                "best_position": float(v[:, 0].mean()),
                "best_first": None if scorer == "random" else float(np.mean(v[:, 0] == 1)),
                "top1_score": float(v[:, 1].mean()),
            }
        )
    return {"sessions": sessions, "rows": table}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Order within a measured batch, scored again offline",
        "",
        f"{result['sessions']} tuning sessions of {', '.join(result['reports'])}; scorers: "
        + ", ".join(f"{n} (`{p}`)" for n, p in result["predictors"].items())
        + f". Command: `{result['command']}`",
        "",
        "Position: where the batch's fastest candidate comes in the scorer's order (1 = "
        "first). Top-1 score: the batch's best latency over the latency of the scorer's "
        "first pick (1 = it picked the best). Random: the expectation of a random order.",
        "",
        "| batches of | batch | order by | batches | position of the best | best first | "
        "top-1 score |",
        "|---|---|---|---|---|---|---|",
    ]
    order = {"as measured": 0, "random": 2}
    for r in sorted(
        result["rows"],
        key=lambda r: (r["batches_of"], r["batch"], order.get(r["order_by"], 1), r["order_by"]),
    ):
        first = "" if r["best_first"] is None else f"{r['best_first']:.0%}"
        lines.append(
            f"| {r['batches_of']} | {r['batch']} | {r['order_by']} | {r['batches']} | "
            f"{r['best_position']:.2f} | {first} | {r['top1_score']:.3f} |"
        )
    return "\n".join([*lines, ""])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("reports", nargs="+", type=Path, help="bench_tuning.py JSON reports")
    p.add_argument(
        "--predictor",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a scorer (repeatable): a predictor or meta-init folder",
    )
    p.add_argument("--target", help="target key for features (default: each report's)")
    p.add_argument("--out", type=Path, required=True, help="output path without suffix")
    args = p.parse_args(argv)
    args.predictors = {}
    for item in args.predictor:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"--predictor {item!r}: write NAME=DIR")
        args.predictors[name] = Path(folder)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    result = analyse(args.reports, args.predictors, args.target)
    result.update(
        command=shlex.join(["python", *sys.argv]),
        reports=[p.name for p in args.reports],
        predictors={n: str(p) for n, p in args.predictors.items()},
        seconds=round(time.perf_counter() - start, 1),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
