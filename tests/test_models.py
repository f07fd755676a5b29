"""Model zoo registry and MetaSchedule task extraction.

Extraction runs on small inputs (ResNet-18 at 64x64, BERT-Tiny at 32 tokens, via specs made
with ``dataclasses.replace``) so the file stays well under a minute; the full-size zoo run
is a slow manual check (see dataset_builders/tasks.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from tvm.target import Target

from dataset_builders import tasks as tasks_mod
from dataset_builders.tasks import (
    Task,
    canonical_workload_hash,
    cpu_target,
    extract_tasks,
    extract_zoo,
    tvm_testing_workload_ids,
    workload_id,
)
from dataset_builders.zoo import (
    MODELS,
    InputSpec,
    ModelSpec,
    UnknownModelError,
    get_model,
    list_models,
)

# Zoo specs at small input sizes; names are distinct so merged sources stay readable.
RESNET = dataclasses.replace(
    MODELS["resnet18"], base="resnet18_64px", inputs=(InputSpec((1, 3, 64, 64)),)
)
RESNET_AGAIN = dataclasses.replace(RESNET, base="resnet18_64px_again")
BERT = dataclasses.replace(
    MODELS["bert_tiny"], base="bert_tiny_s32", inputs=(InputSpec((1, 32), "int64"),)
)


@pytest.fixture(scope="module")
def target() -> Target:
    return cpu_target()


@pytest.fixture(scope="module")
def resnet_tasks(target: Target) -> list[Task]:
    return extract_tasks(RESNET, target)


@pytest.fixture(scope="module")
def bert_tasks(target: Target) -> list[Task]:
    return extract_tasks(BERT, target)


def test_registry_names_and_families() -> None:
    assert len({spec.base for spec in MODELS.values()}) >= 14
    for name, spec in MODELS.items():
        assert spec.name == name
        assert spec.family in ("cnn", "transformer", "mlp", "rnn")
        assert re.fullmatch(r"[a-z0-9_]+(-b\d+)?", name), name
        assert all(inp.shape[0] == spec.batch for inp in spec.inputs), name
    for base in ("resnet18", "mobilenet_v2", "bert_tiny", "gpt2_block"):
        assert get_model(base).batch == 1
        assert get_model(f"{base}-b8").batch == 8
    assert list_models() == sorted(MODELS)


def test_unknown_model_suggests_closest() -> None:
    with pytest.raises(UnknownModelError) as err:
        get_model("resnet81")
    message = str(err.value)
    assert "Unknown model 'resnet81'" in message
    assert "Did you mean 'resnet18'?" in message
    assert "mobilenet_v2" in message  # lists what exists


def test_build_is_seeded() -> None:
    spec = get_model("mlp_mixer_s")
    a, b = spec.build(seed=3), spec.build(seed=3)
    assert all((p == q).all() for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert spec.example_inputs()[0].shape == (1, 3, 224, 224)


@pytest.mark.parametrize("fixture", ["resnet_tasks", "bert_tasks"])
def test_extracted_tasks_are_well_formed(fixture: str, request: pytest.FixtureRequest) -> None:
    tasks: list[Task] = request.getfixturevalue(fixture)
    assert len(tasks) > 5
    for task in tasks:
        assert re.fullmatch(r"\d+", task.workload_id)
        assert task.workload_id == workload_id(task.mod)
        assert task.weight > 0 and task.flops >= 0
        assert task.sources == ((task.model, task.weight),)
    assert len({t.workload_id for t in tasks}) == len(tasks)  # MetaSchedule dedupes already
    assert any(t.flops > 1e6 for t in tasks)


def test_resnet_has_expected_conv_tasks(resnet_tasks: list[Task]) -> None:
    conv = [t for t in resnet_tasks if "conv2d" in t.name]
    # 20 convolutions; fused epilogues (BN only, +ReLU, +residual+ReLU) keep most apart
    assert 10 <= len(conv) <= 20
    assert sum(t.weight for t in conv) == 20  # 20 convolutions in ResNet-18


def test_bert_has_attention_matmuls(bert_tasks: list[Task]) -> None:
    names = " ".join(t.name for t in bert_tasks)
    assert "matmul" in names and "softmax" in names
    assert "take" in names  # embedding lookups


def test_workload_id_matches_json_database(resnet_tasks: list[Task], tmp_path: Path) -> None:
    from tvm.s_tir import meta_schedule as ms

    db = ms.database.JSONDatabase(work_dir=str(tmp_path))
    for task in resnet_tasks[:5]:
        db.commit_workload(task.mod)
    lines = (tmp_path / "database_workload.json").read_text().splitlines()
    assert [json.loads(line)[0] for line in lines] == [t.workload_id for t in resnet_tasks[:5]]


@pytest.fixture()
def cached_extraction(
    monkeypatch: pytest.MonkeyPatch, resnet_tasks: list[Task], bert_tasks: list[Task]
) -> None:
    """Serve extract_zoo's per-model extraction from the fixtures (extraction is tested above)."""

    def as_model(tasks: list[Task], name: str) -> list[Task]:
        return [dataclasses.replace(t, model=name, sources=((name, t.weight),)) for t in tasks]

    cache = {
        RESNET.name: resnet_tasks,
        BERT.name: bert_tasks,
        RESNET_AGAIN.name: as_model(resnet_tasks, RESNET_AGAIN.name),
    }
    monkeypatch.setattr(tasks_mod, "extract_tasks", lambda spec, _target: cache[spec.name])


@pytest.mark.usefixtures("cached_extraction")
def test_extract_zoo_merges_sources(
    target: Target, resnet_tasks: list[Task], bert_tasks: list[Task]
) -> None:
    zoo = extract_zoo([RESNET, BERT, RESNET_AGAIN], target)
    ids = [t.workload_id for t in zoo]
    assert len(ids) == len(set(ids))
    canon = tasks_mod.tvm_testing_canonical_hashes()
    kept = [
        t.workload_id
        for t in resnet_tasks + bert_tasks
        if t.workload_id not in tvm_testing_workload_ids()
        and canonical_workload_hash(t.mod) not in canon
    ]
    assert ids == list(dict.fromkeys(kept))  # first-seen order, nothing else dropped
    by_id = {t.workload_id: t for t in zoo}
    for t in resnet_tasks:
        merged = by_id[t.workload_id]
        assert merged.sources[0] == (RESNET.name, t.weight)
        assert merged.sources[-1] == (RESNET_AGAIN.name, t.weight)
        assert merged.weight == sum(w for _, w in merged.sources) >= 2 * t.weight
    for t in bert_tasks:
        assert (BERT.name, t.weight) in by_id[t.workload_id].sources


@pytest.mark.usefixtures("cached_extraction")
def test_tvm_testing_workloads_are_excluded(
    monkeypatch: pytest.MonkeyPatch, target: Target, resnet_tasks: list[Task]
) -> None:
    assert len(tvm_testing_workload_ids()) >= 40  # te_workload.CONFIGS has 53 shapes
    victim = resnet_tasks[0]
    monkeypatch.setattr(tasks_mod, "tvm_testing_workload_ids", lambda: {victim.workload_id})
    zoo = extract_zoo([RESNET], target)
    assert [t.workload_id for t in zoo] == [t.workload_id for t in resnet_tasks[1:]]


class BatchMatmul(nn.Module):
    """``torch.bmm`` at (1, 128, 128)^2: TVM's own test workload ``GMM[0]`` in Relax's spelling."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, b)


def test_tvm_testing_workload_in_relax_spelling_is_excluded(target: Target) -> None:
    spec = ModelSpec(
        "gmm", "mlp", BatchMatmul, (InputSpec((1, 128, 128)), InputSpec((1, 128, 128)))
    )
    (task,) = extract_tasks(spec, target)
    # int64 indices and an op_pattern attribute: not the id tune_tir would write ...
    assert task.workload_id not in tvm_testing_workload_ids()
    # ... but the same computation, which extract_zoo recognises and drops.
    assert canonical_workload_hash(task.mod) in tasks_mod.tvm_testing_canonical_hashes()
    assert extract_zoo([spec], target) == []


def test_cuda_target_extracts() -> None:
    tasks = extract_tasks(BERT, Target("nvidia/nvidia-a100"))
    assert len(tasks) > 5
    assert all(t.weight > 0 for t in tasks)
