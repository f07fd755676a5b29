"""The cost models' feature cache: the same features as a fresh extraction, each distinct
schedule extracted once per task, tasks kept apart, and a bounded size.

Candidates are real (replayed from the session's tuned database, as in test_cost_model).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_cost_model import tiny_predictor

from tunezoo import feature_cache
from tunezoo.cost_model import TunezooCostModel
from tunezoo.feature_cache import CandidateFeatureCache
from tunezoo.features import features_of_candidates
from tunezoo.features import light_tune_context as make_context


@pytest.fixture(scope="module")
def workloads(tuned_workloads):
    """(context, candidates) of each tuned workload, the matmul (most records) first."""
    out = []
    for records in tuned_workloads:
        context = make_context(records[0].workload.mod, records[0].target)
        out.append((context, [r.as_measure_candidate() for r in records]))
    assert len(out) >= 2 and len(out[0][1]) >= 4
    return out


@pytest.fixture
def counted(monkeypatch):
    """Count how many candidates the cache really sends to the extractor."""
    sent: list[int] = []

    def extract(context, candidates):
        sent.append(len(candidates))
        return features_of_candidates(context, candidates)

    monkeypatch.setattr(feature_cache, "features_of_candidates", extract)
    return sent


def test_cached_features_equal_a_fresh_extraction_and_repeats_are_not_extracted(workloads, counted):
    context, candidates = workloads[0]
    batch = candidates + candidates[:2]  # a batch may hold the same schedule twice
    cache = CandidateFeatureCache()
    first = cache.features(context, batch)
    fresh = features_of_candidates(context, batch)
    assert len(first) == len(batch)
    for got, want in zip(first, fresh, strict=True):
        np.testing.assert_array_equal(got, want)
    distinct = len(cache)
    assert counted == [distinct] and distinct <= len(candidates)
    assert cache.misses == distinct and cache.hits == len(batch) - distinct
    again = cache.features(context, list(reversed(candidates)))
    assert counted == [distinct]  # nothing new extracted
    for got, want in zip(again, reversed(fresh[: len(candidates)]), strict=True):
        np.testing.assert_array_equal(got, want)


def test_tasks_do_not_share_entries(workloads, counted):
    (matmul, candidates), (other, _) = workloads[0], workloads[1]
    cache = CandidateFeatureCache()
    cache.features(matmul, candidates[:3])
    cache.features(other, candidates[:3])  # same schedules, another task: extracted again
    assert counted == [3, 3] and len(cache) == 6


def test_the_cache_is_bounded_and_drops_the_least_recently_used(workloads, counted):
    context, candidates = workloads[0]
    a, b, c = candidates[:3]
    cache = CandidateFeatureCache(max_entries=2)
    cache.features(context, [a, b])
    cache.features(context, [a])  # a is now the most recently used
    cache.features(context, [c])  # evicts b
    assert len(cache) == 2
    cache.features(context, [a])
    assert counted == [2, 1]
    cache.features(context, [b])
    assert counted == [2, 1, 1]
    with pytest.raises(ValueError, match="max_entries"):
        CandidateFeatureCache(max_entries=0)


def test_the_cost_model_reports_cache_hits_across_predict_calls(workloads):
    context, candidates = workloads[0]
    model = TunezooCostModel(tiny_predictor())
    first = model.predict(context, candidates)
    second = model.predict(context, candidates)
    np.testing.assert_array_equal(first, second)
    stats = model.stats()
    assert stats["feature_cache_misses"] == stats["feature_cache_entries"] <= len(candidates)
    assert stats["feature_cache_hits"] >= len(candidates)
    model.reset_stats()
    assert model.stats()["feature_cache_hits"] == 0
