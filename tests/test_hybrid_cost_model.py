"""The hybrid cost model: a tunezoo prior handing over to an online XGBoost per workload,
by each model's accuracy on measurements it had not seen (issue 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cost_model import (
    assert_tampered_and_missing_saves_are_refused,
    every_workload,
    measured,
    tiny_predictor,
    tune_small_matmul,
)
from test_meta_cost_model import META_NAME, tiny_init

from tunezoo.cost_model import TunezooCostModel, _workload_key, positive_scores, run_latency
from tunezoo.hybrid_cost_model import ExpertWeights, HybridCostModel, pair_counts
from tunezoo.loading import load_predictor
from tunezoo.meta_cost_model import MetaAdaptiveCostModel
from tunezoo.predictor import PredictorFormatError

__all__ = ["every_workload", "measured"]  # fixtures shared with test_cost_model

INF = float("inf")


# ------------------------------------------------------------------ the weighting rule


def test_pair_counts_on_hand_made_batches():
    lat = np.array([1.0, 2.0, 3.0])
    assert pair_counts(np.array([3.0, 2.0, 1.0]), lat) == (3.0, 3)  # perfect order
    assert pair_counts(np.array([1.0, 2.0, 3.0]), lat) == (0.0, 3)  # reversed
    assert pair_counts(np.array([3.0, 1.0, 2.0]), lat) == (2.0, 3)  # one pair swapped
    # equal latencies and two failures say nothing; a failure is slower than any run
    assert pair_counts(np.array([1.0, 2.0]), np.array([5.0, 5.0])) == (0.0, 0)
    assert pair_counts(np.array([1.0, 2.0]), np.array([INF, INF])) == (0.0, 0)
    assert pair_counts(np.array([2.0, 1.0]), np.array([1.0, INF])) == (1.0, 1)
    assert pair_counts(np.array([1.0, 1.0]), np.array([1.0, 2.0])) == (0.5, 1)  # tie: half


def test_expert_weights_follow_accuracy_above_chance_over_a_window():
    experts = ExpertWeights(window=2)
    assert experts.weights("w") == {"prior": 1.0, "online": 0.0}  # no evidence: the prior
    experts.record("w", "prior", 70, 100)
    assert experts.weights("w") == {"prior": 1.0, "online": 0.0}
    experts.record("w", "online", 50, 100)  # chance: no weight
    assert experts.weights("w")["online"] == pytest.approx(0.0, abs=0.01)
    experts.record("w", "online", 90, 100)  # (140 + 1) / 202 = 0.698 vs (70 + 1) / 102
    w = experts.weights("w")
    assert w["online"] == pytest.approx(0.198 / (0.198 + 0.196), abs=0.01)
    assert w["prior"] + w["online"] == pytest.approx(1.0)
    experts.record("w", "online", 95, 100)  # the chance-level batch leaves the window
    assert experts.weights("w")["online"] > 0.6
    assert experts.weights("other") == {"prior": 1.0, "online": 0.0}  # per workload
    experts.record("w", "online", 0, 0)  # a batch without informative pairs is ignored
    assert experts.accuracy("w", "online") == pytest.approx((185 + 1) / 202)
    both_bad = ExpertWeights()
    both_bad.record("w", "prior", 10, 100)
    both_bad.record("w", "online", 20, 100)
    assert both_bad.weights("w") == {"prior": 1.0, "online": 0.0}
    restored = ExpertWeights(window=2)
    restored.restore(json.loads(json.dumps(experts.state())))
    assert restored.weights("w") == experts.weights("w")
    with pytest.raises(ValueError, match="not one of"):
        experts.record("w", "xgb", 1, 2)


# ------------------------------------------------------------ on real tuned candidates


def _batches(m, size: int):
    for i in range(0, len(m.candidates), size):
        yield m.candidates[i : i + size], m.results[i : i + size]


def test_online_model_is_scored_out_of_sample_and_mixed_by_its_weight(measured):
    model = HybridCostModel(TunezooCostModel(tiny_predictor()), min_online=4)
    key = _workload_key(measured.context)
    batches = list(_batches(measured, 4))
    assert len(batches) >= 3
    before = model.predict(measured.context, measured.candidates)
    np.testing.assert_allclose(  # no measurements yet: the prior alone
        before,
        positive_scores(
            model.prior.raw_scores(key, model._features(measured.context, measured.candidates))
        ),
    )
    judged = {"prior": 0, "online": 0}
    for cands, results in batches:
        informative = pair_counts(
            np.zeros(len(cands)), np.array([run_latency(r) for r in results])
        )[1]
        if informative:  # the prior is judged on every batch; the online model from the
            judged["prior"] += 1  # one after its first training: both before learning it
            judged["online"] += model.stats()["online_trainings"] > 0
        model.update(measured.context, cands, results)
        assert model.stats()["online_trainings"] >= 1  # four measurements were enough
        for name, count in judged.items():
            assert len(model.experts._seen.get(key, {}).get(name, ())) == min(count, model.window)
    assert model.experts.accuracy(key, "online") is not None
    mats = model._features(measured.context, measured.candidates)
    w = model.weights(measured.context)
    assert set(w) == {"prior", "online"} and w["prior"] + w["online"] == pytest.approx(1.0)
    scale = model._scales[key]
    want = (
        w["prior"] * model.prior.raw_scores(key, mats) / scale["prior"]
        + w["online"] * model._online_scores(mats) / scale["online"]
    )
    got = model.predict(measured.context, measured.candidates)
    np.testing.assert_allclose(got, positive_scores(want), rtol=1e-6)
    stats = model.stats()
    assert stats["update_calls"] == len(batches) and stats["workloads"] == 1
    assert stats["total_seconds"] >= stats["feature_seconds"] > 0


def test_save_and_load_restore_the_same_scores(every_workload, tmp_path):
    model = HybridCostModel(MetaAdaptiveCostModel(tiny_init()), min_online=4)
    for m in every_workload:
        for cands, results in _batches(m, 4):
            model.update(m.context, cands, results)
    first = every_workload[0]
    trainings = model.stats()["online_trainings"]
    model.update(first.context, first.candidates[:1], first.results[:1])  # too little to retrain
    assert model.stats()["online_trainings"] == trainings
    assert model._online_trained_on < sum(len(m) for m in model._mats.values())
    want = [model.predict(m.context, m.candidates) for m in every_workload]
    path = tmp_path / "run" / "hybrid.safetensors"
    model.save(str(path))
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["mode"] == "hybrid" and sidecar["prior_mode"] == "meta-adaptive"

    fresh = HybridCostModel(MetaAdaptiveCostModel(tiny_init(seed=1)))
    assert not np.allclose(
        fresh.predict(every_workload[0].context, every_workload[0].candidates), want[0]
    )
    fresh.load(str(path))
    for m, scores in zip(every_workload, want, strict=True):
        np.testing.assert_allclose(fresh.predict(m.context, m.candidates), scores, rtol=1e-5)
    assert fresh.stats()["update_calls"] == model.stats()["update_calls"]
    assert fresh.min_online == 4
    plain_prior = HybridCostModel(TunezooCostModel(tiny_predictor(), mode="adaptive"))
    with pytest.raises(PredictorFormatError, match="meta-adaptive prior"):
        plain_prior.load(str(path))
    assert_tampered_and_missing_saves_are_refused(fresh.load, path, tmp_path)


def test_load_predictor_hybrid_wraps_the_meta_adaptive_init(tmp_path, unpublished):
    root = tmp_path / "artifacts"
    tiny_init().save(root / META_NAME)
    model = load_predictor("llvm-znver4", mode="hybrid", artifacts_dir=root, min_online=8)
    assert isinstance(model, HybridCostModel) and model.min_online == 8
    assert isinstance(model.prior, MetaAdaptiveCostModel)
    assert model.prior.init.metadata["tunezoo_source"]["name"] == META_NAME
    with pytest.raises(TypeError, match="prior must be"):
        HybridCostModel("xgb")


@pytest.mark.tvm_measure
def test_tune_tir_with_the_hybrid_model(tmp_path: Path):
    model = HybridCostModel(MetaAdaptiveCostModel(tiny_init()), min_online=4)
    db = tune_small_matmul(model, tmp_path)
    stats = model.stats()
    assert stats["update_calls"] >= 2 and stats["online_trainings"] >= 1
    assert stats["predict_calls"] > stats["update_calls"]
    assert stats["prior"]["adaptations"] >= 1  # the prior kept adapting inside the hybrid
    (key,) = stats["weights"]
    assert model.experts.accuracy(key, "online") is not None  # judged on the second batch
    assert len(db.get_all_tuning_records()) >= 8
