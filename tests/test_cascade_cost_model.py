"""The cascade cost model: a trace-token screen, a per-store ranker for the screen's best.

Candidates are real (the session's tuned database, replayed); predictors are tiny real
ones with random weights: these tests check what is computed for which candidate and how
scores combine, not how good a trained model is.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tvm.s_tir import meta_schedule as ms

from tunezoo.cascade_cost_model import CascadeCostModel
from tunezoo.cost_model import TunezooCostModel, positive_scores
from tunezoo.feature_kinds import PER_STORE, TRACE
from tunezoo.features import features_of_candidates
from tunezoo.features import light_tune_context as make_context
from tunezoo.measure import MeasureSettings
from tunezoo.meta import META_KEY
from tunezoo.meta_cost_model import MetaAdaptiveCostModel
from tunezoo.models import build_model
from tunezoo.predictor import FeatureVersionError, Predictor, PredictorFormatError
from tunezoo.screening import MIN_FIT, estimate_unrefined, screened_scores
from tunezoo.targets import detect_target
from tunezoo.trace_features import trace_tokens, workload_blocks
from tunezoo.tuning import tune

KEY = "llvm-znver4"


def tiny(kind, seed: int) -> Predictor:
    torch.manual_seed(seed)
    model = build_model("segsum-mlp", {"in_dim": kind.dim, "hidden": 16, "layers": 2})
    return Predictor(model, torch.zeros(kind.dim), torch.ones(kind.dim), KEY, kind.version)


def tiny_init(seed: int) -> Predictor:
    init = tiny(PER_STORE, seed)
    init.metadata[META_KEY] = {
        "algorithm": "fomaml",
        "inner_lr": 0.05,
        "inner_steps": 5,
        "support_k": 16,
        "loss": "lambdarank",
    }
    return init


@pytest.fixture(scope="module")
def matmul_candidates(tuned_workloads):
    """The tuned matmul's records as MeasureCandidates, with their context."""
    records = tuned_workloads[0]
    context = make_context(records[0].workload.mod, records[0].target)
    return context, [r.as_measure_candidate() for r in records]


def test_the_screen_reads_traces_and_the_ranker_does_not():
    with pytest.raises(FeatureVersionError, match="screen must read trace tokens"):
        CascadeCostModel(tiny(PER_STORE, 0), tiny(PER_STORE, 1))
    with pytest.raises(FeatureVersionError, match="nothing would be refined"):
        CascadeCostModel(tiny(TRACE, 0), tiny(TRACE, 1))
    with pytest.raises(ValueError, match="refine_fraction"):
        CascadeCostModel(tiny(TRACE, 0), tiny(PER_STORE, 1), refine_fraction=0.0)
    with pytest.raises(TypeError, match="ranker must be"):
        CascadeCostModel(tiny(TRACE, 0), "xgb")


def test_only_the_screens_best_get_per_store_features_and_the_rankers_score(
    matmul_candidates,
):
    context, candidates = matmul_candidates
    n = len(candidates)
    assert n >= 8
    screen, ranker = tiny(TRACE, 0), tiny(PER_STORE, 1)
    model = CascadeCostModel(screen, ranker, refine_fraction=0.25, min_refine=2)
    scores = model.predict(context, candidates)
    assert scores.shape == (n,) and (scores > 0).all() and np.isfinite(scores).all()
    blocks = workload_blocks(context.mod)
    screen_raw = screen.score_matrices([trace_tokens(str(c.sch.trace), blocks) for c in candidates])
    ranker_raw = ranker.score_matrices(features_of_candidates(context, candidates))
    texts = [str(c.sch.trace) for c in candidates]
    distinct = {t: i for i, t in reversed(list(enumerate(texts)))}  # first index per schedule
    budget = max(2, math.ceil(0.25 * n))
    best = sorted(distinct.values(), key=lambda i: -screen_raw[i])[:budget]
    # the screen's best distinct schedules score as the ranker scores them ...
    for i in best:
        assert scores[i] == pytest.approx(positive_scores(ranker_raw[i : i + 1])[0], rel=1e-5)
    stats = model.stats()
    assert stats["refined_candidates"] == len(best)
    assert stats["ranker_feature_cache_misses"] == len(best)  # ... and only they were lowered
    assert stats["screen_feature_cache_misses"] == len(distinct)
    # the others are estimates, below the screen's best as the screen orders them
    rest = [i for i in range(n) if texts[i] not in {texts[j] for j in best}]
    assert rest and max(scores[i] for i in rest) <= max(scores[i] for i in best)
    # asked again: the next best by the screen are refined, the refined keep their scores
    again = model.predict(context, candidates)
    refined = min(2 * len(best), len(distinct))
    assert model.stats()["refined_candidates"] == refined
    assert model.stats()["ranker_feature_cache_misses"] == refined
    assert np.allclose(again[best], scores[best])


def test_unrefined_candidates_get_the_screens_estimate_of_the_rankers_score():
    screen = np.array([-1.0, 0.0, 3.0])
    # too few refined for a line: below every refined score, in the screen's order
    est = estimate_unrefined(screen, np.array([0.0, 1.0]), np.array([5.0, 7.0]))
    assert (est < 4.0).all() and est[0] < est[1] < est[2]
    xs = np.linspace(-2, 2, MIN_FIT)
    ys = 3.0 * xs + 1.0 + np.tile([0.5, -0.5], MIN_FIT // 2)
    slope, intercept = np.polyfit(xs, ys, 1)
    sd = (ys - (slope * xs + intercept)).std()
    assert sd > 0
    est = estimate_unrefined(np.array([-1.0]), xs, ys)[0]
    assert est == pytest.approx(-slope + intercept - sd)
    # ...but never above the refined median, however high the screen scores it
    assert estimate_unrefined(np.array([50.0]), xs, ys)[0] == pytest.approx(np.median(ys))


def test_a_falling_line_is_not_extrapolated_to_the_screens_rejects():
    """The screen's best, refined, disagree with the ranker in sign (seen in a real
    session): the candidates the screen rejected must not outrank what the ranker scored."""
    xs = np.linspace(2.0, 3.0, 2 * MIN_FIT)  # the top slice of the screen's range
    ys = -2.0 * xs + np.tile([0.3, -0.3], MIN_FIT)
    assert np.polyfit(xs, ys, 1)[0] < 0
    rejects = np.linspace(-3.0, 1.9, 20)
    est = estimate_unrefined(rejects, xs, ys)
    assert (est <= np.median(ys)).all()
    assert np.allclose(est, est[0])  # a flat line: the screen's order says nothing here
    assert est[0] == pytest.approx(ys.mean() - ys.std())


def test_offline_each_workload_is_one_call_with_its_screens_best_refined():
    """Two workloads of 40: the 10 the screen ranks best in each keep the ranker's score,
    the rest are estimated below their workload's refined median (and so never top it)."""
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1], 40)
    screen, ranker = rng.normal(size=80), rng.normal(size=80) + 5 * groups
    scores = screened_scores(screen, ranker, groups, refine_fraction=0.25, min_refine=4)
    for g in (0, 1):
        idx = np.flatnonzero(groups == g)
        best = idx[np.argsort(-screen[idx])[:10]]
        rest = np.setdiff1d(idx, best)
        assert np.array_equal(scores[best], ranker[best])
        assert (scores[rest] <= np.median(ranker[best]) + 1e-12).all()
        assert idx[scores[idx].argmax()] in best  # a refined one tops its workload
    assert np.array_equal(screened_scores(screen, ranker, groups, refine_fraction=1.0), ranker)
    with pytest.raises(ValueError, match="differ in length: 80, 79, 80"):
        screened_scores(screen, ranker[:-1], groups)


def test_save_and_load_keep_both_predictors(matmul_candidates, tmp_path):
    context, candidates = matmul_candidates
    model = CascadeCostModel(tiny(TRACE, 0), tiny(PER_STORE, 1), refine_fraction=0.5)
    scores = model.predict(context, candidates)
    model.save(str(tmp_path / "cascade"))
    other = CascadeCostModel(tiny(TRACE, 5), tiny(PER_STORE, 6), refine_fraction=0.1)
    other.load(str(tmp_path / "cascade"))
    assert other.refine_fraction == 0.5
    assert other.stats()["predict_calls"] == 1  # its own counts, like its parts'
    assert other.stats()["refined_candidates"] == model.stats()["refined_candidates"]
    assert np.allclose(other.predict(context, candidates), scores)
    (tmp_path / "broken").write_text("{}")
    with pytest.raises(PredictorFormatError, match="tunezoo_cascade_format"):
        other.load(str(tmp_path / "broken"))
    learning = CascadeCostModel(tiny(TRACE, 0), MetaAdaptiveCostModel(tiny_init(1)))
    with pytest.raises(PredictorFormatError, match="TunezooCostModel ranker"):
        learning.load(str(tmp_path / "cascade"))


def test_a_learning_ranker_learns_from_every_measurement_and_rescores_refined_ones(
    matmul_candidates,
):
    """With meta-adaptive as the ranker, update() adapts it, and the next call scores the
    refined candidates with the adapted weights; the screen never changes."""
    context, candidates = matmul_candidates
    init = tiny_init(1)
    ranker = MetaAdaptiveCostModel(init)
    model = CascadeCostModel(tiny(TRACE, 0), ranker, refine_fraction=1.0)
    before = model.predict(context, candidates)
    keys, screen_before = model.screen.keyed_raw_scores(context, candidates)
    rng = np.random.default_rng(0)
    results = [
        ms.runner.RunnerResult([float(x)], None) for x in rng.uniform(1e-4, 1e-3, len(candidates))
    ]
    model.update(context, candidates, results)
    assert ranker.stats()["adaptations"] == 1 and model.stats()["update_calls"] == 1
    after = model.predict(context, candidates)
    assert not np.allclose(after, before)  # everything was refined: all rescored
    _, adapted = ranker.keyed_raw_scores(context, candidates)
    assert np.allclose(after, positive_scores(adapted))
    assert np.array_equal(model.screen.keyed_raw_scores(context, candidates)[1], screen_before)


@pytest.mark.tvm_measure
def test_a_tuning_session_with_the_cascade(tmp_path):
    key = detect_target(prefer_gpu=False)
    model = CascadeCostModel(tiny(TRACE, 0), tiny(PER_STORE, 1))
    result = tune(
        "matmul-64",
        target_key=key,
        trials=16,
        predictor=model,
        work_dir=tmp_path,
        num_trials_per_iter=8,
        num_cores=1,
        settings=MeasureSettings(number=2, repeat=2, min_repeat_ms=1),
        population_size=64,
        progress=False,
    )
    assert result.trials == 16 and math.isfinite(result.best_latency_s)
    stats = result.cost_model_stats
    assert stats["mode"] == "screened" and stats["ranker_mode"] == "frozen"
    assert stats["update_calls"] == 2
    assert 0 < stats["refined_candidates"] < stats["screen_feature_cache_misses"]
    assert stats["total_seconds"] >= stats["screen_seconds"] + stats["ranker_seconds"] > 0


def test_a_target_means_its_per_store_predictor_and_screen_adds_its_trace_one(
    tmp_path, unpublished
):
    """With a trace predictor named to sort first, the target key still resolves to the
    per-store one; screen=True puts that target's trace predictor in front, for frozen and
    meta-adaptive alike; without a screen to find, the error says how to make one."""
    from tunezoo.loading import (  # noqa: PLC0415
        NoPredictorError,
        load_predictor,
        resolve_predictor,
        screen_for,
    )

    root = tmp_path / "artifacts"
    tiny(TRACE, 0).save(root / f"a-trace.{KEY}")
    tiny(PER_STORE, 1).save(root / f"segsum-mlp.{KEY}")
    tiny_init(2).save(root / "segsum-mlp.meta-llvm-x86")
    assert resolve_predictor(KEY, artifacts_dir=root).name == f"segsum-mlp.{KEY}"
    assert screen_for(f"segsum-mlp.{KEY}", artifacts_dir=root) == f"a-trace.{KEY}"
    model = load_predictor(KEY, artifacts_dir=root, screen=True, refine_fraction=0.5)
    assert isinstance(model, CascadeCostModel) and model.refine_fraction == 0.5
    assert isinstance(model.ranker, TunezooCostModel) and model.ranker.mode == "frozen"
    assert model.screen.predictor.metadata["tunezoo_source"]["name"] == f"a-trace.{KEY}"
    assert model.ranker.predictor.metadata["tunezoo_source"]["name"] == f"segsum-mlp.{KEY}"
    meta = load_predictor(KEY, artifacts_dir=root, mode="meta-adaptive", screen=True)
    assert isinstance(meta.ranker, MetaAdaptiveCostModel)
    assert meta.screen.predictor.metadata["tunezoo_source"]["name"] == f"a-trace.{KEY}"
    with pytest.raises(ValueError, match="cannot be screened"):
        load_predictor(KEY, artifacts_dir=root, mode="hybrid", screen=True)
    with pytest.raises(ValueError, match="need screen=True"):
        load_predictor(KEY, artifacts_dir=root, refine_fraction=0.5)
    lone = tmp_path / "lone"
    tiny(PER_STORE, 1).save(lone / f"segsum-mlp.{KEY}")
    with pytest.raises(NoPredictorError, match="tunezoo train --features trace"):
        load_predictor(KEY, artifacts_dir=lone, screen=True)
