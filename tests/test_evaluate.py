"""Ranking metrics: hand-computed answers and every kind of bad input.

Latencies are in seconds (lower is faster); scores are predictions (higher = predicted
faster). Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from tunezoo.evaluate import (
    METRICS_DOC,
    MetricInputError,
    average_peak_score,
    evaluate_ranking,
    kendall_tau,
    normalized_throughput,
    pairwise_accuracy,
    top_k_score,
)

LAT = [1.0, 2.0, 3.0, 4.0]
ONE = ["a"] * 4


def test_perfect_ranking_scores_one_everywhere():
    scores = [4.0, 3.0, 2.0, 1.0]  # fastest scored highest
    m = evaluate_ranking(LAT, scores, ONE)
    for key in ("top1_score", "top5_score", "avg_peak_score@5", "avg_peak_score@10"):
        assert m[key] == 1.0, key
    assert m["pairwise_accuracy"] == 1.0
    assert m["pairwise_accuracy_pooled"] == 1.0
    assert m["kendall_tau"] == pytest.approx(1.0)
    assert (m["n_workloads"], m["n_candidates"]) == (1, 4)


def test_reversed_ranking():
    scores = [1.0, 2.0, 3.0, 4.0]  # the model ranks 4 s, 3 s, 2 s, 1 s
    # top-1 holds 4 s -> 1/4; top-2 best 3 s -> 1/3; top-3 -> 1/2; top-4 and up -> 1
    assert top_k_score(LAT, scores, ONE, 1) == pytest.approx(0.25)
    assert top_k_score(LAT, scores, ONE, 2) == pytest.approx(1 / 3)
    assert top_k_score(LAT, scores, ONE, 3) == pytest.approx(0.5)
    # avg peak@5 = (1/4 + 1/3 + 1/2 + 1 + 1) / 5 = 3.0833.../5 = 0.616666...
    assert average_peak_score(LAT, scores, ONE, 5) == pytest.approx(37 / 60)
    # avg peak@2 = (1/4 + 1/3) / 2 = 7/24
    assert average_peak_score(LAT, scores, ONE, 2) == pytest.approx(7 / 24)
    assert pairwise_accuracy(LAT, scores, ONE) == 0.0
    assert kendall_tau(LAT, scores, ONE) == pytest.approx(-1.0)
    m = evaluate_ranking(LAT, scores, ONE)
    assert m["top1_score"] == pytest.approx(0.25)
    assert m["top5_score"] == 1.0  # k=5 > 4 candidates: the whole group, so the best is in
    assert m["avg_peak_score@5"] == pytest.approx(37 / 60)


def test_weighted_mean_differs_from_plain_mean():
    lat = [1.0, 2.0, 1.0, 2.0]
    scores = [0.0, 1.0, 1.0, 0.0]  # workload a reversed (top-1 = 1/2), b perfect (top-1 = 1)
    groups = ["a", "a", "b", "b"]
    weights = {"a": 3, "b": 1}
    # plain: (0.5 + 1) / 2 = 0.75; weighted: (3 * 0.5 + 1 * 1) / 4 = 0.625
    assert top_k_score(lat, scores, groups, 1) == pytest.approx(0.75)
    assert top_k_score(lat, scores, groups, 1, weights=weights) == pytest.approx(0.625)
    # pairwise: a 0/1, b 1/1 -> weighted (3*0 + 1*1)/4 = 0.25; tau: (3*-1 + 1*1)/4 = -0.5
    assert pairwise_accuracy(lat, scores, groups, weights) == pytest.approx(0.25)
    assert kendall_tau(lat, scores, groups, weights) == pytest.approx(-0.5)
    m = evaluate_ranking(lat, scores, groups, weights=weights)
    assert m["top1_score"] == pytest.approx(0.625)
    assert m["n_workloads"] == 2
    # average_peak_score@2 per workload: a (1/2 + 1)/2 = 3/4, b 1 -> (3*3/4 + 1)/4 = 13/16
    assert average_peak_score(lat, scores, groups, 2, weights=weights) == pytest.approx(13 / 16)


def test_standard_errors_and_effective_workloads():
    lat = [1.0, 2.0, 1.0, 2.0]
    scores = [0.0, 1.0, 1.0, 0.0]  # top-1 per workload: a 1/2, b 1
    groups = ["a", "a", "b", "b"]
    plain = evaluate_ranking(lat, scores, groups)
    # v = (1/2, 1/2): sqrt(1/4 * 1/16 + 1/4 * 1/16) = sqrt(1/32)
    assert plain["top1_score_se"] == pytest.approx((1 / 32) ** 0.5)
    assert plain["effective_workloads"] == pytest.approx(2.0)
    weighted = evaluate_ranking(lat, scores, groups, weights={"a": 3, "b": 1})
    # v = (3/4, 1/4), mean 5/8: sqrt(9/16 * 1/64 + 1/16 * 9/64) = sqrt(18/1024)
    assert weighted["top1_score_se"] == pytest.approx((18 / 1024) ** 0.5)
    assert weighted["effective_workloads"] == pytest.approx(1 / (9 / 16 + 1 / 16))
    # pairwise per workload 0 and 1: same spread as top-1's doubled
    assert weighted["pairwise_accuracy_se"] == pytest.approx(2 * (18 / 1024) ** 0.5)
    # one workload: a mean with no spread to estimate
    assert math.isnan(evaluate_ranking([1.0, 2.0], [1.0, 0.0], ["a", "a"])["top1_score_se"])


def test_extra_weights_are_ignored_and_integer_group_ids_work():
    lat, scores, groups = [1.0, 2.0], [1.0, 0.0], [7, 7]
    assert top_k_score(lat, scores, groups, 1, weights={7: 2.0, 8: 5.0}) == 1.0


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_ties_in_score_are_broken_pessimistically_whatever_the_input_order(order):
    lat = np.array([1.0, 2.0, 3.0])[list(order)]
    scores = np.array([5.0, 5.0, 0.0])[list(order)]  # 1 s and 2 s tie at the top
    # the slower of the tie (2 s) ranks first: top-1 = 1/2, top-2 = 1
    assert top_k_score(lat, scores, ["w"] * 3, 1) == pytest.approx(0.5)
    assert top_k_score(lat, scores, ["w"] * 3, 2) == 1.0
    # pairs: (1 s, 2 s) tie in score -> wrong; (1 s, 3 s) and (2 s, 3 s) right -> 2/3
    assert pairwise_accuracy(lat, scores, ["w"] * 3) == pytest.approx(2 / 3)
    # tau-b = (C - D) / sqrt((n0 - ties_scores) * (n0 - ties_lat)) = 2 / sqrt(2 * 3)
    assert kendall_tau(lat, scores, ["w"] * 3) == pytest.approx(2 / math.sqrt(6))


def test_constant_model_gets_the_worst_case_not_a_lucky_one():
    lat, scores, groups = [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], ["w"] * 3
    assert top_k_score(lat, scores, groups, 1) == pytest.approx(1 / 3)  # slowest ranked first
    assert pairwise_accuracy(lat, scores, groups) == 0.0  # every pair is a tie in score
    assert kendall_tau(lat, scores, groups) == 0.0  # no ordering: 0, not NaN


def test_k_larger_than_group_uses_the_whole_group():
    lat, scores, groups = [1.0, 2.0, 5.0], [0.0, 1.0, 2.0], ["w"] * 3  # reversed
    assert top_k_score(lat, scores, groups, 3) == 1.0
    assert top_k_score(lat, scores, groups, 50) == 1.0
    # avg peak@4 = (1/5 + 1/2 + 1 + 1) / 4 = 2.7 / 4
    assert average_peak_score(lat, scores, groups, 4) == pytest.approx(0.675)


def test_groups_where_a_metric_is_undefined_are_left_out():
    # a: perfect, 3 candidates; b: one candidate; c: two equal latencies
    lat = [1.0, 2.0, 3.0, 7.0, 4.0, 4.0]
    scores = [3.0, 2.0, 1.0, 0.0, 1.0, 0.0]
    groups = ["a", "a", "a", "b", "c", "c"]
    assert pairwise_accuracy(lat, scores, groups) == 1.0  # only a has pairs that differ
    assert kendall_tau(lat, scores, groups) == pytest.approx(1.0)
    assert top_k_score(lat, scores, groups, 1) == 1.0  # defined (trivially) for b and c
    single = evaluate_ranking([1.0, 2.0], [0.0, 0.0], ["x", "y"])
    assert math.isnan(single["pairwise_accuracy"]) and math.isnan(single["kendall_tau"])
    assert single["top1_score"] == 1.0


def test_pooled_pairwise_accuracy_counts_pairs_not_workloads():
    # a: 3 candidates, perfect (3/3 pairs); b: 2 candidates, reversed (0/1)
    lat = [1.0, 2.0, 3.0, 1.0, 2.0]
    scores = [3.0, 2.0, 1.0, 0.0, 1.0]
    groups = ["a", "a", "a", "b", "b"]
    assert pairwise_accuracy(lat, scores, groups) == pytest.approx(0.5)  # (1 + 0) / 2
    assert pairwise_accuracy(lat, scores, groups, pooled=True) == pytest.approx(0.75)  # 3 / 4


def test_random_inputs_agree_with_brute_force_and_scipy():
    rng = np.random.default_rng(0)
    n = 300
    groups = rng.integers(0, 6, n)
    lat = rng.choice([1e-3, 2e-3, 3e-3, 4e-3, 5e-3], n)  # many latency ties
    scores = np.round(-lat * 1000 + rng.normal(0, 1.5, n))  # many score ties
    weights = {int(g): float(g + 1) for g in range(6)}
    want_pair, want_tau, want_top3 = [], [], []
    for g in range(6):
        sel = groups == g
        gl, gs = lat[sel], scores[sel]
        pairs = [(i, j) for i in range(len(gl)) for j in range(len(gl)) if gl[i] < gl[j]]
        want_pair.append(sum(gs[i] > gs[j] for i, j in pairs) / len(pairs))
        want_tau.append(scipy.stats.kendalltau(gs, -gl).statistic)
        ranked = sorted(range(len(gl)), key=lambda i: (-gs[i], -gl[i]))
        want_top3.append(gl.min() / min(gl[i] for i in ranked[:3]))
    w = np.arange(1, 7, dtype=float)
    m = evaluate_ranking(lat, scores, groups, weights=weights, ks=(3,))
    assert m["pairwise_accuracy"] == pytest.approx(np.average(want_pair, weights=w))
    assert m["kendall_tau"] == pytest.approx(np.average(want_tau, weights=w))
    assert m["top3_score"] == pytest.approx(np.average(want_top3, weights=w))
    assert m["top3_score"] == top_k_score(lat, scores, groups, 3, weights)


def test_large_group_pairs_are_subsampled_deterministically():
    rng = np.random.default_rng(1)
    n = 2100  # above the 2000-candidate cap
    lat = rng.uniform(1e-3, 1e-2, n)
    scores = -lat + rng.normal(0, 2e-3, n)
    groups = np.zeros(n, dtype=int)
    assert pairwise_accuracy(lat, -lat, groups) == 1.0
    got = pairwise_accuracy(lat, scores, groups)
    perm = rng.permutation(n)
    assert pairwise_accuracy(lat[perm], scores[perm], groups) == got  # same pairs drawn
    # all distinct latencies, no score ties: exact accuracy = (1 + tau) / 2
    exact = (1 + scipy.stats.kendalltau(scores, -lat).statistic) / 2
    assert got == pytest.approx(exact, abs=2e-3)


def test_normalized_throughput_is_best_over_latency_per_workload():
    got = normalized_throughput([2.0, 4.0, 1.0, 3.0], ["a", "a", "b", "b"])
    np.testing.assert_allclose(got, [1.0, 0.5, 1.0, 1 / 3])


def test_metrics_doc_states_the_averaging_and_tie_rule():
    assert "weighted arithmetic mean" in METRICS_DOC
    assert "pessimistic" in METRICS_DOC
    assert "2000" in METRICS_DOC


# ---------------------------------------------------------------------------- bad inputs

GOOD = {"latencies": [1.0, 2.0, 3.0], "scores": [0.3, 0.2, 0.1], "groups": ["a", "a", "b"]}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"scores": [0.3, float("nan"), 0.1]}, r"scores\[1\] = nan"),
        ({"scores": [0.3, float("inf"), 0.1]}, r"scores\[1\] = inf"),
        ({"latencies": [1.0, 2.0, -1.0]}, r"latencies\[2\] = -1\.0"),
        ({"latencies": [0.0, 2.0, 3.0]}, r"latencies\[0\] = 0\.0"),
        ({"latencies": [1.0, float("nan"), 3.0]}, r"latencies\[1\] = nan"),
        ({"latencies": [1.0, float("inf"), 3.0]}, r"latencies\[1\] = inf.*drop failed"),
        ({"latencies": [1.0, None, 3.0]}, r"latencies\[1\] = None"),
        ({"latencies": ["1.0", "2.0", "3.0"]}, r"latencies\[0\] = .*expected a number"),
        ({"latencies": [True, False, True]}, r"latencies: expected numbers"),
        ({"scores": [0.3, 0.2]}, r"scores: length 2, but latencies has length 3"),
        ({"groups": ["a", "a"]}, r"groups: length 2, but latencies has length 3"),
        ({"latencies": [[1.0, 2.0, 3.0]]}, r"latencies: expected a 1-D array, got shape"),
        ({"groups": [["a"], ["a"], ["b"]]}, r"groups: expected a 1-D array"),
        ({"latencies": [], "scores": [], "groups": []}, r"latencies: empty"),
        ({"groups": ["a", None, "b"]}, r"groups\[1\] = None"),
        ({"groups": [1.0, float("nan"), 2.0]}, r"groups\[1\] = .*nan"),
        ({"groups": ["a", 1, "b"]}, r"groups: ids of mixed types"),
        ({"weights": {"a": 1.0}}, r"weights: no weight for group 'b'"),
        ({"weights": {"a": 1.0, "b": 0.0}}, r"weights\['b'\] = 0\.0"),
        ({"weights": {"a": 1.0, "b": -2}}, r"weights\['b'\] = -2"),
        ({"weights": {"a": 1.0, "b": float("nan")}}, r"weights\['b'\] = nan"),
        ({"weights": {"a": 1.0, "b": True}}, r"weights\['b'\] = True"),
        ({"weights": [1.0, 1.0]}, r"weights: expected a mapping"),
    ],
)
def test_bad_inputs_name_argument_index_and_value(change, match):
    args = {**GOOD, **change}
    calls = [
        lambda: evaluate_ranking(**args),
        lambda: top_k_score(k=1, **args),
        lambda: average_peak_score(k=5, **args),
        lambda: pairwise_accuracy(**args),
        lambda: kendall_tau(**args),
    ]
    for call in calls:
        with pytest.raises(MetricInputError, match=match):
            call()


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "1"])
def test_bad_k_is_refused(k):
    with pytest.raises(MetricInputError, match=r"k = "):
        top_k_score(k=k, **GOOD)
    with pytest.raises(MetricInputError, match=r"k = "):
        average_peak_score(k=k, **GOOD)
    with pytest.raises(MetricInputError, match=r"ks = "):
        evaluate_ranking(**GOOD, ks=(1, k))


def test_normalized_throughput_checks_its_inputs():
    with pytest.raises(MetricInputError, match=r"latencies\[1\] = -3\.0"):
        normalized_throughput([1.0, -3.0], ["a", "a"])
    with pytest.raises(MetricInputError, match=r"groups: length 1"):
        normalized_throughput([1.0, 3.0], ["a"])
    with pytest.raises(MetricInputError, match=r"latencies: empty"):
        normalized_throughput([], [])


def test_metric_input_error_is_a_value_error():
    assert issubclass(MetricInputError, ValueError)
