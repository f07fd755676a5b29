"""Cards: metadata the Hub reads back, text rendered from cards/ templates."""

from __future__ import annotations

import pytest
from huggingface_hub import DatasetCard, ModelCard

from tunezoo import cards
from tunezoo.hub import render_card
from tunezoo.schema import RECORD_SCHEMA, WORKLOAD_SCHEMA

METRICS = {
    "test": {"top1_score": 0.91, "top5_score": 0.97, "pairwise_accuracy": 0.83, "kendall_tau": 0.6},
    "baselines": {"xgb": {"top1_score": 0.88, "kendall_tau": 0.55}, "random": {"top1_score": 0.3}},
}
TRAINING = {"repo": "tunezoo/tvm-tuning-records", "config": "cuda-a100", "revision": "f" * 40}


def model_spec(**changes) -> cards.CardSpec:
    args = {
        "name": "segsum-mlp.cuda-a100",
        "repo_id": "tunezoo/segsum-mlp.cuda-a100",
        "kind": "predictor",
        "target": "cuda-a100",
        "family": None,
        "config": {"architecture": "segsum-mlp"},
        "metrics": METRICS,
        "feature_version": 3,
        "training_data": TRAINING,
    }
    return cards.model_card_spec(**{**args, **changes})


def test_model_card_metadata_and_text():
    text = render_card(model_spec())
    card = ModelCard(text)  # parsed back the way the Hub does
    assert card.data.library_name == "tunezoo"
    assert "target:cuda-a100" in card.data.tags and card.data.datasets == [TRAINING["repo"]]
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == set(METRICS["test"])
    assert results["top1_score"].metric_value == 0.91
    assert results["top1_score"].dataset_config == "cuda-a100"
    assert results["top1_score"].dataset_split == "test"
    assert results["top1_score"].dataset_revision == TRAINING["revision"]
    assert "| xgb | 0.8800 | - | - | - | 0.5500 |" in text  # baselines stay out of eval_results
    assert TRAINING["revision"] in text and "Feature version: `3`" in text
    assert "Intended target: `cuda-a100`" in text


def test_model_card_shows_held_out_models_when_measured():
    assert "Held-out models" not in render_card(model_spec())  # METRICS has no held-out part
    metrics = {
        "test": METRICS["test"],
        "heldout": {"top1_score": 0.79, "top5_score": 0.95},
        "baselines": {"xgb": {"test": {"top1_score": 0.84}, "heldout": {"top1_score": 0.75}}},
    }
    text = render_card(model_spec(metrics=metrics))
    held = text[text.index("Held-out models") :]
    assert held.index("| **segsum-mlp.cuda-a100** | 0.7900 | 0.9500 |") < held.index(
        "| xgb | 0.7500 | - |"
    )
    # the Hub's eval results stay the test split's
    assert {r.dataset_split for r in ModelCard(text).data.eval_results} == {"test"}


def test_meta_init_card_names_the_family():
    spec = model_spec(
        name="segsum-mlp.meta-cuda",
        repo_id="tunezoo/segsum-mlp.meta-cuda",
        kind="meta-init",
        target=None,
        family="cuda",
        metrics={},
        training_data=None,
    )
    text = render_card(spec)
    card = ModelCard(text)
    assert card.data.eval_results is None and "family:cuda" in card.data.tags
    assert "Intended family: `cuda`" in text and "No evaluation was recorded" in text


def test_card_of_a_locally_trained_meta_init_says_how_it_was_trained_and_evaluated():
    counts = {"train": {"workloads": 29, "candidates": 3609}}
    spec = model_spec(
        name="segsum-mlp.meta-llvm-x86",
        repo_id="tunezoo/segsum-mlp.meta-llvm-x86",
        kind="meta-init",
        target=None,
        family="llvm-x86",
        training_data={"dataset": "data/llvm-znver4", "counts": counts, "data_until": "T15"},
        evaluation="few-shot: 16 random candidates of each workload as support",
    )
    text = render_card(spec)
    assert "Trained on the tunezoo dataset `data/llvm-znver4`, records measured up to T15" in text
    assert "(train: 29 workloads, 3609 candidates)" in text
    assert "Protocol: few-shot: 16 random candidates" in text
    assert 'load_predictor("segsum-mlp.meta-llvm-x86", mode="meta-adaptive")' in text


def test_training_data_of_a_meta_init_started_from_a_predictor_is_on_its_card():
    raw = {
        "dataset": "data/llvm-znver4",
        "data_counts": {"train": {"workloads": 77, "candidates": 9658}},
        "data_until": "T20",
        "started_from": {"predictor": "artifacts/p", "weights_sha256": "ab" * 32},
    }
    training_data = cards.training_data_from_metrics(raw)
    meta = {"kind": "meta-init", "target": None, "family": "llvm-x86"}
    text = render_card(model_spec(**meta, training_data=training_data))
    assert "started from the pretrained predictor `artifacts/p`" in text
    assert "ab" * 32 in text
    plain = cards.training_data_from_metrics({**raw, "started_from": "random"})
    text = render_card(model_spec(**meta, training_data=plain))
    assert "pretrained predictor" not in text and "records measured up to T20" in text
    assert cards.training_data_from_metrics({"arch": "segsum-mlp"}) is None


def test_bad_metrics_are_refused():
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        model_spec(metrics={"test": {"acc": 0.5}})


def test_dataset_configs_list_only_present_splits():
    files = [
        "README.md",
        "cuda-a100/info.json",
        "cuda-a100/records/train-aa.parquet",
        "cuda-a100/records/test-aa.parquet",
        "cuda-a100/workloads/aa.parquet",
        "llvm-znver4/records/validation-bb.parquet",
    ]
    assert cards.dataset_configs(files) == [
        {
            "config_name": "cuda-a100",
            "data_files": [
                {"split": "train", "path": "cuda-a100/records/train-*.parquet"},
                {"split": "test", "path": "cuda-a100/records/test-*.parquet"},
            ],
        },
        {
            "config_name": "llvm-znver4",
            "data_files": [
                {"split": "validation", "path": "llvm-znver4/records/validation-*.parquet"}
            ],
        },
    ]


def test_dataset_card_has_configs_counts_and_schema():
    info = {
        "records": 1234,
        "workloads": 7,
        "splits": {"train": 1000, "validation": 100, "test": 134},
        "failed": {"build": 3, "run": 1},
        "models": {"resnet18": 900, "vit_tiny": 334},
    }
    targets = {
        "cuda-a100": {"info": info, "collection": {"runner": "rpc", "trials_per_task": 256}},
        "llvm-znver4": {"info": {**info, "records": 10}},
    }
    files = [f"{t}/records/{s}-x.parquet" for t in targets for s in ("train", "test")]
    spec = cards.dataset_card_spec(
        repo_id="tunezoo/tvm-tuning-records", files=files, targets=targets
    )
    text = render_card(spec)
    card = DatasetCard(text)
    assert [c["config_name"] for c in card.data.configs] == ["cuda-a100", "llvm-znver4"]
    assert card.data.size_categories == ["1K<n<10K"]
    assert "| `cuda-a100` | 1234 | 7 | 1000 | 100 | 134 | 4 | resnet18, vit_tiny |" in text
    assert "runner: `rpc`; trials_per_task: `256`" in text
    assert "`llvm-znver4`: not recorded" in text
    for field in (*RECORD_SCHEMA, *WORKLOAD_SCHEMA):
        assert f"| `{field.name}` | `{field.type}` |" in text


def test_model_card_says_what_a_blend_is_made_of():
    config = {
        "arch": "score-blend",
        "arch_config": {
            "members": [
                {"arch": "seed-ensemble", "config": {"member_arch": "segsum-mlp", "members": 5}},
                {"arch": "packsum-trees", "config": {"trees": 130}},
            ],
            "weights": [0.54, 5.86],
        },
    }
    text = render_card(model_spec(name="score-blend.cuda-a100", config=config))
    assert (
        "Architecture: `score-blend` (the sum of 0.54 x the mean of 5 `segsum-mlp` models "
        "trained with different seeds and 5.86 x 130 XGBoost trees" in text
    )
    assert "Architecture: `segsum-mlp`\n" in render_card(model_spec())  # nothing to explain


def test_a_trace_predictors_card_says_what_it_reads_and_how_to_screen_with_it():
    from tunezoo.feature_kinds import PER_STORE, TRACE  # noqa: PLC0415

    trace = render_card(
        model_spec(name="seed-ensemble-trace.cuda-a100", feature_version=TRACE.version)
    )
    assert 'load_predictor("cuda-a100", screen=True)' in trace
    assert 'load_predictor("seed-ensemble-trace.cuda-a100")' in trace
    assert TRACE.description in trace
    per_store = render_card(model_spec(feature_version=PER_STORE.version))
    assert "screen=True" not in per_store and PER_STORE.description in per_store
    unknown = render_card(model_spec())  # a version this tunezoo does not know: no words
    assert "Feature version: `3` (the predictor refuses features of another version)\n" in unknown
