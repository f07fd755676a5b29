"""Learning curve: ranking quality on held-out workloads versus the number of training
workloads, for the tunezoo predictor and MetaSchedule's XGBoost on the same features.

Answers "is the model limited by data?": if the held-out metrics still climb between
half and all of the training workloads, more workloads are what it needs.

    python scripts/learning_curve.py --dataset data/llvm-znver4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from tunezoo.baselines import train_xgb
from tunezoo.experiment import load_parts, predictor_eval_fn, score_metrics
from tunezoo.records import utc_time
from tunezoo.training import TrainConfig, train_predictor

METRICS = ("top1_score", "top5_score", "pairwise_accuracy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="data/llvm-znver4")
    parser.add_argument("--fractions", default="0.25,0.5,1.0")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default="scripts/results/learning_curve.json")
    parser.add_argument(
        "--until",
        type=utc_time,
        help="only records measured up to this ISO time (a snapshot of a growing dataset)",
    )
    args = parser.parse_args()
    t0 = time.time()
    data = load_parts(
        args.dataset,
        ("train", "validation", "test", "heldout"),
        workers=1,
        cache_dir=None,
        log=print,
        until=args.until,
    )
    n_train = len(data["train"].group_ids)
    rows = []
    for fraction in [float(f) for f in args.fractions.split(",")]:
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            k = max(2, round(fraction * n_train))
            keep = sorted(rng.choice(n_train, size=k, replace=False).tolist())
            train = data["train"].subset_groups(keep)
            config = TrainConfig(epochs=args.epochs, patience=10, seed=seed, threads=1)
            predictor, _ = train_predictor(
                train,
                data["validation"],
                config,
                target_key="curve",
                evaluate_fn=predictor_eval_fn,
                log=lambda _: None,
            )
            xgb = train_xgb("ms-xgb", train, data["validation"], seed=seed, threads=1)
            for name, model in (("segsum-mlp", predictor), ("ms-xgb", xgb)):
                for part in ("test", "heldout"):
                    m = score_metrics(model.score(data[part].features), data[part])
                    rows.append(
                        {
                            "fraction": fraction,
                            "train_workloads": k,
                            "seed": seed,
                            "model": name,
                            "part": part,
                            **{x: m[x] for x in METRICS},
                        }
                    )
            print(f"fraction {fraction} seed {seed} done ({time.time() - t0:.0f} s)")
    summary = []
    print("\n| model | part | train workloads | " + " | ".join(METRICS) + " |")
    print("|---|---|---|" + "---|" * len(METRICS))
    for name in ("segsum-mlp", "ms-xgb"):
        for part in ("test", "heldout"):
            for fraction in sorted({r["fraction"] for r in rows}):
                sel = [
                    r
                    for r in rows
                    if r["model"] == name and r["part"] == part and r["fraction"] == fraction
                ]
                means = {x: float(np.mean([r[x] for r in sel])) for x in METRICS}
                stds = {x: float(np.std([r[x] for r in sel])) for x in METRICS}
                summary.append(
                    {
                        "model": name,
                        "part": part,
                        "fraction": fraction,
                        "train_workloads": sel[0]["train_workloads"],
                        "mean": means,
                        "std": stds,
                    }
                )
                cells = " | ".join(f"{means[x]:.3f} ± {stds[x]:.3f}" for x in METRICS)
                print(f"| {name} | {part} | {sel[0]['train_workloads']} | {cells} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "dataset": args.dataset,
                "data_until": args.until.isoformat() if args.until else None,
                "rows": rows,
                "summary": summary,
                "data_counts": {
                    p: {"workloads": len(d.group_ids), "candidates": len(d)}
                    for p, d in data.items()
                },
                "seconds": round(time.time() - t0, 1),
            },
            indent=2,
        )
        + "\n"
    )
    plot(summary, Path(args.out).with_suffix(".png"))
    print(f"wrote {args.out} and its .png")


def plot(summary: list[dict], path: Path) -> None:
    """One panel per metric: mean ± std over seeds against the training workloads."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.4))
    for ax, metric in zip(axes, METRICS, strict=True):
        for name in sorted({r["model"] for r in summary}):
            for part, style in (("test", "--"), ("heldout", "-")):
                sel = sorted(
                    (r for r in summary if r["model"] == name and r["part"] == part),
                    key=lambda r: r["train_workloads"],
                )
                x = [r["train_workloads"] for r in sel]
                y = np.array([r["mean"][metric] for r in sel])
                e = np.array([r["std"][metric] for r in sel])
                ax.errorbar(x, y, yerr=e, linestyle=style, marker="o", label=f"{name} {part}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training workloads")
        ax.set_title(metric)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
