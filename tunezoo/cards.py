"""Model and dataset cards: data plus a Jinja template from ``cards/``.

This module decides *what* a card says: its YAML metadata (``ModelCardData`` /
``DatasetCardData`` fields, ``EvalResult`` entries, the dataset's ``configs:``) and the values
the template shows. :func:`tunezoo.hub.render_card` turns a :class:`CardSpec` into text with
``huggingface_hub``'s card classes, keeping ``tunezoo.hub`` the only module that imports it.

Cards are written by tunezoo from the catalog's data; nothing is ever read back from a
card's text to decide what to trust (pins live in the catalog).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from tunezoo.catalog import DATASET_REPO_NAME, validate_metrics
from tunezoo.schema import RECORD_SCHEMA, SCHEMA_VERSION, WORKLOAD_SCHEMA
from tunezoo.splits import SPLIT_PERCENT, SPLITS

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "cards"
MODEL_TEMPLATE = TEMPLATE_DIR / "model_card.md.j2"
DATASET_TEMPLATE = TEMPLATE_DIR / "dataset_card.md.j2"
LIBRARY_NAME = "tunezoo"
TASK_TYPE = "cost-model-ranking"
METRIC_LABELS = {
    "top1_score": "Top-1 score",
    "top5_score": "Top-5 score",
    "avg_peak_score@5": "Average peak score@5",
    "avg_peak_score@10": "Average peak score@10",
    "pairwise_accuracy": "Pairwise accuracy",
    "pairwise_accuracy_pooled": "Pairwise accuracy (pooled)",
    "kendall_tau": "Kendall tau",
    "n_workloads": "Workloads",
    "n_candidates": "Candidates",
}
# the metrics a card reports as evaluation results (counts are context, not results)
CARD_METRICS = ("top1_score", "top5_score", "avg_peak_score@5", "pairwise_accuracy", "kendall_tau")
_SPLIT_FILE = re.compile(r"^(?P<target>[a-z0-9-]+)/records/(?P<split>\w+)-[^/]+\.parquet$")


@dataclass(frozen=True)
class CardSpec:
    """Everything a card needs: metadata fields, eval results, template and its values."""

    kind: str  # "model" or "dataset"
    card_data: dict[str, Any]
    template_path: Path
    template_values: dict[str, Any] = field(default_factory=dict)
    eval_results: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------- model


def eval_results(
    metrics: dict[str, Any], *, dataset_repo: str, target: str | None, revision: str | None
) -> list[dict[str, Any]]:
    """``EvalResult`` fields for a predictor's test metrics (baselines stay in the text)."""
    problems = validate_metrics(metrics)
    if problems:
        raise ValueError("metrics JSON: " + "; ".join(problems))
    config = f" ({target})" if target else ""
    return [
        {
            "task_type": TASK_TYPE,
            "task_name": "Ranking candidate schedules by predicted throughput",
            "dataset_type": dataset_repo,
            "dataset_name": f"{DATASET_REPO_NAME}{config}",
            "dataset_config": target,
            "dataset_split": "test",
            "dataset_revision": revision,
            "metric_type": metric,
            "metric_name": METRIC_LABELS[metric],
            "metric_value": float(value),
        }
        for metric in CARD_METRICS
        if (value := (metrics.get("test") or {}).get(metric)) is not None
    ]


def training_data_from_metrics(raw_metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The card's training-data entry of an artifact trained by ``scripts/`` on a local
    dataset (its metrics.json names the dataset, snapshot and, for a meta-initialisation
    meta-trained from a pretrained predictor, that predictor)."""
    if not raw_metrics.get("dataset"):
        return None
    out = {
        "dataset": raw_metrics["dataset"],
        "counts": raw_metrics.get("data_counts"),
        "data_until": raw_metrics.get("data_until"),
    }
    if isinstance(raw_metrics.get("started_from"), dict):
        out["started_from"] = raw_metrics["started_from"]
    return out


def model_card_spec(
    *,
    name: str,
    repo_id: str,
    kind: str,
    target: str | None,
    family: str | None,
    config: dict[str, Any],
    metrics: dict[str, Any] | None,
    feature_version: int | str | None,
    training_data: dict[str, Any] | None,
    license: str = "apache-2.0",  # noqa: A002 - the card field's name
    evaluation: str | None = None,
) -> CardSpec:
    """The card of a predictor or meta-initialisation (``evaluation``: how the metrics were
    obtained, e.g. a meta-init's few-shot protocol)."""
    metrics = metrics or {}
    training_data = training_data or {}
    dataset_repo = training_data.get("repo") or f"{repo_id.split('/')[0]}/{DATASET_REPO_NAME}"
    results = eval_results(
        metrics, dataset_repo=dataset_repo, target=target, revision=training_data.get("revision")
    )
    tags = ["tvm", "metaschedule", "cost-model", "auto-tuning", kind]
    tags += [f"target:{target}"] if target else [f"family:{family}"]
    baselines = [
        {"name": b, **{m: (vals.get("test", vals)).get(m) for m in CARD_METRICS}}
        for b, vals in sorted((metrics.get("baselines") or {}).items())
    ]
    # whole models never trained on: the closer picture of a new user's network
    heldout_rows = [(f"**{name}**", metrics.get("heldout") or {})] + [
        (b, v.get("heldout") or {}) for b, v in sorted((metrics.get("baselines") or {}).items())
    ]
    heldout = [
        {"name": label, **{m: v.get(m) for m in CARD_METRICS}} for label, v in heldout_rows if v
    ]
    card_data = {
        "library_name": LIBRARY_NAME,
        "license": license,
        "tags": tags,
        "datasets": [dataset_repo],
        "model_name": name,
    }
    values = {
        "name": name,
        "repo_id": repo_id,
        "kind": kind,
        "target": target,
        "family": family,
        "feature_version": feature_version,
        "training_data": training_data,
        "evaluation": evaluation,
        "dataset_repo": dataset_repo,
        "test_metrics": [(METRIC_LABELS[r["metric_type"]], r["metric_value"]) for r in results],
        "metric_names": [METRIC_LABELS[m] for m in CARD_METRICS],
        "metric_keys": list(CARD_METRICS),
        "baselines": baselines,
        "heldout": heldout,
        "architecture": config.get("architecture") or config.get("arch") or name.split(".")[0],
        "composition": composition(config.get("arch"), config.get("arch_config") or {}),
        "features": _feature_description(feature_version),
    }
    return CardSpec("model", card_data, MODEL_TEMPLATE, values, results)


def _feature_description(feature_version: int | str | None) -> dict[str, str] | None:
    """The feature kind's short name and description (None for a version unknown here)."""
    from tunezoo.feature_kinds import UnknownFeatureVersionError, feature_kind  # noqa: PLC0415

    try:
        kind = feature_kind(str(feature_version))
    except UnknownFeatureVersionError:
        return None
    return {"name": kind.name, "description": kind.description}


def composition(arch: str | None, arch_config: dict[str, Any]) -> str:
    """What a composite model is made of, in words (empty for a single model)."""
    if arch == "seed-ensemble":
        return (
            f"the mean of {arch_config.get('members')} `{arch_config.get('member_arch')}` "
            "models trained with different seeds"
        )
    if arch == "packsum-trees":
        return f"{arch_config.get('trees')} XGBoost trees over per-store features, summed"
    if arch == "score-blend":
        parts = [
            f"{weight:.3g} x {composition(m.get('arch'), m.get('config') or {}) or m.get('arch')}"
            for m, weight in zip(
                arch_config.get("members", []), arch_config.get("weights", []), strict=False
            )
        ]
        return "the sum of " + " and ".join(parts)
    return ""


# -------------------------------------------------------------------------------- dataset


def dataset_configs(files: Iterable[str]) -> list[dict[str, Any]]:
    """The YAML ``configs:``: one per target, a ``data_files`` glob per split it has.

    Only splits with at least one shard are listed (``datasets`` refuses a glob that
    matches nothing), in train/validation/test order.
    """
    present: dict[str, set[str]] = {}
    for f in files:
        match = _SPLIT_FILE.match(f)
        if match and match["split"] in SPLITS:
            present.setdefault(match["target"], set()).add(match["split"])
    return [
        {
            "config_name": target,
            "data_files": [
                {"split": s, "path": f"{target}/records/{s}-*.parquet"}
                for s in SPLITS
                if s in splits
            ],
        }
        for target, splits in sorted(present.items())
    ]


def schema_rows(schema: pa.Schema) -> list[dict[str, Any]]:
    """One row per field for the card's schema table."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def dataset_card_spec(
    *,
    repo_id: str,
    files: Iterable[str],
    targets: dict[str, dict[str, Any]],
    license: str = "apache-2.0",  # noqa: A002 - the card field's name
) -> CardSpec:
    """The card of the records dataset: all targets, their counts and collection settings.

    ``targets`` maps a target key to its ``info.json`` (``tunezoo.records.info`` output
    under ``"info"`` and the collection settings under ``"collection"``).
    """
    files = sorted(files)
    configs = dataset_configs(files)
    total = sum(int((t.get("info") or {}).get("records", 0)) for t in targets.values())
    card_data = {
        "license": license,
        "pretty_name": "TVM MetaSchedule tuning records",
        "tags": ["tvm", "metaschedule", "auto-tuning", "tuning-records", "compilers"],
        "task_categories": ["tabular-regression"],
        "size_categories": [_size_category(total)],
        "configs": configs,
    }
    rows = []
    for key, data in sorted(targets.items()):
        info = data.get("info") or {}
        rows.append(
            {
                "target": key,
                "records": info.get("records", 0),
                "workloads": info.get("workloads", 0),
                "splits": info.get("splits", {}),
                "failed": sum((info.get("failed") or {}).values()),
                "models": sorted(info.get("models") or {}),
                "collection": data.get("collection") or {},
            }
        )
    values = {
        "repo_id": repo_id,
        "targets": rows,
        "total_records": total,
        "splits": list(SPLITS),
        "split_percent": SPLIT_PERCENT,
        "schema_version": SCHEMA_VERSION,
        "record_fields": schema_rows(RECORD_SCHEMA),
        "workload_fields": schema_rows(WORKLOAD_SCHEMA),
        "example_config": configs[0]["config_name"] if configs else "cuda-a100",
    }
    return CardSpec("dataset", card_data, DATASET_TEMPLATE, values)


def _size_category(n: int) -> str:
    """The Hub's size bucket for ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    for limit, label in ((1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def target_of(path: str) -> str | None:
    """The config folder a dataset file belongs to (None for top-level files)."""
    parts = PurePosixPath(path).parts
    return parts[0] if len(parts) > 1 else None


__all__ = [
    "CardSpec",
    "dataset_card_spec",
    "dataset_configs",
    "eval_results",
    "model_card_spec",
    "schema_rows",
]
