"""Meta-train a few-shot initialisation for one dataset (issue 6).

Trains on the ``train`` split (workloads with at least ``--min-candidates`` successful
candidates), keeps the step and algorithm with the best few-shot top-1 on ``validation``
(support of ``--support-k`` candidates, adapted with the saved inner lr and steps), then
reports few-shot metrics on ``test`` and ``heldout`` next to the un-adapted initialisation.

Writes ``--out``: ``config.json`` + ``model.safetensors`` (a Predictor whose
``metadata.meta`` holds the adaptation procedure) and ``metrics.json``.

Example (the bundled llvm-x86 meta-init; the full command is in scripts/train_meta.py):
    taskset -c 0 python scripts/train_meta.py --dataset data/llvm-znver4 \
        --out tunezoo/artifacts/score-blend.meta-llvm-x86 --arch score-blend \
        --from-predictor score-blend.llvm-znver4  # bundled until ab9ba4b; see train_meta.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from tunezoo.evaluate import METRICS_DOC
from tunezoo.experiment import data_until
from tunezoo.features import FEATURE_VERSION
from tunezoo.meta import ALGORITHMS, MetaConfig, few_shot_eval, meta_train, selection_score
from tunezoo.predictor import Predictor, sha256_file
from tunezoo.records import utc_time
from tunezoo.training import RankingData, load_ranking_data

PARTS = ("train", "validation", "test", "heldout")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", required=True, help="dataset directory (data/<target>)")
    p.add_argument("--out", required=True, help="artifact folder to write")
    p.add_argument("--target", help="target key recorded in the artifact (default: dataset name)")
    p.add_argument(
        "--algorithm",
        nargs="+",
        default=["fomaml", "reptile"],
        choices=ALGORITHMS,
        help="train each; keep the best on validation",
    )
    defaults = MetaConfig()
    for f in fields(MetaConfig):
        if f.name in ("algorithm", "arch_config", "inner_lr"):
            continue
        value = getattr(defaults, f.name)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(value), default=value)
    p.add_argument(
        "--inner-lr",
        type=float,
        nargs="+",
        default=[defaults.inner_lr],
        help="inner-loop SGD learning rate(s): each is meta-trained; keep the best on validation",
    )
    p.add_argument("--arch-config", type=json.loads, default={}, help="JSON dict")
    p.add_argument("--eval-draws-final", type=int, default=5, help="draws for test/heldout")
    p.add_argument("--cache-dir", help="feature cache (default ~/.cache/tunezoo)")
    p.add_argument(
        "--until",
        type=utc_time,
        help="only records measured up to this ISO time (default: the dataset's newest); "
        "recorded as data_until, so a growing dataset can be cut back to this snapshot",
    )
    p.add_argument(
        "--from-predictor",
        help="start meta-training from this pretrained predictor folder (its weights and "
        "normaliser) instead of random weights",
    )
    p.add_argument("--quick", action="store_true", help="a short run (a few minutes)")
    return p.parse_args(argv)


def load(
    dataset: str,
    cache_dir: str | None,
    min_candidates: int,
    until: dt.datetime,
    feature_version: str = FEATURE_VERSION,
) -> dict[str, RankingData]:
    out = {}
    for part in PARTS:
        out[part] = load_ranking_data(
            dataset,
            part,
            min_candidates=min_candidates,
            cache_dir=cache_dir,
            progress=False,
            until=until,
            feature_version=feature_version,
        )
        print(f"{part}: {len(out[part].group_ids)} workloads, {len(out[part])} candidates")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    if args.quick:
        args.meta_steps, args.eval_every, args.eval_draws_final = 100, 25, 2
    target = args.target or Path(args.dataset).resolve().name
    until = args.until or data_until(args.dataset)  # fixed first: collection may be running
    start_from = Predictor.load(args.from_predictor) if args.from_predictor else None
    # a pretrained start reads its own features; from scratch, per-store
    version = start_from.feature_version if start_from is not None else FEATURE_VERSION
    data = load(args.dataset, args.cache_dir, args.min_candidates, until, version)
    skip = ("algorithm", "inner_lr")
    base = {f.name: getattr(args, f.name) for f in fields(MetaConfig) if f.name not in skip}
    runs = {}
    for algorithm in args.algorithm:
        for inner_lr in args.inner_lr:
            config = MetaConfig(**{**base, "algorithm": algorithm, "inner_lr": inner_lr})
            name = f"{algorithm}@inner_lr={inner_lr:g}"
            print(f"--- {name}")
            train, validation = data["train"], data["validation"]
            init, info = meta_train(
                train, validation, config, target_key=target, start_from=start_from
            )
            runs[name] = (init, info, config)
    best_run = max(runs, key=lambda a: selection_score(runs[a][1]["validation"]))
    init, info, config = runs[best_run]
    best_alg = config.algorithm
    print(f"selected {best_run} (step {info['best_step']})")

    def evaluate(data_part: RankingData, steps: int) -> dict:
        return few_shot_eval(
            init,
            data_part,
            k=config.support_k,
            draws=args.eval_draws_final,
            steps=steps,
            lr=config.inner_lr,
            loss=config.loss,
            seed=config.seed,
        )

    few_shot = {}
    for part in ("test", "heldout"):
        if len(data[part].group_ids):
            few_shot[part] = {
                "adapted": evaluate(data[part], config.inner_steps),
                "unadapted": evaluate(data[part], 0),
            }

    def means(summary: dict) -> dict:
        return {k: v["mean"] for k, v in summary.items()}

    metrics = {
        "kind": "meta-init",
        "target_key": target,
        "arch": config.arch,
        "algorithm": best_alg,
        "selected_run": best_run,
        "meta": config.meta_fields(),
        "feature_version": version,
        "dataset": str(args.dataset),
        "data_until": until.isoformat(),
        "data_counts": {
            p: {"workloads": len(d.group_ids), "candidates": len(d)} for p, d in data.items()
        },
        "evaluation": (
            f"few-shot: {config.support_k} random candidates of each workload as support, "
            f"{config.inner_steps} SGD steps at lr {config.inner_lr}, metrics on the rest; "
            f"mean over {args.eval_draws_final} support draws (std in few_shot)"
        ),
        "validation": means(info["validation"]),
        **{p: means(v["adapted"]) for p, v in few_shot.items()},
        "baselines": {"unadapted": {p: means(v["unadapted"]) for p, v in few_shot.items()}},
        "few_shot": few_shot,
        "runs": {
            a: {
                "validation": means(r[1]["validation"]),
                "best_step": r[1]["best_step"],
                "history": r[1]["history"],
            }
            for a, r in runs.items()
        },
        "meta_config": asdict(config),
        "started_from": (
            {
                "predictor": str(args.from_predictor),
                "weights_sha256": sha256_file(Path(args.from_predictor) / "model.safetensors"),
            }
            if args.from_predictor
            else "random"
        ),
        "averaging": METRICS_DOC,
        "machine": platform.processor() or platform.machine(),
        "seconds": round(time.time() - t0, 1),
    }
    out = Path(args.out)
    metrics["files_sha256"] = init.save(out)
    (out / "metrics.json").write_text(
        json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n"
    )
    for part, v in few_shot.items():
        a, u = v["adapted"], v["unadapted"]
        print(
            f"{part}: K={config.support_k} adapted top1 {a['top1_score']['mean']:.4f}"
            f"±{a['top1_score']['std']:.4f} pairwise {a['pairwise_accuracy']['mean']:.4f}; "
            f"unadapted top1 {u['top1_score']['mean']:.4f} "
            f"pairwise {u['pairwise_accuracy']['mean']:.4f}"
        )
    print(f"saved {best_alg} meta-init and metrics.json to {out}")
    return 0


def json_safe(obj):
    """NaN/inf to null and numpy scalars to numbers: strict JSON that any reader accepts."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


if __name__ == "__main__":
    sys.exit(main())
