"""Zero-shot transfer: how well does a predictor rank candidates of a target it never saw?

This is what ``load_predictor`` does for a CPU without a predictor of its own (the nearest
one of its family, with a warning), and the K = 0 column of a cross-target few-shot table.
Each dataset (a tunezoo dataset directory of another target, e.g. one imported from a
public MetaSchedule database with ``tunezoo records import``) is scored on every workload
with at least 8 candidates (``tunezoo eval --parts all``), beside random scores (mean of
``--random-draws`` draws), which is the floor a transferred prior has to beat.

The committed ``transfer.md`` scores the public databases of ``../shared/external-dbs``
(an Intel AVX2 CPU at TVM 0.16 and an RTX 3070 at TVM 0.13; read from there, not copied
into the project), imported first:

    tunezoo records import <external-dbs>/mshr-h__metaschedule_sqlitedatabase/log-resnet18 \\
        --out /tmp/xt/x86
    tunezoo records import <external-dbs>/yelite__mlc-llm/work --device rtx3070 --out /tmp/xt/cuda
    python scripts/bench_transfer.py --predictor tunezoo/artifacts/seed-ensemble.llvm-znver4 \\
        /tmp/xt/x86/llvm-core-avx2 /tmp/xt/cuda/cuda-rtx3070

(session 5's bundled seed ensemble, in git history; the cross-target few-shot table of the
current predictor and meta-init is ``bench_fewshot.py --eval-dataset``.)

A dataset of the zoo's own models measured on another CPU (``data/llvm-rocketlake``) holds
workloads the predictor trained on, measured elsewhere. ``--parts train,test,heldout``
scores each part apart: splits are a function of the workload alone, so ``train`` asks
"known workloads, new CPU" and ``test``/``heldout`` "new workloads and new CPU":

    python scripts/bench_transfer.py --predictor tunezoo/artifacts/seed-ensemble.llvm-znver4 \\
        --parts train,test,heldout data/llvm-rocketlake --out /tmp/transfer-intel

Writes ``scripts/results/transfer.{json,md}`` (``--out`` without suffix).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from tunezoo.experiment import load_parts, score_metrics
from tunezoo.predictor import Predictor
from tunezoo.records import read_records
from tunezoo.training import SELECTABLE_PARTS, RankingData

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("top1_score", "top5_score", "pairwise_accuracy", "kendall_tau")


def transfer(predictor: Predictor, data: RankingData, draws: int) -> dict:
    """The predictor's and random scores' metrics on one part of a dataset (none where the
    part has no workload to rank)."""
    row = {"workloads": len(data.group_ids), "candidates": len(data)}
    if not len(data):
        return row
    rng = np.random.default_rng(0)
    chance = [score_metrics(rng.normal(size=len(data)), data) for _ in range(draws)]
    row["predictor"] = score_metrics(predictor.score(data.features), data)
    row["random"] = {m: float(np.mean([c[m] for c in chance])) for m in METRICS}
    return row


def transfer_rows(predictor: Predictor, dataset: Path, draws: int, parts: list[str]) -> list:
    """A row per requested part of one dataset (read once); a dataset none of whose parts
    has a workload to rank is an error naming it, since its rows would say nothing."""
    by_part = load_parts(dataset, tuple(parts), workers=1, cache_dir=None, log=print)
    if not any(len(data) for data in by_part.values()):
        raise SystemExit(
            f"{dataset}: no workload with >= 8 successful candidates to rank in "
            f"part(s) {', '.join(parts)}"
        )
    targets = sorted(set(read_records(dataset, columns=["target_key"])["target_key"].to_pylist()))
    return [
        {
            "dataset": str(dataset),
            "part": part,
            "target_keys": targets,
            **transfer(predictor, by_part[part], draws),
        }
        for part in parts
    ]


def table(report: dict) -> str:
    lines = [
        f"Predictor `{report['predictor']}` (trained for `{report['trained_for']}`), "
        f"scored without adaptation; random: mean of {report['random_draws']} random "
        f"scorings. Command: `{report['command']}`",
        "",
        "| target | part | workloads | candidates | scorer | " + " | ".join(METRICS) + " |",
        "|---|---|---|---|---|" + "---|" * len(METRICS),
    ]
    for row in report["datasets"]:
        target = ", ".join(row["target_keys"])
        head = f"| {target} | {row.get('part', 'all')} | {row['workloads']} | {row['candidates']}"
        if not row["workloads"]:
            lines.append(f"{head} | - |" + " - |" * len(METRICS))
            continue
        for scorer in ("predictor", "random"):
            vals = " | ".join(f"{row[scorer][m]:.3f}" for m in METRICS)
            lines.append(f"{head} | {scorer} | {vals} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("datasets", nargs="+", type=Path, help="tunezoo dataset directories")
    p.add_argument("--predictor", required=True, type=Path)
    p.add_argument("--random-draws", type=int, default=50)
    p.add_argument(
        "--parts",
        default="all",
        help="comma-separated parts scored apart: all, or train, validation, test, heldout "
        "(for a dataset of the zoo's own models: which workloads the predictor trained on)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "transfer")
    args = p.parse_args(argv)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(SELECTABLE_PARTS))
    if unknown or not parts:
        p.error(f"--parts: unknown {unknown or parts}; choose from {', '.join(SELECTABLE_PARTS)}")
    t0 = time.time()
    predictor = Predictor.load(args.predictor)
    report = {
        "command": " ".join(["python", *sys.argv]) if argv is None else "main()",
        "predictor": str(args.predictor),
        "trained_for": predictor.target_key,
        "random_draws": args.random_draws,
        "parts": parts,
        "datasets": [
            row
            for dataset in args.datasets
            for row in transfer_rows(predictor, dataset, args.random_draws, parts)
        ],
    }
    report["seconds"] = round(time.time() - t0, 1)
    text = table(report)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text("# Zero-shot transfer\n\n" + text + "\n")
    print(f"wrote {args.out}.{{json,md}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
