"""Train, evaluate and compare cost models on one dataset, in one run.

``tunezoo train`` and ``scripts/train_predictor.py`` call :func:`run_training`;
``tunezoo eval`` calls :func:`run_evaluation`, which recomputes a predictor's metrics
from the data, so anyone can check the numbers a model card reports.

Evaluation parts are workload-disjoint: ``test`` (hash-bucket test split, minus held-out
models) and ``heldout`` (every workload of the models in ``splits.HELD_OUT_MODELS``,
never trained on). Failed candidates are excluded from the metrics (they have no
latency) but are kept in training with label 0.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tunezoo.evaluate import METRICS_DOC, evaluate_ranking
from tunezoo.feature_kinds import PER_STORE, TRACE, feature_kind
from tunezoo.features import FEATURE_VERSION, ExtractionStats
from tunezoo.predictor import Predictor, blend_with_xgboost, ensemble_of
from tunezoo.screening import MIN_REFINE, REFINE_FRACTION, screened_scores
from tunezoo.training import RankingData, TrainConfig, load_ranking_data, train_predictor

PARTS = ("test", "heldout")


def score_metrics(scores: np.ndarray, data: RankingData) -> dict:
    """The ranking metrics of ``scores`` on ``data`` (successful candidates only)."""
    ok = data.successful()
    groups = np.array(data.group_ids)[data.groups[ok]]
    weights = dict(zip(data.group_ids, data.group_weights.tolist(), strict=True))
    return evaluate_ranking(data.latencies[ok], np.asarray(scores)[ok], groups, weights)


def _selection(metrics: dict) -> float:
    return (metrics["top1_score"] + metrics["avg_peak_score@5"]) / 2


def predictor_eval_fn(predictor: Predictor, data: RankingData) -> dict:
    metrics = score_metrics(predictor.score(data.features), data)
    return {
        "top1_score": metrics["top1_score"],
        "top5_score": metrics["top5_score"],
        "avg_peak_score@5": metrics["avg_peak_score@5"],
        "pairwise_accuracy": metrics["pairwise_accuracy"],
        "selection": _selection(metrics),
    }


def load_parts(
    dataset_dir: str | Path,
    parts: tuple[str, ...],
    *,
    workers: int,
    cache_dir: str | Path | None,
    log=print,
    until=None,
    feature_version: str = FEATURE_VERSION,
) -> dict[str, RankingData]:
    out = {}
    for part in parts:
        stats = ExtractionStats()
        out[part] = load_ranking_data(
            dataset_dir,
            part,
            workers=workers,
            cache_dir=cache_dir,
            stats=stats,
            until=until,
            feature_version=feature_version,
        )
        log(
            f"{part}: {len(out[part].group_ids)} workloads, {len(out[part])} candidates "
            f"({feature_kind(feature_version).name} features: {stats.computed} computed at "
            f"{stats.records_per_second():.0f} rec/s,"
            f" {stats.from_cache} cached, {stats.failed} failed)"
        )
    return out


def _part_metrics(model, data: dict[str, RankingData]) -> dict[str, dict]:
    """Metrics of a predictor (or baseline) on validation and every evaluation part."""
    return {
        p: score_metrics(model.score(data[p].features), data[p])
        for p in ("validation", *PARTS)
        if len(data[p])
    }


def run_training(
    dataset_dir: str | Path,
    out_dir: str | Path,
    *,
    target_key: str,
    archs: tuple[str, ...] = ("segsum-mlp", "store-attention"),
    config: TrainConfig | None = None,
    baselines: tuple[str, ...] = ("ms-xgb", "xgb-packsum", "xgb-rank"),
    workers: int = 2,
    cache_dir: str | Path | None = None,
    log=print,
    until=None,
    ensemble: int = 1,
    blend_xgboost: bool = False,
    feature_version: str = FEATURE_VERSION,
) -> dict:
    """Train every architecture and baseline on ``train``, select on ``validation``,
    report ``test`` and ``heldout``; save the best architecture as the predictor.

    ``until`` (UTC datetime) fixes the snapshot (see :func:`tunezoo.records.shards_after`);
    by default it is the newest record on disk when training starts. ``ensemble`` > 1
    trains that many members per architecture (seeds ``config.seed``, ``+1``, ...) and
    keeps their :class:`~tunezoo.models.SeedEnsemble`; each member's metrics are kept too.
    ``blend_xgboost`` adds, for every architecture, its blend with the ``ms-xgb`` baseline
    (:func:`blend_weights`) as one more candidate for the validation choice.
    ``feature_version`` (:mod:`tunezoo.feature_kinds`) is what the predictors read; the
    XGBoost baselines always read per-store features, their own, so that a predictor on
    other features is compared with what MetaSchedule's XGBoost does with its own."""
    from tunezoo.baselines import train_xgb  # noqa: PLC0415

    kind = feature_kind(feature_version)
    if ensemble < 1:
        raise ValueError(f"ensemble must be >= 1, got {ensemble}")
    if blend_xgboost and "ms-xgb" not in baselines:
        raise ValueError("blend_xgboost needs the ms-xgb baseline (add it to baselines)")
    if blend_xgboost and kind is not PER_STORE:
        raise ValueError(
            f"blend_xgboost blends trees over per-store features into the predictor; the "
            f"predictor reads {kind.name} features, so it cannot (drop --blend-xgboost)"
        )
    config = config or TrainConfig()
    t0 = time.time()
    # The cut-off is fixed before anything is read: a collector may add shards while this
    # trains, and the snapshot must be the data the model saw, not the data at the end.
    cutoff = until or data_until(dataset_dir)
    every_part = functools.partial(
        load_parts,
        dataset_dir,
        ("train", "validation", *PARTS),
        workers=workers,
        cache_dir=cache_dir,
        log=log,
        until=cutoff,
    )
    data = every_part(feature_version=kind.version)
    baseline_data = every_part() if baselines and kind is not PER_STORE else data
    results: dict[str, dict] = {}
    predictors: dict[str, Predictor] = {}
    for arch in archs:
        members, member_results = [], []
        for i in range(ensemble):
            cfg = TrainConfig(**{**asdict(config), "arch": arch, "seed": config.seed + i})
            which = f" (member {i + 1}/{ensemble}, seed {cfg.seed})" if ensemble > 1 else ""
            log(f"--- training {arch}{which}")
            member, info = train_predictor(
                data["train"],
                data["validation"],
                cfg,
                target_key=target_key,
                evaluate_fn=predictor_eval_fn,
                log=log,
            )
            members.append(member)
            member_results.append(
                {
                    "seed": cfg.seed,
                    **_part_metrics(member, data),
                    "best_epoch": info["best_epoch"],
                    "train_seconds": member.metadata["train_seconds"],
                }
            )
        predictor = members[0] if ensemble == 1 else ensemble_of(members)
        label = arch if ensemble == 1 else f"seed-ensemble of {ensemble} {arch}"
        predictors[label] = predictor
        results[label] = {
            **_part_metrics(predictor, data),
            "best_epoch": member_results[0]["best_epoch"]
            if ensemble == 1
            else [m["best_epoch"] for m in member_results],
            "train_seconds": round(sum(m["train_seconds"] for m in member_results), 1),
        }
        if ensemble > 1:
            results[label]["members"] = member_results
    for name in baselines:
        log(f"--- training baseline {name}")
        t1 = time.time()
        model = train_xgb(
            name,
            baseline_data["train"],
            baseline_data["validation"],
            seed=config.seed,
            threads=config.threads,
        )
        results[name] = {
            **_part_metrics(model, baseline_data),
            "train_seconds": round(time.time() - t1, 1),
        }
        if name == "ms-xgb" and blend_xgboost:
            for label in list(predictors):
                blended = _blend(predictors[label], model, data["validation"], label)
                blend_label = f"{label} + ms-xgb"
                predictors[blend_label] = blended
                results[blend_label] = {
                    **_part_metrics(blended, data),
                    "blend_weights": blended.metadata["blend_weights"],
                }
    best_label = max(predictors, key=lambda a: _selection(results[a]["validation"]))
    best = predictors[best_label]
    metrics = {
        "target_key": target_key,
        "arch": best.arch,
        "model": best_label,  # the entry of "models" that was saved
        "ensemble": ensemble,
        "feature_version": kind.version,
        "dataset": str(dataset_dir),
        "data_until": cutoff.isoformat(),
        "data_counts": {
            p: {"workloads": len(d.group_ids), "candidates": len(d)} for p, d in data.items()
        },
        "data_workloads": {p: list(d.group_ids) for p, d in data.items()},
        **{p: results[best_label][p] for p in ("validation", *PARTS) if p in results[best_label]},
        "models": results,
        "baselines": {b: results[b] for b in baselines},
        "averaging": METRICS_DOC,
        "machine": platform.processor() or platform.machine(),
        "seconds": round(time.time() - t0, 1),
    }
    out = Path(out_dir)
    shas = best.save(out)
    metrics["files_sha256"] = shas
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_jsonable) + "\n")
    log(comparison_table(metrics))
    return metrics


def blend_weights(scores: list[np.ndarray], data: RankingData) -> list[float]:
    """One weight per model: 1 / the median over workloads of the spread (std) of its
    scores within a workload. Each model then moves a blended score about equally within
    a workload, whatever its scale. Measured on workloads none of them trained on
    (validation), since on training workloads an overfit model's spread is not the one it
    will show on new ones."""
    weights = []
    for s in scores:
        s = np.asarray(s, dtype=np.float64)
        spreads = [s[data.groups == g].std() for g in range(len(data.group_ids))]
        spread = float(np.median([x for x in spreads if x > 0] or [1.0]))
        weights.append(1.0 / spread)
    return weights


def _blend(predictor: Predictor, ms_xgb, validation: RankingData, label: str) -> Predictor:
    weights = blend_weights(
        [predictor.score(validation.features), ms_xgb.score(validation.features)], validation
    )
    return blend_with_xgboost(
        predictor,
        ms_xgb.model.booster,
        (weights[0], weights[1]),
        note=f"{label} blended with MetaSchedule's XGBModel trained on the same data",
    )


def run_evaluation(
    predictor_dir: str | Path,
    dataset_dir: str | Path,
    *,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    log=print,
    until=None,
    workloads: dict[str, list[str]] | None = None,
    parts: tuple[str, ...] = PARTS,
    screen_dir: str | Path | None = None,
    refine_fraction: float = REFINE_FRACTION,
    min_refine: int = MIN_REFINE,
) -> dict:
    """Recompute a predictor's metrics on the test and held-out parts of a dataset
    (``until``: only records measured up to then, e.g. its training snapshot;
    ``workloads``: per part, exactly these workloads, e.g. its metrics' ``data_workloads``;
    ``parts``: others, e.g. ``("all",)`` for another target's dataset).

    ``screen_dir``: a trace-token predictor screening for this one, as ``screen=`` does in
    tuning (:func:`tunezoo.screening.screened_scores`): the metrics of the
    cascade, with ``refine_fraction`` of each workload's candidates refined.
    """
    predictor = Predictor.load(predictor_dir)

    def load(version: str) -> dict[str, RankingData]:
        data = load_parts(
            dataset_dir,
            parts,
            workers=workers,
            cache_dir=cache_dir,
            log=log,
            until=until,
            feature_version=version,
        )
        if workloads is not None:
            data = {p: only_workloads(d, workloads.get(p, []), part=p) for p, d in data.items()}
        return data

    data = load(predictor.feature_version)
    if screen_dir is None:
        return {p: score_metrics(predictor.score(d.features), d) for p, d in data.items() if len(d)}
    screen = Predictor.load(screen_dir)
    if screen.feature_version != TRACE.version or predictor.feature_version == TRACE.version:
        raise ValueError(
            f"--screen {screen_dir} must read trace tokens ({TRACE.version}; it reads "
            f"{screen.feature_version}) and {predictor_dir} per-store features (it reads "
            f"{predictor.feature_version})"
        )
    screen_data = load(screen.feature_version)
    out = {}
    for part, d in data.items():
        s = screen_data[part]
        if s.group_ids != d.group_ids or not np.array_equal(s.latencies, d.latencies):
            raise ValueError(
                f"{part}: the trace-token and per-store rows of {dataset_dir} differ (groups "
                f"{len(s.group_ids)} vs {len(d.group_ids)}, candidates {len(s)} vs {len(d)}); "
                "clear the feature cache (~/.cache/tunezoo) and rerun"
            )
        if len(d):
            scores = screened_scores(
                screen.score(s.features),
                predictor.score(d.features),
                d.groups,
                refine_fraction=refine_fraction,
                min_refine=min_refine,
            )
            out[part] = score_metrics(scores, d)
    return out


def only_workloads(data: RankingData, wanted: list[str], *, part: str) -> RankingData:
    """The groups of ``data`` listed in ``wanted``; every one must be there, because a
    snapshot that lost a workload cannot reproduce the metrics computed on it."""
    index = {wid: g for g, wid in enumerate(data.group_ids)}
    missing = [w for w in wanted if w not in index]
    if missing:
        raise ValueError(
            f"{part}: {len(missing)} workload(s) of the recorded snapshot are not in the "
            f"dataset (first: {missing[0]}); the dataset lost records since the predictor "
            "was trained; restore them (git checkout data/) or evaluate without --compare"
        )
    return data.subset_groups([index[w] for w in wanted])


def data_until(dataset_dir: str | Path):
    """When the newest record of a dataset was measured (the snapshot's cut-off)."""
    import pyarrow.compute as pc  # noqa: PLC0415

    from tunezoo.records import read_records  # noqa: PLC0415

    return pc.max(read_records(dataset_dir, columns=["created_at"])["created_at"]).as_py()


def comparison_table(metrics: dict) -> str:
    """A markdown table: every model and baseline on every evaluation part."""
    cols = ["top1_score", "top5_score", "avg_peak_score@5", "pairwise_accuracy", "kendall_tau"]
    lines = ["| model | part | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name, res in metrics["models"].items():
        rows = [(name, res)] + [
            (f"{name} member (seed {m['seed']})", m) for m in res.get("members", [])
        ]
        for label, values in rows:
            for part in ("validation", *PARTS):
                if part in values:
                    vals = " | ".join(f"{values[part][c]:.4f}" for c in cols)
                    lines.append(f"| {label} | {part} | {vals} |")
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj))
