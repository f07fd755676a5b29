"""Few-shot benchmark: how well does each starting point rank a new workload after K shots?

For K = 0, 8, 16, 32, 64 measured candidates of each held-out workload (``test`` split and
held-out models; with ``--eval-dataset``, every workload of another target's dataset:
cross-target adaptation from this target's predictor and meta-init), four ways to get a
cost model, compared in one run:

  scratch    a fresh model of the meta-init's architecture trained on the K shots only
             (the feature normaliser is the meta-init's: K candidates cannot estimate 164
             feature scales; only the weights start from scratch)
  frozen     a pretrained predictor, not adapted (the K shots only leave the query set)
  finetune   the pretrained predictor fine-tuned on the K shots
  meta       the meta-initialisation adapted on the K shots

Every adapted method gets the same budget: the same number of full-batch SGD steps on the
K shots (``--steps``) and the same learning-rate grid (``--lr-grid``), searched on the
*validation* workloads by few-shot top-1 (ties: pairwise accuracy), never on the
evaluation workloads. Metrics are over the query candidates (every candidate of the
workload not in the support); mean and std over ``--draws`` random supports, the same
supports for every method. Evaluation workloads need ``max(K) + --min-query`` candidates,
so every K is scored on the same workloads.

Writes ``<out>.json``, ``<out>.md`` (the table) and ``<out>.png`` (default
``scripts/results/fewshot``, or ``scripts/results/fewshot-quick`` with ``--quick``) and
prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from tunezoo.experiment import predictor_eval_fn
from tunezoo.features import FEATURE_VERSION
from tunezoo.meta import MetaConfig, few_shot_eval, load_init, meta_train, selection_score
from tunezoo.meta_experiment import json_safe
from tunezoo.models import build_model
from tunezoo.predictor import Predictor
from tunezoo.records import utc_time
from tunezoo.training import RankingData, TrainConfig, load_ranking_data, train_predictor

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("scratch", "frozen", "finetune", "meta")
ADAPTED = ("scratch", "finetune", "meta")
METRICS = ("top1_score", "top5_score", "pairwise_accuracy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="data/llvm-znver4")
    p.add_argument("--target", help="target key (default: the dataset folder name)")
    p.add_argument("--predictor", help="pretrained predictor folder (default: train one)")
    p.add_argument("--init", help="meta-init folder (default: meta-train one)")
    p.add_argument("--shots", default="0,8,16,32,64")
    p.add_argument("--draws", type=int, default=5, help="support draws per workload and K")
    p.add_argument("--val-draws", type=int, default=2, help="support draws in the lr search")
    p.add_argument("--steps", type=int, default=20, help="SGD steps on the K shots (all methods)")
    p.add_argument("--lr-grid", default="0.003,0.01,0.03,0.1,0.3")
    p.add_argument("--min-query", type=int, default=16)
    p.add_argument("--max-workloads", type=int, help="per evaluation part (first by id)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir")
    p.add_argument(
        "--until",
        type=utc_time,
        help="only records measured up to this ISO time (e.g. the meta-init's data_until)",
    )
    p.add_argument(
        "--eval-dataset",
        help="cross-target: evaluate on every workload of this other target's dataset "
        "(starting points and the lr search stay on --dataset, the source target)",
    )
    p.add_argument("--out", help="output path without suffix")
    p.add_argument("--quick", action="store_true", help="2 workloads per part, 2 draws")
    return p.parse_args(argv)


# ------------------------------------------------------------------ starting points


def _per_store(predictor: Predictor, where: str) -> Predictor:
    """The benchmark adapts every method on per-store features: refuse another kind."""
    if predictor.feature_version != FEATURE_VERSION:
        raise SystemExit(
            f"{where} reads {predictor.feature_version!r} features; bench_fewshot compares "
            f"models of {FEATURE_VERSION!r} (a per-store predictor or meta-init)"
        )
    return predictor


def pretrained_predictor(args, data: dict[str, RankingData], target: str) -> Predictor:
    if args.predictor:
        return _per_store(Predictor.load(args.predictor), args.predictor)
    config = TrainConfig(epochs=10 if args.quick else 60, patience=5, threads=1, seed=args.seed)
    print(f"--- training a predictor on train ({config.epochs} epochs max)")
    predictor, _ = train_predictor(
        data["train"],
        data["validation"],
        config,
        target_key=target,
        evaluate_fn=predictor_eval_fn,
        log=lambda line: None,
    )
    print(f"    best epoch {predictor.metadata['best_epoch']}")
    return predictor


def meta_init(args, data: dict[str, RankingData], target: str) -> Predictor:
    if args.init:
        return _per_store(load_init(Path(args.init)), args.init)
    config = MetaConfig(
        meta_steps=100 if args.quick else 400,
        eval_every=25 if args.quick else 50,
        seed=args.seed,
    )
    print(f"--- meta-training {config.algorithm} ({config.meta_steps} steps)")
    init, info = meta_train(
        data["train"], data["validation"], config, target_key=target, log=lambda line: None
    )
    print(f"    best step {info['best_step']}")
    return init


def scratch_factory(init: Predictor, seed: int) -> Callable[[int], Predictor]:
    """A fresh model per draw, with the meta-init's architecture and normaliser."""

    def make(draw: int) -> Predictor:
        torch.manual_seed(seed * 1000 + draw)
        model = build_model(init.arch, asdict(init.model.config))
        return Predictor(model, init.mean, init.std, init.target_key)

    return make


# ------------------------------------------------------------------------- running


def restrict(data: RankingData, min_size: int, max_workloads: int | None) -> RankingData:
    members = data.group_members()
    keep = [g for g, m in enumerate(members) if len(m) >= min_size]
    return data.subset_groups(keep[:max_workloads] if max_workloads else keep)


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    t0 = time.time()
    shots = [int(s) for s in args.shots.split(",")]
    grid = [float(x) for x in args.lr_grid.split(",")]
    target = args.target or Path(args.dataset).resolve().name
    data = {
        part: load_ranking_data(
            args.dataset, part, cache_dir=args.cache_dir, progress=False, until=args.until
        )
        for part in ("train", "validation", "test", "heldout")
    }
    need = max(shots) + args.min_query
    if args.eval_dataset:  # cross-target: the other target's workloads, all of them
        other = Path(args.eval_dataset).resolve().name
        data[other] = load_ranking_data(
            args.eval_dataset, "all", cache_dir=args.cache_dir, progress=False
        )
        evaluation = {other: restrict(data[other], need, args.max_workloads)}
        if args.predictor is None or args.init is None:
            raise SystemExit("--eval-dataset needs --predictor and --init of the source target")
    else:
        evaluation = {
            p: restrict(data[p], need, args.max_workloads)
            for p in ("test", "heldout")
            if len(data[p].group_ids)
        }
    for p, d in data.items():
        extra = f" ({len(evaluation[p].group_ids)} with >= {need})" if p in evaluation else ""
        print(f"{p}: {len(d.group_ids)} workloads, {len(d)} candidates{extra}")
    validation = restrict(data["validation"], need, None)
    if not validation.group_ids or not evaluation:
        raise SystemExit(
            f"need validation and test/heldout workloads with >= {need} candidates "
            f"(max K + --min-query); lower --shots or --min-query, or collect more records"
        )
    predictor = pretrained_predictor(args, data, target)
    init = meta_init(args, data, target)
    starts: dict[str, Predictor | Callable[[int], Predictor]] = {
        "scratch": scratch_factory(init, args.seed),
        "frozen": predictor,
        "finetune": predictor,
        "meta": init,
    }

    def evaluate(method: str, part_data: RankingData, k: int, lr: float, draws: int) -> dict:
        steps = args.steps if method in ADAPTED and k > 0 else 0
        return few_shot_eval(
            starts[method],
            part_data,
            k=k,
            draws=draws,
            steps=steps,
            lr=lr,
            seed=args.seed,
            min_query=args.min_query,
        )

    chosen: dict[str, dict[int, float | None]] = {m: {} for m in METHODS}
    search: dict[str, dict[int, dict[str, float]]] = {m: {} for m in ADAPTED}
    for method in ADAPTED:
        for k in shots:
            if k == 0:
                chosen[method][k] = None
                continue
            scored = {}
            for lr in grid:
                summary = evaluate(method, validation, k, lr, args.val_draws)
                scored[lr] = selection_score(summary)
                search[method].setdefault(k, {})[str(lr)] = summary["top1_score"]["mean"]
            chosen[method][k] = max(grid, key=lambda lr, s=scored: s[lr])
            print(f"lr search {method:8s} K={k:3d}: lr {chosen[method][k]:g}")
    for k in shots:
        chosen["frozen"][k] = None

    results: dict[str, dict[str, dict[int, dict]]] = {}
    for part, part_data in evaluation.items():
        results[part] = {m: {} for m in METHODS}
        for method in METHODS:
            for k in shots:
                lr = chosen[method][k] or 0.0
                summary = evaluate(method, part_data, k, lr, args.draws)
                results[part][method][k] = {
                    m: {"mean": v["mean"], "std": v["std"], "draws": v["draws"]}
                    for m, v in summary.items()
                }
    return {
        "benchmark": "few-shot adaptation (issue 6)",
        "command": " ".join(["python", *sys.argv]),
        "dataset": str(args.dataset),
        "eval_dataset": str(args.eval_dataset) if args.eval_dataset else None,
        "data_until": args.until.isoformat() if args.until else None,
        "target_key": target,
        "feature_version": FEATURE_VERSION,
        "quick": args.quick,
        "shots": shots,
        "steps": args.steps,
        "lr_grid": grid,
        "draws": args.draws,
        "val_draws": args.val_draws,
        "min_query": args.min_query,
        "methods": {
            "scratch": f"fresh {init.arch} trained on the K shots",
            "frozen": f"pretrained {predictor.arch}"
            + (f" from {args.predictor}" if args.predictor else " trained here on train"),
            "finetune": "the pretrained predictor fine-tuned on the K shots",
            "meta": f"meta-init ({init.metadata['meta']['algorithm']}, {init.arch})"
            + (f" from {args.init}" if args.init else " meta-trained here on train"),
        },
        "meta_init": init.metadata["meta"],
        "chosen_lr": {m: {str(k): v for k, v in c.items()} for m, c in chosen.items()},
        "lr_search_val_top1": {m: {str(k): v for k, v in s.items()} for m, s in search.items()},
        "workloads": {
            "validation": validation.group_ids,
            **{p: d.group_ids for p, d in evaluation.items()},
        },
        "results": {
            p: {m: {str(k): v for k, v in r.items()} for m, r in res.items()}
            for p, res in results.items()
        },
        "machine": platform.processor() or platform.machine(),
        "seconds": round(time.time() - t0, 1),
    }


# ------------------------------------------------------------------------- reporting


def table(report: dict) -> str:
    lines = [
        "| part | method | K | lr | top-1 | top-5 | pairwise acc. |",
        "|---|---|---|---|---|---|---|",
    ]
    for part, res in report["results"].items():
        for method, by_k in res.items():
            for k, m in by_k.items():
                lr = report["chosen_lr"][method][k]
                cells = " | ".join(f"{m[x]['mean']:.3f} ± {m[x]['std']:.3f}" for x in METRICS)
                lines.append(f"| {part} | {method} | {k} | {lr if lr else '-'} | {cells} |")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    parts = list(report["results"])
    fig, axes = plt.subplots(
        len(parts), len(METRICS), figsize=(4 * len(METRICS), 3 * len(parts)), squeeze=False
    )
    shots = report["shots"]
    x = np.arange(len(shots))
    for row, part in enumerate(parts):
        for col, metric in enumerate(METRICS):
            ax = axes[row][col]
            for i, method in enumerate(METHODS):
                by_k = report["results"][part][method]
                mean = [by_k[str(k)][metric]["mean"] for k in shots]
                std = [by_k[str(k)][metric]["std"] for k in shots]
                ax.errorbar(
                    x + (i - 1.5) * 0.05, mean, yerr=std, marker="o", capsize=3, label=method
                )
            ax.set_xticks(x, [str(k) for k in shots])
            ax.set_xlabel("K (measured candidates of the workload)")
            ax.set_title(f"{part}: {metric}")
            ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.suptitle(
        f"few-shot ranking on {report['target_key']} ({report['steps']} SGD steps, "
        f"{report['draws']} draws{', quick' if report['quick'] else ''})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.draws, args.val_draws = 2, 1
        args.max_workloads = args.max_workloads or 2
        args.lr_grid = "0.01,0.1,0.3" if args.lr_grid == parse_args([]).lr_grid else args.lr_grid
    out = Path(args.out) if args.out else RESULTS / ("fewshot-quick" if args.quick else "fewshot")
    report = run(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n"
    )
    plot(report, out.with_suffix(".png"))
    text = table(report)
    out.with_suffix(".md").write_text(f"Command: `{report['command']}`\n\n{text}\n")
    print(text)
    print(f"wrote {out}.{{json,md,png}} ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
