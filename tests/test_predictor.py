"""Features from real records, the model architectures, and the predictor artifact."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from safetensors.torch import load_file, save_file

from tunezoo.evaluate import evaluate_ranking
from tunezoo.features import (
    FEATURE_VERSION,
    PER_STORE_DIM,
    ExtractionStats,
    FeatureSet,
    extract_features,
)
from tunezoo.models import ARCHITECTURES, UnknownArchitectureError, build_model
from tunezoo.predictor import FeatureVersionError, Predictor, PredictorFormatError
from tunezoo.records import read_records, read_workloads
from tunezoo.training import RankingData, TrainConfig, ranking_data_from_tables, train_predictor

DATA = Path(__file__).resolve().parents[1] / "data" / "llvm-znver4"


def test_features_of_real_records_are_cached(imported_dataset, tmp_path):
    records, workloads = read_records(imported_dataset), read_workloads(imported_dataset)
    first = ExtractionStats()
    fs, mask = extract_features(records, workloads, cache_dir=tmp_path, stats=first, progress=False)
    assert mask.all() and len(fs) == records.num_rows
    assert fs.values.shape[1] == PER_STORE_DIM and fs.feature_version == FEATURE_VERSION
    assert (fs.stores_per_record() >= 1).all()
    assert np.isfinite(fs.values).all()
    assert first.computed == records.num_rows and first.from_cache == 0
    again = ExtractionStats()
    fs2, _ = extract_features(records, workloads, cache_dir=tmp_path, stats=again, progress=False)
    assert again.from_cache == records.num_rows and again.computed == 0
    assert np.array_equal(fs.values, fs2.values)
    # different schedules of one workload get different features
    matmul = [i for i, w in enumerate(fs.workload_ids) if w == fs.workload_ids[0]]
    assert len({fs.record(i).tobytes() for i in matmul}) > 1
    # the cache is versioned inside a caller's folder, and another width is never read
    (versioned,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert versioned.name == FEATURE_VERSION
    for file in versioned.glob("*.npz"):
        np.savez(file, record_ids=np.array(["x"]), offsets=np.array([0, 1]),
                 values=np.zeros((1, PER_STORE_DIM + 8), np.float32))  # fmt: skip
    stale = ExtractionStats()
    fs3, _ = extract_features(records, workloads, cache_dir=tmp_path, stats=stale, progress=False)
    assert stale.computed == records.num_rows and np.array_equal(fs3.values, fs.values)


def test_a_trace_that_no_longer_replays_gets_no_features(imported_dataset, tmp_path):
    records, workloads = read_records(imported_dataset), read_workloads(imported_dataset)
    traces = records.column("trace").to_pylist()
    traces[0] = traces[0].replace('["C","main"]', '["missing","main"]', 1)
    broken = records.set_column(records.schema.get_field_index("trace"), "trace", pa.array(traces))
    fs, mask = extract_features(broken, workloads, cache_dir=tmp_path, progress=False)
    assert not mask[0] and mask[1:].all()
    assert len(fs) == records.num_rows - 1


def _xgboost_trees(in_dim: int, mean: torch.Tensor, std: torch.Tensor, seed: int = 0):
    """A real (small) XGBoost booster on random rows, converted to tensors."""
    import xgboost as xgb

    from tunezoo.models import PackSumTrees

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, in_dim)).astype(np.float32)
    y = x[:, 0] - 2 * x[:, 1] * (x[:, 2] > 0) + rng.normal(scale=0.1, size=200)
    booster = xgb.train({"max_depth": 3, "eta": 0.3, "nthread": 1}, xgb.DMatrix(x, label=y), 6)
    return booster, PackSumTrees.from_xgboost(booster, mean, std)


def _small_model(arch: str, in_dim: int = 8):
    if arch == "seed-ensemble":
        config = {"member_config": {"in_dim": in_dim, "hidden": 16}, "members": 3}
        return build_model(arch, config)
    if arch == "packsum-trees":
        return _xgboost_trees(in_dim, torch.zeros(in_dim), torch.ones(in_dim))[1]
    if arch == "score-blend":
        from tunezoo.models import ScoreBlend

        mlp = build_model("segsum-mlp", {"in_dim": in_dim, "hidden": 16})
        return ScoreBlend.of([mlp, _small_model("packsum-trees", in_dim)], [1.0, 2.5])
    return build_model(arch, {"in_dim": in_dim})


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architectures_score_variable_store_counts(arch):
    torch.manual_seed(0)
    model = _small_model(arch)
    values = torch.randn(9, 8)
    segments = torch.tensor([0, 0, 1, 2, 2, 2, 2, 3, 3])
    scores = model(values, segments, 4)
    assert scores.shape == (4,)
    # a candidate's score does not depend on the other candidates in the batch
    alone = model(values[2:7], torch.tensor([0, 1, 1, 1, 1]), 2)
    assert torch.allclose(alone, scores[1:3], atol=1e-5)


def test_a_seed_ensemble_scores_the_mean_of_its_members():
    from tunezoo.models import SeedEnsemble
    from tunezoo.predictor import ensemble_of

    torch.manual_seed(0)
    members = [build_model("segsum-mlp", {"in_dim": 8, "hidden": 16}) for _ in range(3)]
    ensemble = SeedEnsemble.of(members)
    values = torch.randn(9, 8)
    segments = torch.tensor([0, 0, 1, 2, 2, 2, 2, 3, 3])
    with torch.no_grad():
        expected = torch.stack([m(values, segments, 4) for m in members]).mean(0)
        assert torch.allclose(ensemble(values, segments, 4), expected, atol=1e-6)
        # copies, not views: training a member afterwards leaves the ensemble as it was
        members[0].head[-1].bias.add_(1.0)
        assert torch.allclose(ensemble(values, segments, 4), expected, atol=1e-6)
    with pytest.raises(ValueError, match="differ in architecture or config"):
        SeedEnsemble.of([members[0], build_model("segsum-mlp", {"in_dim": 8})])
    with pytest.raises(ValueError, match="cannot be ensembles"):
        build_model("seed-ensemble", {"member_arch": "seed-ensemble"})
    # as predictors: one normaliser, and the members' scores averaged
    mean, std = torch.zeros(PER_STORE_DIM), torch.ones(PER_STORE_DIM)
    preds = [
        Predictor(build_model("segsum-mlp", {"hidden": 16}), mean, std, "llvm-znver4")
        for _ in range(2)
    ]
    combined = ensemble_of(preds)
    assert combined.arch == "seed-ensemble" and len(combined.model.members) == 2
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(n, PER_STORE_DIM)).astype(np.float32) for n in (1, 4, 2)]
    average = np.mean([p.score_matrices(mats) for p in preds], axis=0)
    assert np.allclose(combined.score_matrices(mats), average, atol=1e-5)
    other = Predictor(build_model("segsum-mlp", {"hidden": 16}), mean + 1, std, "llvm-znver4")
    with pytest.raises(ValueError, match="share target, feature version and normaliser"):
        ensemble_of([preds[0], other])


def test_xgboost_trees_as_tensors_score_exactly_as_metaschedule_xgbmodel():
    """MetaSchedule's XGBModel (trained through its own pack-sum code) and its trees
    converted to tensors in a normalised feature space give the same candidate scores."""
    from tvm.s_tir.meta_schedule.cost_model import XGBModel

    rng = np.random.default_rng(3)
    dim = 12
    mats = [rng.normal(2.0, 3.0, size=(int(rng.integers(1, 5)), dim)) for _ in range(120)]
    mats = [m.astype(np.float32) for m in mats]
    labels = np.array([1.0 / (1.0 + abs(m[:, 0].sum()) + m[:, 1].max() ** 2) for m in mats])
    model = XGBModel(num_tuning_cores=1, verbose_eval=1_000_000)
    model._train(xs=mats, ys=(labels / labels.max()).astype(np.float32))
    mean = torch.from_numpy(np.concatenate(mats).mean(0))
    std = torch.from_numpy(np.concatenate(mats).std(0))
    from tunezoo.models import PackSumTrees

    trees = PackSumTrees.from_xgboost(model.booster, mean, std)
    assert trees.config.trees == model.booster.num_boosted_rounds()
    assert not list(trees.parameters())  # fixed: fine-tuning cannot move them
    counts = torch.tensor([len(m) for m in mats])
    segments = torch.repeat_interleave(torch.arange(len(mats)), counts)
    values = (torch.from_numpy(np.concatenate(mats)) - mean) / std
    with torch.no_grad():
        ours = trees(values, segments, len(mats)).numpy()
    theirs = model._predict(xs=mats)
    assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    assert np.array_equal(np.argsort(-ours, kind="stable")[:10], np.argsort(-theirs)[:10])
    # the first rounds only
    assert PackSumTrees.from_xgboost(model.booster, mean, std, rounds=2).config.trees == 2


def test_a_score_blend_is_the_weighted_sum_of_copies_of_its_members():
    from tunezoo.models import ScoreBlend
    from tunezoo.predictor import blend_with_xgboost

    torch.manual_seed(0)
    mlp = build_model("segsum-mlp", {"in_dim": 8, "hidden": 16})
    trees = _small_model("packsum-trees")
    blend = ScoreBlend.of([mlp, trees], [0.5, 2.0])
    values = torch.randn(9, 8)
    segments = torch.tensor([0, 0, 1, 2, 2, 2, 2, 3, 3])
    with torch.no_grad():
        expected = 0.5 * mlp(values, segments, 4) + 2.0 * trees(values, segments, 4)
        assert torch.allclose(blend(values, segments, 4), expected, atol=1e-6)
        mlp.head[-1].bias.add_(1.0)
        assert torch.allclose(blend(values, segments, 4), expected, atol=1e-6)
    with pytest.raises(ValueError, match="one weight per member"):
        ScoreBlend.of([mlp, trees], [1.0])
    # as a predictor: the trees live in model.safetensors and see the normalised features
    mean, std = torch.randn(PER_STORE_DIM), torch.rand(PER_STORE_DIM) + 0.5
    base = Predictor(build_model("segsum-mlp", {"hidden": 16}), mean, std, "llvm-znver4")
    booster, _ = _xgboost_trees(PER_STORE_DIM, mean, std)
    blended = blend_with_xgboost(base, booster, (1.0, 3.0))
    assert blended.arch == "score-blend" and blended.metadata["blend_weights"] == [1.0, 3.0]
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(n, PER_STORE_DIM)).astype(np.float32) for n in (1, 4, 2)]
    import xgboost as xgb

    packsum = [float(booster.predict(xgb.DMatrix(m)).sum()) for m in mats]
    want = base.score_matrices(mats) + 3.0 * np.array(packsum, dtype=np.float32)
    assert np.allclose(blended.score_matrices(mats), want, rtol=1e-4, atol=1e-4)


def test_unknown_architecture_and_config_fields_are_refused():
    with pytest.raises(
        UnknownArchitectureError,
        match="known: packsum-trees, score-blend, seed-ensemble, segsum-mlp, store-attention",
    ):
        build_model("resnet")
    with pytest.raises(ValueError, match="unknown config fields"):
        build_model("segsum-mlp", {"hiden": 3})


def _tiny_predictor(arch: str) -> Predictor:
    torch.manual_seed(1)
    if arch in ("packsum-trees", "score-blend"):
        model = _small_model(arch, PER_STORE_DIM)
    else:
        model = build_model(arch, {"members": 2} if arch == "seed-ensemble" else {})
    return Predictor(
        model,
        torch.randn(PER_STORE_DIM),
        torch.rand(PER_STORE_DIM) + 0.5,
        "llvm-znver4",
        metadata={"note": "test"},
    )


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_save_load_round_trip_is_bit_for_bit(arch, tmp_path):
    predictor = _tiny_predictor(arch)
    shas = predictor.save(tmp_path)
    assert set(shas) == {"config.json", "model.safetensors"}
    loaded = Predictor.load(tmp_path)
    for (k, a), (k2, b) in zip(
        predictor.model.state_dict().items(), loaded.model.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b)
    assert torch.equal(predictor.mean, loaded.mean) and torch.equal(predictor.std, loaded.std)
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(n, PER_STORE_DIM)).astype(np.float32) for n in (1, 3, 2, 7)]
    assert np.array_equal(predictor.score_matrices(mats), loaded.score_matrices(mats))
    assert loaded.metadata == {"note": "test"}


def test_load_refuses_other_feature_versions_and_bad_weights(tmp_path):
    predictor = _tiny_predictor("segsum-mlp")
    predictor.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["feature_version"] = "per-store-172.tvm-0.19"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(FeatureVersionError, match="per-store-172.tvm-0.19"):
        Predictor.load(tmp_path)
    config["feature_version"] = FEATURE_VERSION
    config["arch_config"]["hidden"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(PredictorFormatError, match="do not fit segsum-mlp"):
        Predictor.load(tmp_path)
    config["arch_config"]["hidden"] = 256
    (tmp_path / "config.json").write_text(json.dumps(config))
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["normalizer.std"]
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(PredictorFormatError, match="normalizer.std"):
        Predictor.load(tmp_path)
    with pytest.raises(PredictorFormatError, match="missing"):
        Predictor.load(tmp_path / "nowhere")


def _committed_subset(n_workloads: int) -> tuple[pa.Table, pa.Table]:
    if not (DATA / "records").exists():
        pytest.skip(f"{DATA} has no records (the dataset is committed with the repository)")
    workloads = read_workloads(DATA)
    records = read_records(DATA)
    counts = {}
    for w in records.column("workload_id").to_pylist():
        counts[w] = counts.get(w, 0) + 1
    chosen = sorted(w for w, c in counts.items() if c >= 100)[:n_workloads]
    if len(chosen) < 3:
        pytest.skip("the committed dataset has fewer than 3 workloads with 100 records")
    mask = pa.array([w in set(chosen) for w in records.column("workload_id").to_pylist()])
    return records.filter(mask), workloads


def _split_candidates(data: RankingData, seed: int) -> tuple[RankingData, RankingData]:
    """Half of each workload's candidates to train on, the other half to rank."""
    rng = np.random.default_rng(seed)
    halves = ([], [])
    for m in data.group_members():
        m = rng.permutation(m)
        halves[0].append(m[: len(m) // 2])
        halves[1].append(m[len(m) // 2 :])
    out = []
    for part in halves:
        idx = np.concatenate(part)
        out.append(
            RankingData(
                data.features.subset(idx),
                data.latencies[idx],
                data.labels[idx],
                data.groups[idx],
                data.group_ids,
                data.group_weights,
            )
        )
    return out[0], out[1]


def test_tiny_training_learns_a_ranking_better_than_random(tmp_path):
    records, workloads = _committed_subset(6)
    data = ranking_data_from_tables(records, workloads, cache_dir=tmp_path, progress=False)
    train, held = _split_candidates(data, seed=0)

    def evaluate(predictor, part):
        ok = part.successful()
        metrics = evaluate_ranking(
            part.latencies[ok], predictor.score(part.features)[ok], part.groups[ok]
        )
        return {"selection": metrics["pairwise_accuracy"], **metrics}

    config = TrainConfig(
        arch="segsum-mlp", epochs=25, patience=25, loss="pairwise", batch_groups=2, threads=1
    )
    predictor, _ = train_predictor(
        train, held, config, target_key="llvm-znver4", evaluate_fn=evaluate, log=lambda _: None
    )
    learned = evaluate(predictor, held)
    rng = np.random.default_rng(0)
    ok = held.successful()
    chance = evaluate_ranking(held.latencies[ok], rng.normal(size=int(ok.sum())), held.groups[ok])
    assert learned["pairwise_accuracy"] > 0.65 > chance["pairwise_accuracy"] + 0.1
    assert learned["kendall_tau"] > 0.3


def _random_ranking_data(seed: int, groups: int = 4, per_group: int = 8) -> RankingData:
    """Candidates with random per-store features: enough to run the training loop."""
    rng = np.random.default_rng(seed)
    n = groups * per_group
    mats = [rng.normal(size=(int(rng.integers(1, 4)), PER_STORE_DIM)) for _ in range(n)]
    features = FeatureSet.from_list([f"r{i}" for i in range(n)], ["w"] * n, mats)
    latencies = rng.uniform(1e-4, 1e-3, size=n)
    return RankingData(
        features,
        latencies,
        rng.uniform(size=n),
        np.repeat(np.arange(groups), per_group),
        [f"w{g}" for g in range(groups)],
        np.ones(groups),
    )


@pytest.mark.parametrize(("min_epochs", "chosen", "epochs_run"), [(1, 0, 3), (4, 3, 6)])
def test_early_stopping_never_keeps_an_epoch_before_min_epochs(min_epochs, chosen, epochs_run):
    """A validation score that only falls (a lucky first epoch) must not end the run with
    an untrained model: the choice starts at ``min_epochs``, and so does the patience."""
    train, validation = _random_ranking_data(0), _random_ranking_data(1)
    calls = []

    def falling_selection(predictor, part):
        calls.append(len(calls))
        return {"selection": 1.0 - 0.01 * calls[-1]}

    config = TrainConfig(epochs=20, patience=2, min_epochs=min_epochs, batch_groups=2, threads=1)
    _, info = train_predictor(
        train,
        validation,
        config,
        target_key="llvm-znver4",
        evaluate_fn=falling_selection,
        log=lambda _: None,
    )
    assert info["best_epoch"] == chosen
    assert len(info["history"]) == epochs_run


def test_a_snapshot_keeps_exactly_the_shards_finished_by_its_cut_off(imported_dataset, tmp_path):
    """A task in flight when a model was trained must not join its snapshot later, and a
    workload measured again later must not leave it."""
    import shutil

    import pyarrow.compute as pc

    from tunezoo.records import shards_after, write_shards
    from tunezoo.training import load_ranking_data

    records = read_records(imported_dataset)
    cut = pc.max(records["created_at"]).as_py()
    assert shards_after(imported_dataset, cut) == set()  # all finished by then
    # a later task on a workload of the snapshot: two records, one measured before the
    # cut-off (but written after it, with the rest of the task) and one after; its
    # workloads row says the workload now also belongs to a held-out model
    again = records["workload_id"][0].as_py()
    late = records.filter(pc.field("workload_id") == again).slice(0, 2)
    late = late.set_column(
        late.schema.get_field_index("record_id"), "record_id", pa.array(["late-0", "late-1"])
    )
    stamps = pa.array(
        [cut - dt.timedelta(seconds=1), cut + dt.timedelta(hours=1)],
        late.schema.field("created_at").type,
    )
    late = late.set_column(late.schema.get_field_index("created_at"), "created_at", stamps)
    row = read_workloads(imported_dataset).filter(pc.field("workload_id") == again).to_pylist()
    row[0]["models"] = [*row[0]["models"], {"model": "vit_tiny", "weight": 1}]
    grown = tmp_path / "grown"
    shutil.copytree(imported_dataset, grown)
    (written,) = [p for p in write_shards(grown, pa.Table.from_pylist(row, read_workloads(
        imported_dataset).schema), late, shard="late") if "records" in p.parts]  # fmt: skip
    assert shards_after(grown, cut) == {"late"}
    before = load_ranking_data(imported_dataset, "all", min_candidates=2, progress=False,
                               cache_dir=tmp_path / "c")  # fmt: skip
    snap = load_ranking_data(grown, "all", min_candidates=2, progress=False, until=cut,
                             cache_dir=tmp_path / "c")  # fmt: skip
    assert snap.group_ids == before.group_ids and len(snap) == len(before)
    assert np.array_equal(snap.latencies, before.latencies)
    assert again in load_ranking_data(grown, "heldout", min_candidates=2, progress=False,
                                      cache_dir=tmp_path / "c").group_ids  # fmt: skip
    later = cut + dt.timedelta(hours=2)
    assert shards_after(grown, later) == set()
    assert written.exists()


def test_eval_on_every_workload_of_a_dataset(imported_dataset, tmp_path):
    """``parts=("all",)`` scores every workload: how a predictor transfers to the dataset of
    a target it was not trained for (tunezoo eval --parts all)."""
    from tunezoo.experiment import run_evaluation
    from tunezoo.training import select_workloads

    workloads = read_workloads(imported_dataset)
    assert select_workloads(workloads, "all") == workloads["workload_id"].to_pylist()
    with pytest.raises(ValueError, match="unknown part 'tests'; choose from train, validation"):
        select_workloads(workloads, "tests")
    _tiny_predictor("segsum-mlp").save(tmp_path / "p")
    quiet = dict(workers=1, cache_dir=tmp_path / "cache", log=lambda *_: None)
    everything = run_evaluation(tmp_path / "p", imported_dataset, parts=("all",), **quiet)
    by_part = run_evaluation(
        tmp_path / "p", imported_dataset, parts=("train", "validation", "test", "heldout"), **quiet
    )
    assert set(everything) == {"all"}
    assert everything["all"]["n_workloads"] == sum(m["n_workloads"] for m in by_part.values())
    assert everything["all"]["n_candidates"] == sum(m["n_candidates"] for m in by_part.values())


def test_eval_with_a_screen_scores_the_cascade(imported_dataset, tmp_path, capsys):
    """``tunezoo eval PREDICTOR --screen TRACE_PREDICTOR`` ranks with the bundled trace
    predictor screening for the bundled per-store one: refining everything gives back the
    per-store metrics exactly, refining only the screen's best gives the screen's own; a
    per-store screen and ``--compare`` with a screen are refused."""
    from tunezoo.cli import main as cli
    from tunezoo.experiment import run_evaluation
    from tunezoo.loading import PACKAGE_ARTIFACTS

    ranker = PACKAGE_ARTIFACTS / "seed-ensemble.llvm-znver4"
    screen = PACKAGE_ARTIFACTS / "seed-ensemble-trace.llvm-znver4"
    quiet = dict(workers=1, cache_dir=tmp_path / "cache", log=lambda *_: None, parts=("all",))
    plain = run_evaluation(ranker, imported_dataset, **quiet)["all"]
    everything = run_evaluation(
        ranker, imported_dataset, screen_dir=screen, refine_fraction=1.0, **quiet
    )["all"]

    def equal(a: dict, b: dict) -> bool:  # NaN standard errors (one workload) count as equal
        return a.keys() == b.keys() and all(
            v == b[k] or (v != v and b[k] != b[k]) for k, v in a.items()
        )

    assert equal(plain, everything)
    # Refining only the screen's best candidate keeps it first and ranks the rest below it
    # in the screen's order: the screen's own ranking, whatever this CPU's tuning sampled.
    few = run_evaluation(
        ranker, imported_dataset, screen_dir=screen, refine_fraction=0.01, min_refine=1, **quiet
    )["all"]
    alone = run_evaluation(screen, imported_dataset, **quiet)["all"]
    assert few["n_candidates"] == plain["n_candidates"]
    assert equal(few, alone)
    with pytest.raises(ValueError, match="must read trace tokens"):
        run_evaluation(ranker, imported_dataset, screen_dir=ranker, **quiet)
    with pytest.raises(SystemExit, match="drop --screen or --compare"):
        cli(["eval", str(ranker), "--dataset", str(imported_dataset), "--compare",
             "--screen", str(screen)])  # fmt: skip


def test_train_a_seed_ensemble_and_eval_compare_reproduces_it(tmp_path, capsys):
    """`tunezoo train --ensemble 2` end to end on a small real dataset cut from the committed
    records (40 candidates of a few workloads per part), then `tunezoo eval --compare`."""
    import pyarrow.compute as pc

    from tunezoo.cli import main as cli
    from tunezoo.records import write_shards
    from tunezoo.training import select_workloads

    if not (DATA / "records").exists():
        pytest.skip(f"{DATA} has no records (the dataset is committed with the repository)")
    workloads = read_workloads(DATA)
    records = read_records(DATA)
    counts = pc.value_counts(records["workload_id"]).to_pylist()
    rich = {c["values"] for c in counts if c["counts"] >= 100}
    chosen = []
    for part, n in (("train", 3), ("validation", 1), ("test", 1), ("heldout", 1)):
        chosen += sorted(w for w in select_workloads(workloads, part) if w in rich)[:n]
    parts = [
        records.filter(pc.field("workload_id") == w).sort_by("record_id").slice(0, 40)
        for w in chosen
    ]
    dataset = tmp_path / "llvm-znver4"
    write_shards(
        dataset,
        workloads.filter(pc.field("workload_id").isin(pa.array(chosen))),
        pa.concat_tables(parts),
    )
    out = tmp_path / "ensemble"
    args = ["train", "--dataset", str(dataset), "--target", "llvm-znver4", "--out", str(out)]
    args += ["--arch", "segsum-mlp", "--ensemble", "2", "--epochs", "3", "--patience", "3"]
    args += ["--baselines", "ms-xgb", "--threads", "1", "--workers", "1", "--blend-xgboost"]
    assert cli(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["ensemble"] == 2
    ensemble = "seed-ensemble of 2 segsum-mlp"
    blend = f"{ensemble} + ms-xgb"
    # validation chooses between the ensemble and its blend with the XGBoost trees
    assert metrics["model"] in (ensemble, blend) and set(metrics["models"]) >= {ensemble, blend}
    assert metrics["arch"] == ("seed-ensemble" if metrics["model"] == ensemble else "score-blend")
    entry = metrics["models"][ensemble]
    assert [m["seed"] for m in entry["members"]] == [0, 1]
    assert all(w > 0 for w in metrics["models"][blend]["blend_weights"])
    chosen = metrics["models"][metrics["model"]]
    assert chosen["heldout"] == metrics["heldout"] and "ms-xgb" in metrics["baselines"]
    assert metrics["data_counts"]["train"]["workloads"] == 3
    predictor = Predictor.load(out)
    assert predictor.arch == metrics["arch"]
    capsys.readouterr()
    assert cli(["eval", str(out), "--dataset", str(dataset), "--compare"]) == 0
    assert "largest difference from the stored metrics.json: 0.00e+00" in capsys.readouterr().out


def _synthetic_ranking_data(group_ids: list[str], per_group: int = 5) -> RankingData:
    from tunezoo.features import FeatureSet

    rng = np.random.default_rng(0)
    n = len(group_ids) * per_group
    mats = [rng.normal(size=(2, PER_STORE_DIM)).astype(np.float32) for _ in range(n)]
    groups = np.repeat(np.arange(len(group_ids)), per_group)
    latencies = rng.uniform(1e-4, 1e-3, size=n)
    return RankingData(
        FeatureSet.from_list([f"r{i}" for i in range(n)], [group_ids[g] for g in groups], mats),
        latencies,
        latencies.min() / latencies,
        groups,
        list(group_ids),
        np.ones(len(group_ids)),
    )


def test_compare_evaluates_exactly_the_recorded_workloads():
    """`eval --compare` restricts each part to the workloads listed in metrics.json, so a
    workload that joined the dataset after training cannot change the recomputed metrics."""
    from tunezoo.experiment import only_workloads, score_metrics

    data = _synthetic_ranking_data(["w-a", "w-late", "w-b"])
    kept = only_workloads(data, ["w-b", "w-a"], part="test")
    assert kept.group_ids == ["w-b", "w-a"]
    assert len(kept) == 10
    scores = -kept.latencies  # a perfect ranking of the kept candidates only
    assert score_metrics(scores, kept)["n_workloads"] == 2
    assert score_metrics(scores, kept)["top1_score"] == 1.0
    with pytest.raises(ValueError, match=r"heldout: 1 workload\(s\).*first: w-gone"):
        only_workloads(data, ["w-a", "w-gone"], part="heldout")


def test_an_xgboost_baseline_scores_with_the_rounds_validation_chose(imported_dataset, tmp_path):
    """xgb.train returns the last round's booster, up to 40 past the best on validation: the
    baseline must score with the early-stopped one."""
    from tunezoo.baselines import train_xgb
    from tunezoo.training import load_ranking_data

    data = load_ranking_data(imported_dataset, "all", min_candidates=2, progress=False,
                             cache_dir=tmp_path)  # fmt: skip
    model = train_xgb("xgb-packsum", data, data, rounds=400)
    n = model.booster.num_boosted_rounds()
    assert n < 400  # stopped early
    import xgboost as xgb

    from tunezoo.baselines import pooled_features

    matrix = xgb.DMatrix(pooled_features(data.features, False))
    rmse = [  # the validation metric early stopping watched (validation = train here)
        float(np.sqrt(np.mean((model.booster.predict(matrix, iteration_range=(0, r))
                               - data.labels) ** 2)))
        for r in range(1, n + 1)
    ]  # fmt: skip
    assert rmse[-1] == min(rmse)  # its last round is the best one, not 40 past it
    assert np.array_equal(model.score(data.features), model.booster.predict(matrix))
