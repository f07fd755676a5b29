"""bench_fewshot across targets: starting points and the lr search from one dataset, the
few-shot table on every workload of another."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch
from script_loader import loaded_script

from tunezoo.features import PER_STORE_DIM
from tunezoo.meta import META_KEY
from tunezoo.models import build_model
from tunezoo.predictor import Predictor
from tunezoo.records import read_records, read_workloads, write_shards
from tunezoo.training import select_workloads

DATA = Path(__file__).resolve().parents[1] / "data" / "llvm-znver4"


def _source_dataset(out: Path, per_workload: int = 24) -> Path:
    """One workload of each part of the committed data, ``per_workload`` records each."""
    if not (DATA / "records").exists():
        pytest.skip(f"{DATA} has no records (the dataset is committed with the repository)")
    workloads, records = read_workloads(DATA), read_records(DATA)
    counts = pc.value_counts(records["workload_id"]).to_pylist()
    rich = {c["values"] for c in counts if c["counts"] >= 100}
    chosen = [
        sorted(w for w in select_workloads(workloads, part) if w in rich)[0]
        for part in ("train", "validation", "test")
    ]
    parts = [
        records.filter(pc.field("workload_id") == w).sort_by("record_id").slice(0, per_workload)
        for w in chosen
    ]
    write_shards(
        out,
        workloads.filter(pc.field("workload_id").isin(pa.array(chosen))),
        pa.concat_tables(parts),
    )
    return out


def test_cross_target_table_adapts_this_targets_starting_points_on_another(
    imported_dataset, tmp_path
):
    source = _source_dataset(tmp_path / "llvm-znver4")
    torch.manual_seed(0)
    mean, std = torch.zeros(PER_STORE_DIM), torch.ones(PER_STORE_DIM)
    Predictor(build_model("segsum-mlp", {"hidden": 16}), mean, std, "llvm-znver4").save(
        tmp_path / "predictor"
    )
    init = Predictor(build_model("segsum-mlp", {"hidden": 16}), mean, std, "llvm-znver4")
    init.metadata[META_KEY] = {
        "algorithm": "fomaml",
        "inner_lr": 0.01,
        "inner_steps": 2,
        "support_k": 4,
        "loss": "lambdarank",
    }
    init.save(tmp_path / "init")
    out = tmp_path / "xt"
    args = ["--dataset", str(source), "--eval-dataset", str(imported_dataset)]
    args += ["--predictor", str(tmp_path / "predictor"), "--init", str(tmp_path / "init")]
    args += ["--shots", "0,4", "--min-query", "4", "--draws", "2", "--val-draws", "1"]
    args += ["--steps", "2", "--lr-grid", "0.01,0.1", "--out", str(out)]
    with loaded_script("bench_fewshot") as bench:
        assert bench.main(args) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    other = imported_dataset.name
    assert report["eval_dataset"] == str(imported_dataset) and list(report["results"]) == [other]
    assert report["workloads"][other] and report["workloads"]["validation"]  # lr search: source
    by_method = report["results"][other]
    assert set(by_method) == {"scratch", "frozen", "finetune", "meta"}
    # K=0 adapts nothing: the fine-tuned predictor is the frozen one
    assert by_method["finetune"]["0"] == by_method["frozen"]["0"]
    assert 0 < by_method["meta"]["4"]["top1_score"]["mean"] <= 1
    assert f"| {other} | meta | 4 |" in out.with_suffix(".md").read_text()
    with loaded_script("bench_fewshot") as bench, pytest.raises(SystemExit, match="--predictor"):
        bench.main(["--dataset", str(source), "--eval-dataset", str(imported_dataset)])
