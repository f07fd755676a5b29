"""The MetaSchedule cost-model adapter and ``load_predictor``'s resolution.

Candidates and measurements are real: they come from the session's tuned database
(``tuned_db``: MetaSchedule really tuned a matmul and an add+relu on this CPU, some builds
failed on purpose). Predictors are tiny real ``Predictor`` objects with random weights:
these tests check the mechanics (what is called, what changes, what is refused), not how
good a trained model is.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tvm.s_tir import meta_schedule as ms

from tunezoo import catalog as cat
from tunezoo.cost_model import (
    AdaptConfig,
    TimedCostModel,
    TunezooCostModel,
    positive_scores,
)
from tunezoo.features import FEATURE_VERSION, PER_STORE_DIM, features_of_candidates
from tunezoo.features import light_tune_context as make_context
from tunezoo.loading import (
    ARTIFACTS_ENV,
    BundledArtifactError,
    FallbackPredictorWarning,
    NoPredictorError,
    list_predictors,
    load_predictor,
    load_predictor_artifact,
    resolve_predictor,
)
from tunezoo.models import build_model
from tunezoo.predictor import FeatureVersionError, Predictor, PredictorFormatError, sha256_file

TARGET_KEY = "llvm-znver4"
NAME = f"segsum-mlp.{TARGET_KEY}"
FAILED = 1e9  # MetaSchedule stores failed candidates with a run time of 1e10 s


def tiny_predictor(seed: int = 0, **arch_config) -> Predictor:
    """A real predictor with random weights (mechanics only)."""
    torch.manual_seed(seed)
    model = build_model("segsum-mlp", {"hidden": 32, "layers": 2, **arch_config})
    return Predictor(model, torch.zeros(PER_STORE_DIM), torch.ones(PER_STORE_DIM), TARGET_KEY)


def params(predictor: Predictor) -> dict[str, bytes]:
    return {k: v.detach().numpy().tobytes() for k, v in predictor.model.state_dict().items()}


class Measured:
    """One workload's measured candidates from the tuned database, ready to replay."""

    def __init__(self, records) -> None:
        workload = records[0].workload
        self.context = make_context(workload.mod, records[0].target)
        self.candidates = [r.as_measure_candidate() for r in records]
        self.latencies = [float(np.mean([float(s) for s in r.run_secs])) for r in records]
        self.results = [
            ms.runner.RunnerResult(None, "build failed")
            if lat >= FAILED
            else ms.runner.RunnerResult([float(s) for s in r.run_secs], None)
            for r, lat in zip(records, self.latencies, strict=True)
        ]

    @property
    def failures(self) -> int:
        return sum(lat >= FAILED for lat in self.latencies)


@pytest.fixture(scope="module")
def every_workload(tuned_workloads) -> list[Measured]:
    """Each workload of the tuned database, most candidates first (the matmul)."""
    return [Measured(r) for r in tuned_workloads]


@pytest.fixture(scope="module")
def measured(every_workload) -> Measured:
    """The matmul of the tuned database: its records, replayed as MeasureCandidates."""
    out = every_workload[0]
    assert len(out.candidates) >= 8
    assert len({lat for lat in out.latencies if lat < FAILED}) >= 3
    return out


# ------------------------------------------------------------------------------ scoring


def test_positive_scores_keep_the_order_and_stay_positive():
    raw = np.array([-800.0, -3.0, -0.5, 0.0, 0.5, 3.0, 50.0, 1e6])
    out = positive_scores(raw)
    assert out.dtype == np.float64
    assert (out >= 0).all() and (out[1:] > 0).all()
    assert (np.diff(out) > 0).all()  # strictly increasing: no ties among good candidates


def test_predict_scores_real_candidates_in_one_forward_pass(measured, monkeypatch):
    original = tiny_predictor()
    model = TunezooCostModel(original)
    calls = []
    inner = model.predictor.score_matrices
    monkeypatch.setattr(
        model.predictor, "score_matrices", lambda m: calls.append(len(m)) or inner(m)
    )
    scores = model.predict(measured.context, measured.candidates)
    assert calls == [len(measured.candidates)]
    assert scores.shape == (len(measured.candidates),) and scores.dtype == np.float64
    assert np.isfinite(scores).all() and (scores > 0).all()
    mats = features_of_candidates(measured.context, measured.candidates)
    assert np.allclose(scores, positive_scores(original.score_matrices(mats)))
    # a candidate's score does not depend on its batch, and is not computed twice
    alone = model.predict(measured.context, measured.candidates[:1])
    assert np.allclose(alone, scores[:1], rtol=1e-6)
    assert calls == [len(measured.candidates)]
    stats = model.stats()
    assert stats["predict_calls"] == 2
    assert stats["predicted_candidates"] == len(measured.candidates) + 1
    assert stats["scored_candidates"] == len(set(model._scores)) <= len(measured.candidates)
    assert stats["feature_seconds"] > 0 and stats["predict_seconds"] > 0
    assert stats["total_seconds"] >= stats["feature_seconds"] + stats["predict_seconds"]


def test_a_predictor_of_another_feature_version_is_refused():
    stale = tiny_predictor()
    stale.feature_version = "per-store-164.tvm-0.19.v1"
    with pytest.raises(FeatureVersionError, match="tvm-0.19"):
        TunezooCostModel(stale)
    with pytest.raises(ValueError, match="mode"):
        TunezooCostModel(tiny_predictor(), mode="online")


# ------------------------------------------------------------------------------- update


def test_frozen_mode_counts_updates_and_trains_nothing(measured):
    original = tiny_predictor()
    before = params(original)
    model = TunezooCostModel(original, mode="frozen")
    scores = model.predict(measured.context, measured.candidates)
    for _ in range(3):
        model.update(measured.context, measured.candidates, measured.results)
    assert params(model.predictor) == before and params(original) == before
    assert np.array_equal(model.predict(measured.context, measured.candidates), scores)
    stats = model.stats()
    assert stats["mode"] == "frozen" and stats["update_calls"] == 3
    assert stats["updated_candidates"] == 3 * len(measured.candidates)
    assert stats["failed_candidates"] == 3 * measured.failures
    assert stats["train_steps"] == 0 and stats["train_seconds"] == 0.0


def test_adaptive_mode_learns_from_measurements_without_touching_the_artifact(measured):
    original = tiny_predictor()
    before = params(original)
    model = TunezooCostModel(original, mode="adaptive", steps=30, lr=1e-3)
    scores = model.predict(measured.context, measured.candidates)
    model.update(measured.context, measured.candidates, measured.results)
    after = model.predict(measured.context, measured.candidates)
    assert not np.allclose(after, scores)
    assert params(original) == before  # the loaded artifact is never mutated
    assert params(model.predictor) != before
    stats = model.stats()
    assert stats["train_steps"] == 30 and stats["workloads"] == 1
    assert stats["last_loss_last_step"] < stats["last_loss_first_step"]
    assert stats["update_seconds"] >= stats["train_seconds"] > 0
    # more updates keep learning: the ranking of what was measured gets better
    for _ in range(5):
        model.update(measured.context, measured.candidates, measured.results)
    ok = np.array(measured.latencies) < FAILED
    final = model.predict(measured.context, measured.candidates)
    fastest = int(np.argmin(np.where(ok, measured.latencies, np.inf)))
    assert final[fastest] >= np.quantile(final[ok], 0.5)


def test_adaptive_mode_labels_each_workload_on_its_own(every_workload):
    assert len(every_workload) == 2
    model = TunezooCostModel(tiny_predictor(), mode="adaptive", steps=2)
    for m in every_workload:
        model.update(m.context, m.candidates, m.results)
    groups = list(model._groups.values())
    assert model.stats()["workloads"] == 2
    assert sorted(len(g.latencies) for g in groups) == sorted(
        len(m.candidates) for m in every_workload
    )
    for group in groups:  # normalised throughput within the workload: its best is 1
        labels = group.labels()
        ok = np.isfinite(group.latencies)
        assert (labels[~ok] == 0).all()
        assert labels[ok].max() == 1.0 if ok.any() else not labels.any()


def test_adapt_settings_are_checked():
    with pytest.raises(ValueError, match="loss"):
        AdaptConfig(loss="mse")
    with pytest.raises(ValueError, match="either"):
        TunezooCostModel(tiny_predictor(), adapt=AdaptConfig(), steps=3)


# ---------------------------------------------------------------------------- save/load


def test_save_and_load_round_trip_the_adapted_weights(measured, tmp_path):
    adapted = TunezooCostModel(tiny_predictor(), mode="adaptive", steps=10, lr=1e-3)
    adapted.update(measured.context, measured.candidates, measured.results)
    want = adapted.predict(measured.context, measured.candidates)
    path = tmp_path / "run" / "cost_model.safetensors"
    adapted.save(str(path))
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["mode"] == "adaptive" and sidecar["predictor"]["arch"] == "segsum-mlp"
    assert sidecar["stats"]["update_calls"] == 1 and sidecar["adapt"]["steps"] == 10

    fresh = TunezooCostModel(tiny_predictor(), mode="frozen")
    assert not np.allclose(fresh.predict(measured.context, measured.candidates), want)
    fresh.load(str(path))
    assert np.array_equal(fresh.predict(measured.context, measured.candidates), want)
    assert fresh.stats()["mode"] == "adaptive" and fresh.stats()["update_calls"] == 1

    rebuilt = TunezooCostModel.from_file(path, mode="frozen")
    assert np.array_equal(rebuilt.predict(measured.context, measured.candidates), want)
    assert rebuilt.stats()["mode"] == "frozen"

    other = TunezooCostModel(tiny_predictor(hidden=16))
    with pytest.raises(PredictorFormatError, match="arch_config"):
        other.load(str(path))
    assert_tampered_and_missing_saves_are_refused(fresh.load, path, tmp_path)


def test_a_restored_adaptive_model_goes_on_as_the_saved_one_would(measured, tmp_path):
    """Adaptive mode trains on every measurement of the workload so far: the save keeps
    them and the settings, so one more measurement trains on all of them (alone, it would
    be too few to rank). Adam's moments start afresh, as after any load."""
    half = len(measured.candidates) // 2
    cands, results = measured.candidates, measured.results
    saved = TunezooCostModel(tiny_predictor(), mode="adaptive", steps=5, lr=1e-2, seed=3)
    saved.update(measured.context, cands[:half], results[:half])
    path = tmp_path / "cost_model.safetensors"
    saved.save(str(path))
    restored = TunezooCostModel(tiny_predictor(seed=1), mode="frozen")  # default settings
    restored.load(str(path))
    assert restored.adapt == saved.adapt and restored.mode == "adaptive"
    loaded = params(restored.predictor)
    for model in (saved, restored):
        model.update(measured.context, cands[half : half + 1], results[half : half + 1])
    assert [len(g.mats) for g in restored._groups.values()] == [half + 1]
    assert restored.stats()["train_steps"] == saved.stats()["train_steps"] == 10
    assert params(restored.predictor) != loaded
    rebuilt = TunezooCostModel.from_file(path, adapt=AdaptConfig(steps=1))
    assert rebuilt.adapt.steps == 1  # an explicit setting wins over the saved one


def assert_tampered_and_missing_saves_are_refused(load, path: Path, tmp_path: Path) -> None:
    """A flipped byte fails the sha256 check; a missing save names what is missing."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PredictorFormatError, match="sha256"):
        load(str(path))
    with pytest.raises(PredictorFormatError, match="missing"):
        load(str(tmp_path / "nothing.safetensors"))


def test_timed_cost_model_wraps_metaschedule_xgb(measured):
    model = TimedCostModel("xgb", num_tuning_cores=1)
    model.update(measured.context, measured.candidates, measured.results)
    scores = model.predict(measured.context, measured.candidates)
    assert scores.shape == (len(measured.candidates),) and np.isfinite(scores).all()
    stats = model.stats()
    assert stats["predict_calls"] == 1 and stats["update_calls"] == 1
    assert stats["total_seconds"] == pytest.approx(
        stats["predict_seconds"] + stats["update_seconds"]
    )


# --------------------------------------------------------------- a real tuning session


def tune_small_matmul(cost_model, work_dir: Path):
    """A real 16-trial ``tune_tir`` session of a 32x32x32 matmul with ``cost_model``."""
    from make_tuning_db import cpu_target, matmul  # noqa: PLC0415

    from tunezoo.measure import MeasureSettings, make_builder, make_local_runner  # noqa: PLC0415

    target = cpu_target()
    settings = MeasureSettings(number=2, repeat=2, min_repeat_ms=1)
    return ms.tune_tir(
        matmul(32, 32, 32),
        target,
        str(work_dir),
        max_trials_global=16,
        num_trials_per_iter=8,
        builder=make_builder(settings, target),
        runner=make_local_runner(settings),
        cost_model=cost_model,
        strategy=ms.search_strategy.EvolutionarySearch(population_size=64),
        num_tuning_cores=1,
        seed=0,
    )


@pytest.mark.tvm_measure
def test_tune_tir_calls_the_frozen_adapter(tmp_path):
    original = tiny_predictor()
    before = params(original)
    model = TunezooCostModel(original, mode="frozen")
    db = tune_small_matmul(model, tmp_path)
    stats = model.stats()
    assert stats["predict_calls"] > 0 and stats["predicted_candidates"] >= 16
    assert stats["update_calls"] >= 1 and stats["updated_candidates"] >= 8
    assert params(model.predictor) == before
    records = db.get_all_tuning_records()
    latencies = [float(np.mean([float(s) for s in r.run_secs])) for r in records]
    assert len(records) >= 8 and min(latencies) < FAILED and np.isfinite(min(latencies))


# ------------------------------------------------------------------------ load_predictor


@pytest.fixture
def bundle(tmp_path, unpublished) -> Path:
    """A package-like artifacts folder holding one real predictor (unpublished: the
    session's catalog may pin another predictor of this name)."""
    root = tmp_path / "artifacts"
    tiny_predictor().save(root / NAME)
    (root / NAME / "metrics.json").write_text(json.dumps({"test": {"top1_score": 0.5}}))
    (root / "not-an-artifact").mkdir()  # ignored: no config, no artifact name
    return root


def test_bundled_predictor_by_target_and_by_name(bundle, monkeypatch):
    model = load_predictor(TARGET_KEY, artifacts_dir=bundle)
    assert isinstance(model, TunezooCostModel) and model.mode == "frozen"
    source = model.predictor.metadata["tunezoo_source"]
    assert source["name"] == NAME and source["source"] == "bundled"
    assert params(model.predictor) == params(tiny_predictor())
    adaptive = load_predictor(NAME, artifacts_dir=bundle, mode="adaptive", steps=3, lr=1e-3)
    assert adaptive.mode == "adaptive" and adaptive.adapt.steps == 3
    monkeypatch.setenv(ARTIFACTS_ENV, str(bundle))
    assert NAME in list_predictors()
    assert resolve_predictor(TARGET_KEY).source == "bundled"


def test_a_sibling_cpu_gets_the_nearest_predictor_with_a_warning(bundle):
    with pytest.warns(FallbackPredictorWarning, match=NAME):
        model = load_predictor("llvm-skylake-avx512", artifacts_dir=bundle)
    assert model.predictor.metadata["tunezoo_source"]["fallback_from"] == "llvm-skylake-avx512"
    with pytest.raises(NoPredictorError, match="strict=True"):
        load_predictor("llvm-skylake-avx512", artifacts_dir=bundle, strict=True)
    with pytest.raises(NoPredictorError, match="none of its family"):
        load_predictor("cuda-a100", artifacts_dir=bundle)  # GPUs never borrow a CPU model
    with pytest.raises(NoPredictorError, match="none of its family"):
        load_predictor("llvm-neoverse-n1", artifacts_dir=bundle)


def test_unknown_targets_and_names_list_what_exists(bundle):
    with pytest.raises(cat.UnknownArtifactError, match="Did you mean 'llvm-znver4'") as err:
        load_predictor("llvm-znvr4", artifacts_dir=bundle)
    assert NAME in str(err.value) and "cuda-a100" in str(err.value)
    with pytest.raises(cat.UnknownArtifactError, match="Unknown target or predictor"):
        load_predictor("store-attention.llvm-znver4", artifacts_dir=bundle)
    with pytest.raises(cat.UnknownArtifactError, match="not published"):
        load_predictor(f"{NAME}@{'b' * 40}", artifacts_dir=bundle)
    with pytest.raises(ValueError, match="two revisions"):
        load_predictor(f"{NAME}@main", revision="v2", artifacts_dir=bundle)


def _entry(folder: Path, revision: str = "a" * 40) -> cat.Artifact:
    files = {
        p.name: cat.FilePin(sha256_file(p), p.stat().st_size)
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
    return cat.Artifact(
        name=NAME,
        kind="predictor",
        repo=f"tunezoo/{NAME}",
        revision=revision,
        files=files,
        target=TARGET_KEY,
        feature_version=FEATURE_VERSION,
    )


def test_bundled_files_are_checked_against_the_catalog_pins(bundle):
    table = cat.Catalog((_entry(bundle / NAME),))
    assert load_predictor(TARGET_KEY, artifacts_dir=bundle, catalog=table) is not None
    weights = bundle / NAME / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundledArtifactError, match="tunezoo download"):
        load_predictor(TARGET_KEY, artifacts_dir=bundle, catalog=table)
    # without a catalog entry the installed files are trusted as they are
    assert load_predictor_artifact(TARGET_KEY, artifacts_dir=bundle) is not None


def test_published_predictor_is_downloaded_checked_and_cached(tmp_path):
    import uuid  # noqa: PLC0415

    from tunezoo import hub  # noqa: PLC0415

    src = tmp_path / "model"
    tiny_predictor(seed=3).save(src)
    catalog_path = tmp_path / "catalog.json"
    org = f"org-{uuid.uuid4().hex[:10]}"
    hub.publish_model(src, NAME, org=org, catalog=catalog_path)
    empty = tmp_path / "no-artifacts"
    cache = tmp_path / "cache"
    offline = {"cache_dir": cache, "local_files_only": True}
    with pytest.raises(hub.NotCachedError, match=f"tunezoo download {NAME}"):
        load_predictor(TARGET_KEY, artifacts_dir=empty, catalog=catalog_path, **offline)
    model = load_predictor(TARGET_KEY, artifacts_dir=empty, catalog=catalog_path, cache_dir=cache)
    assert model.predictor.metadata["tunezoo_source"]["source"] == "hub"
    assert params(model.predictor) == params(tiny_predictor(seed=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pinned revision: verified, no warning
        again = load_predictor(NAME, artifacts_dir=empty, catalog=catalog_path, **offline)
    assert params(again.predictor) == params(model.predictor)
    assert list_predictors(artifacts_dir=empty, catalog=catalog_path) == [NAME]
