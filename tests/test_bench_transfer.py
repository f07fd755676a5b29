"""bench_transfer: a predictor scored on another dataset beside random scores."""

from __future__ import annotations

import json

import pytest
import torch
from script_loader import loaded_script

from tunezoo.features import PER_STORE_DIM
from tunezoo.models import build_model
from tunezoo.predictor import Predictor


def _save_predictor(path):
    torch.manual_seed(0)
    predictor = Predictor(
        build_model("segsum-mlp", {"hidden": 16}),
        torch.zeros(PER_STORE_DIM),
        torch.ones(PER_STORE_DIM),
        "cuda-a100",  # trained "for" another target: transfer is the point
    )
    predictor.save(path)


def test_transfer_report_scores_every_workload_and_a_random_floor(imported_dataset, tmp_path):
    _save_predictor(tmp_path / "p")
    out = tmp_path / "transfer"
    with loaded_script("bench_transfer") as bench:
        args = [str(imported_dataset), "--predictor", str(tmp_path / "p")]
        assert bench.main([*args, "--random-draws", "50", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    (row,) = report["datasets"]
    assert report["trained_for"] == "cuda-a100" and row["target_keys"] == ["llvm-znver4"]
    assert row["workloads"] >= 1 and row["candidates"] >= 8
    assert 0 < row["predictor"]["top1_score"] <= 1
    # chance: 0.15 is about 9 standard errors of a mean of 50 draws on 11 candidates
    assert abs(row["random"]["pairwise_accuracy"] - 0.5) < 0.15
    assert "| llvm-znver4 |" in out.with_suffix(".md").read_text()


def test_transfer_parts_split_the_workloads_between_them(imported_dataset, tmp_path):
    """The four parts are disjoint and cover the dataset: their rows add up to the "all"
    row, an empty part gets a row without metrics, and an unknown part is refused."""
    _save_predictor(tmp_path / "p")
    out = tmp_path / "transfer"
    args = [str(imported_dataset), "--predictor", str(tmp_path / "p"), "--random-draws", "2"]
    with loaded_script("bench_transfer") as bench:
        parts = "all,train,validation,test,heldout"
        assert bench.main([*args, "--parts", parts, "--out", str(out)]) == 0
        with pytest.raises(SystemExit):
            bench.main([*args, "--parts", "train,tset", "--out", str(out)])
    report = json.loads(out.with_suffix(".json").read_text())
    rows = {row["part"]: row for row in report["datasets"]}
    assert list(rows) == parts.split(",")
    split = [rows[p] for p in ("train", "validation", "test", "heldout")]
    assert sum(r["workloads"] for r in split) == rows["all"]["workloads"] >= 1
    assert sum(r["candidates"] for r in split) == rows["all"]["candidates"]
    text = out.with_suffix(".md").read_text()
    for row in split:
        assert ("predictor" in row) == (row["workloads"] > 0)
        assert f"| llvm-znver4 | {row['part']} | {row['workloads']} |" in text
