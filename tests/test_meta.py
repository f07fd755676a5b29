"""Meta-learning: the inner loop really adapts, the artifact round-trips, adaptation helps.

The synthetic tasks have a known answer (latency is a fixed function of the features), so
a few SGD steps on the support must lower the query loss. The real-data test uses the
measured llvm-znver4 records committed in ``data/``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import torch

from tunezoo.features import PER_STORE_DIM, FeatureSet
from tunezoo.meta import (
    META_KEY,
    MetaConfig,
    NotAMetaInitError,
    TaskPool,
    adapt,
    detached_params,
    few_shot_eval,
    inner_loop,
    load_init,
    meta_train,
    selection_score,
    shots_loss,
    within_labels,
)
from tunezoo.models import build_model
from tunezoo.predictor import Predictor, PredictorFormatError, fit_normalizer
from tunezoo.training import RankingData, pairwise_loss

DATA = Path(__file__).resolve().parents[1] / "data" / "llvm-znver4"
SMALL = {"hidden": 32, "layers": 2}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic_data(n_workloads: int = 4, per: int = 48, seed: int = 0) -> RankingData:
    """Workloads whose store features live near a 3-d subspace and whose latency is
    exp(a linear function of the summed latent), with a per-workload twist: few shots are
    enough to learn the ranking, and a task differs from the others a little."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(3, PER_STORE_DIM))
    direction = rng.normal(size=3)
    mats, wids, lats, groups = [], [], [], []
    for g in range(n_workloads):
        twist = direction + 0.3 * rng.normal(size=3)
        for _ in range(per):
            z = rng.normal(size=(int(rng.integers(1, 4)), 3))
            noise = 0.01 * rng.normal(size=(len(z), PER_STORE_DIM))
            mats.append((z @ basis + noise).astype(np.float32))
            lats.append(1e-3 * np.exp(z.sum(axis=0) @ twist))
            wids.append(f"w{g}")
            groups.append(g)
    fs = FeatureSet.from_list([f"r{i}" for i in range(len(mats))], wids, mats)
    lat = np.array(lats)
    group_arr = np.array(groups, dtype=np.int64)
    labels = np.concatenate([within_labels(lat[group_arr == g]) for g in range(n_workloads)])
    return RankingData(
        fs,
        lat,
        labels,
        group_arr,
        [f"w{g}" for g in range(n_workloads)],
        np.ones(n_workloads),
    )


def _safetensors_parts(folder: Path) -> tuple[dict, bytes]:
    """(header, tensor bytes) of a model.safetensors file.

    The header is compared as parsed JSON: safetensors writes ``__metadata__`` (a Rust
    hash map) in an order that varies between calls, so the raw files of two saves of one
    predictor can differ in those bytes alone.
    """
    raw = (folder / "model.safetensors").read_bytes()
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + size]), raw[8 + size :]


def tiny_meta_config(**changes) -> MetaConfig:
    """A meta-training run of a few seconds on the synthetic data."""
    base = {
        "arch_config": SMALL,
        "loss": "pairwise",
        "inner_lr": 0.05,
        "inner_steps": 2,
        "support_k": 8,
        "query_size": 16,
        "eval_every": 1,
        "eval_draws": 1,
    }
    return MetaConfig(**{**base, **changes})


def small_predictor(data: RankingData, seed: int = 0) -> Predictor:
    torch.manual_seed(seed)
    mean, std = fit_normalizer(data.features.values)
    return Predictor(build_model("segsum-mlp", SMALL), mean, std, "llvm-znver4")


def test_inner_loop_changes_the_query_loss_through_the_adapted_params():
    data = synthetic_data()
    predictor = small_predictor(data)
    model = predictor.model
    pool = TaskPool(data, predictor)
    support, query = pool.split(0, 16, np.random.default_rng(0))
    s_shots, q_shots = pool.shots([support]), pool.shots([query])
    params = detached_params(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    fast = inner_loop(model, params, s_shots, lr=0.2, steps=10, loss="pairwise")

    with torch.no_grad():
        initial = float(shots_loss(model, params, q_shots, "pairwise"))
        adapted = float(shots_loss(model, fast, q_shots, "pairwise"))
        # the public-code pitfall: scoring the query with the module after the inner loop
        # (its own parameters were never touched) gives back the un-adapted loss
        scores = model(q_shots.values, q_shots.segment_ids, q_shots.n)
        padded = scores.new_zeros(q_shots.mask.shape).masked_scatter(q_shots.mask, scores)
        module_loss = float(pairwise_loss(padded, q_shots.labels, q_shots.mask))
    assert module_loss == pytest.approx(initial, abs=1e-6)
    assert adapted != pytest.approx(initial, abs=1e-4)
    assert adapted < initial  # a learnable task: the support generalises to the query
    # the inner loop is functional: the module and the starting dict are untouched
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    for k, v in params.items():
        assert torch.equal(v, before[k])


def test_second_order_inner_loop_differentiates_to_the_initialisation():
    data = synthetic_data(n_workloads=1)
    predictor = small_predictor(data)
    model = predictor.model
    pool = TaskPool(data, predictor)
    support, query = pool.split(0, 12, np.random.default_rng(1))
    theta = dict(model.named_parameters())
    fast = inner_loop(
        model, theta, pool.shots([support]), lr=0.05, steps=2, loss="pairwise", first_order=False
    )
    q = shots_loss(model, fast, pool.shots([query]), "pairwise")
    grads = torch.autograd.grad(q, list(theta.values()))
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("algorithm", ["fomaml", "reptile", "maml"])
def test_meta_training_moves_the_init_and_the_artifact_round_trips(algorithm, tmp_path):
    train, validation = synthetic_data(4, seed=0), synthetic_data(2, seed=1)
    config = tiny_meta_config(algorithm=algorithm, meta_steps=4, eval_every=2)
    torch.manual_seed(0)
    untrained = build_model("segsum-mlp", SMALL).state_dict()
    init, info = meta_train(train, validation, config, target_key="llvm-znver4", log=lambda _: 0)
    assert init.metadata[META_KEY] == {
        "algorithm": algorithm,
        "inner_lr": 0.05,
        "inner_steps": 2,
        "support_k": 8,
        "loss": "pairwise",
    }
    assert len(info["history"]) == 3  # step 0, 2, 4
    if info["best_step"] > 0:
        assert any(not torch.equal(v, untrained[k]) for k, v in init.model.state_dict().items())

    first, second = tmp_path / "a", tmp_path / "b"
    init.save(first)
    loaded = load_init(first)
    assert loaded.metadata == json.loads(json.dumps(init.metadata))
    loaded.save(second)
    assert (first / "config.json").read_bytes() == (second / "config.json").read_bytes()
    # bit for bit: the same header entries and the same tensor bytes
    assert _safetensors_parts(first) == _safetensors_parts(second)
    assert load_init(f"local-dir:{first}").metadata[META_KEY]["algorithm"] == algorithm


def test_meta_training_can_start_from_a_pretrained_predictor():
    train, validation = synthetic_data(4, seed=0), synthetic_data(2, seed=1)
    pretrained = small_predictor(train, seed=3)
    before = {k: v.clone() for k, v in pretrained.model.state_dict().items()}
    config = tiny_meta_config(meta_steps=0)  # no outer step: the init is the predictor
    init, info = meta_train(
        train, validation, config, target_key="llvm-znver4", start_from=pretrained, log=lambda _: 0
    )
    assert info["best_step"] == 0 and init.metadata["started_from"] == "pretrained predictor"
    for k, v in init.model.state_dict().items():
        assert torch.equal(v, before[k])
    assert torch.equal(init.mean, pretrained.mean) and torch.equal(init.std, pretrained.std)
    meta_train(
        train,
        validation,
        dataclasses.replace(config, meta_steps=2),
        target_key="llvm-znver4",
        start_from=pretrained,
        log=lambda _: 0,
    )
    for k, v in pretrained.model.state_dict().items():  # the predictor itself is untouched
        assert torch.equal(v, before[k])
    with pytest.raises(ValueError, match="store-attention"):
        meta_train(
            train,
            validation,
            dataclasses.replace(config, arch="store-attention"),
            target_key="llvm-znver4",
            start_from=pretrained,
        )


def test_load_init_refuses_a_plain_predictor_and_bare_paths(tmp_path, unpublished):
    data = synthetic_data(1)
    small_predictor(data).save(tmp_path / "plain")
    with pytest.raises(NotAMetaInitError, match="not a meta-initialisation"):
        load_init(tmp_path / "plain")
    with pytest.raises(KeyError, match="local-dir:"):
        load_init(str(tmp_path / "plain"))
    empty = tmp_path / "catalog.json"  # nothing published (the session's catalog may hold one)
    empty.write_text('{"artifacts": [], "format": 1}')
    with pytest.raises(KeyError, match="scripts/train_meta.py"):
        load_init("llvm-znver4", artifacts_dir=tmp_path, catalog=empty)
    # a target key means <arch>.meta-<family>, looked up among the bundled artifacts
    init = small_predictor(data)
    init.metadata[META_KEY] = {"inner_lr": 0.05, "inner_steps": 3, "loss": "pairwise"}
    init.save(tmp_path / "segsum-mlp.meta-llvm-x86")
    for ref in ("llvm-znver4", "segsum-mlp.meta-llvm-x86"):
        assert load_init(ref, artifacts_dir=tmp_path).metadata[META_KEY]["inner_steps"] == 3
    # whatever its architecture: the family's bundled meta-init, first by name, or as asked
    init.metadata[META_KEY] = {**init.metadata[META_KEY], "inner_steps": 4}
    init.save(tmp_path / "score-blend.meta-llvm-x86")  # (a segsum-mlp saved under this name)
    assert load_init("llvm-znver4", artifacts_dir=tmp_path).metadata[META_KEY]["inner_steps"] == 4
    by_arch = load_init("llvm-znver4", artifacts_dir=tmp_path, arch="segsum-mlp")
    assert by_arch.metadata[META_KEY]["inner_steps"] == 3
    with pytest.raises(KeyError, match="store-attention.meta-llvm-x86"):
        load_init("llvm-znver4", artifacts_dir=tmp_path, catalog=empty, arch="store-attention")


def test_a_bundled_meta_init_is_checked_against_the_catalog_like_a_predictor(tmp_path):
    from tunezoo import catalog as cat  # noqa: PLC0415
    from tunezoo.loading import BundledArtifactError  # noqa: PLC0415
    from tunezoo.predictor import sha256_file  # noqa: PLC0415

    name = "segsum-mlp.meta-llvm-x86"
    init = small_predictor(synthetic_data(1))
    init.metadata[META_KEY] = {"inner_lr": 0.05, "inner_steps": 3, "loss": "pairwise"}
    folder = tmp_path / "artifacts" / name
    init.save(folder)
    files = {
        f.name: {"sha256": sha256_file(f), "size": f.stat().st_size}
        for f in sorted(folder.iterdir())
    }
    entry = {
        "name": name, "kind": "meta-init", "repo": f"tunezoo/{name}", "revision": "ab" * 20,
        "files": files, "family": "llvm-x86", "feature_version": init.feature_version,
    }  # fmt: skip
    catalog = cat.Catalog().with_artifact(cat.Artifact.from_dict(entry))
    path = catalog.save(tmp_path / "catalog.json")

    loaded = load_init("llvm-znver4", artifacts_dir=folder.parent, catalog=path)
    assert loaded.metadata["tunezoo_source"] == {
        "name": name, "path": str(folder), "source": "bundled", "revision": "ab" * 20,
    }  # fmt: skip
    with pytest.raises(ValueError, match="two revisions"):
        load_init(f"{name}@{'cd' * 20}", revision="ab" * 20, catalog=path)
    config = folder / "config.json"
    config.write_text(config.read_text() + " ")  # not the bytes the catalog pins
    with pytest.raises(BundledArtifactError, match="config.json"):
        load_init(name, artifacts_dir=folder.parent, catalog=path)


def test_a_diverged_adaptation_scores_nan_instead_of_crashing():
    data = synthetic_data()
    predictor = small_predictor(data)
    fine = few_shot_eval(predictor, data, k=8, draws=1, steps=3, lr=1e-3)
    assert np.isfinite(fine["top1_score"]["mean"])
    diverged = few_shot_eval(predictor, data, k=8, draws=1, steps=20, lr=1e12)
    assert np.isnan(diverged["top1_score"]["mean"]) and diverged.keys() == fine.keys()
    assert selection_score(diverged) < selection_score(fine)


def test_adapt_uses_the_saved_procedure_and_leaves_the_init_alone():
    data = synthetic_data(2)
    init = small_predictor(data)
    with pytest.raises(ValueError, match="steps= and lr="):
        adapt(init, data)
    init.metadata[META_KEY] = {"inner_lr": 0.05, "inner_steps": 3, "loss": "pairwise"}
    before = {k: v.clone() for k, v in init.model.state_dict().items()}
    adapted = adapt(init, data)
    assert adapted.metadata["adapted"]["steps"] == 3
    assert adapted.metadata["adapted"]["candidates"] == len(data)
    assert any(not torch.equal(v, before[k]) for k, v in adapted.model.state_dict().items())
    for k, v in init.model.state_dict().items():
        assert torch.equal(v, before[k])
    unchanged = adapt(init, data, steps=0)
    for k, v in unchanged.model.state_dict().items():
        assert torch.equal(v, before[k])


def _real_workloads(min_records: int = 100, n: int = 3) -> list[str]:
    """The first ``n`` workload ids (sorted) with ``min_records`` records. The collector
    may be adding shards right now: only workloads whose workload row is already written
    count (it lands after the records)."""
    from tunezoo.records import read_records, read_workloads  # noqa: PLC0415

    if not DATA.exists():
        return []
    known = set(read_workloads(DATA, columns=["workload_id"]).column("workload_id").to_pylist())
    table = read_records(DATA, columns=["workload_id"])
    counts = pc.value_counts(table.column("workload_id")).to_pylist()
    big = sorted(c["values"] for c in counts if c["counts"] >= min_records and c["values"] in known)
    return big[:n]


def test_adaptation_on_real_records_improves_query_ranking(tmp_path):
    """Meta-train briefly on two real workloads, adapt on K=32 measured candidates of the
    third and rank the rest (each workload held out in turn): pairwise accuracy on the query
    candidates must beat the un-adapted initialisation."""
    from tunezoo.records import read_records, read_workloads  # noqa: PLC0415
    from tunezoo.training import ranking_data_from_tables  # noqa: PLC0415

    wids = _real_workloads()
    if len(wids) < 3:
        pytest.skip(
            f"{DATA} has {len(wids)} workload(s) with >= 100 records; this test needs 3 "
            "(collect more with scripts/collect_llvm_znver4.sh)"
        )
    records = read_records(DATA, filter=pc.field("workload_id").isin(wids))
    data = ranking_data_from_tables(
        records, read_workloads(DATA), cache_dir=tmp_path / "features", progress=False
    )
    assert sorted(data.group_ids) == sorted(wids)
    order = [data.group_ids.index(w) for w in wids]
    config = MetaConfig(
        algorithm="fomaml",
        arch_config={"hidden": 64},
        inner_lr=0.2,
        inner_steps=20,
        support_k=32,
        meta_steps=20,
        eval_every=20,
        eval_draws=1,
    )
    gains = []
    for held_out in range(3):
        rest = [g for i, g in enumerate(order) if i != held_out]
        train, held = data.subset_groups(rest), data.subset_groups([order[held_out]])
        init, _ = meta_train(train, train, config, target_key="llvm-znver4", log=lambda _: 0)
        kwargs = {"k": 32, "draws": 3, "lr": config.inner_lr, "seed": 0}
        before = few_shot_eval(init, held, steps=0, **kwargs)["pairwise_accuracy"]["mean"]
        after = few_shot_eval(init, held, steps=20, **kwargs)["pairwise_accuracy"]["mean"]
        gains.append(after - before)
    assert np.mean(gains) > 0, gains

    # the user-facing path: a records table in, an adapted predictor out
    held_records = records.filter(pc.field("workload_id") == wids[0]).slice(0, 32)
    adapted = adapt(
        init, held_records, workloads=read_workloads(DATA), cache_dir=tmp_path / "features"
    )
    assert adapted.metadata["adapted"]["candidates"] == 32
    assert adapted.metadata["adapted"]["steps"] == config.inner_steps


def test_few_shot_eval_refuses_a_predictor_of_other_features():
    """A trace-token predictor on per-store data would fail deep in torch with a size
    mismatch: refused first, naming both feature versions."""
    import dataclasses as dc  # noqa: PLC0415

    from tunezoo.feature_kinds import TRACE  # noqa: PLC0415

    data = synthetic_data(1)
    trace = dc.replace(small_predictor(data), feature_version=TRACE.version)
    with pytest.raises(PredictorFormatError, match=TRACE.version):
        few_shot_eval(trace, data, k=8, draws=1, steps=1, lr=1e-3)
