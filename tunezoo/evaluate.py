"""Ranking metrics for cost models, with strict input checks.

A cost model is only ever used to *rank* candidate schedules of one workload, so tunezoo
reports ranking metrics per workload (never RMSE) and averages them over workloads with
the workloads' task weights. Every function takes plain arrays, one entry per candidate,
checks them all before computing anything, and raises :class:`MetricInputError` naming
the argument, the index and the value at fault: a silently propagated NaN would publish a
wrong number on a model card.

See :data:`METRICS_DOC` for the exact definitions (it is also what model cards quote).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

__all__ = [
    "MAX_PAIRS_PER_GROUP",
    "METRICS_DOC",
    "MetricInputError",
    "average_peak_score",
    "evaluate_ranking",
    "kendall_tau",
    "normalized_throughput",
    "pairwise_accuracy",
    "top_k_score",
]

# A group with more candidates than this has its pairs subsampled (see METRICS_DOC).
PAIR_CAP_CANDIDATES = 2000
MAX_PAIRS_PER_GROUP = PAIR_CAP_CANDIDATES * (PAIR_CAP_CANDIDATES - 1) // 2
_PAIR_SEED = 20261124

METRICS_DOC = """\
Inputs, one entry per candidate schedule:
  latencies  true mean latency in seconds; finite and > 0. Failed candidates (build or run
             errors, MetaSchedule's 1e10 sentinel) must be dropped by the caller: they have
             no latency, and passing them as +inf would silently reward models that rank
             them last. Non-finite or non-positive values raise MetricInputError.
  scores     model predictions, higher = predicted faster; finite.
  groups     workload id per candidate (any hashable ids of one type: str or int).
  weights    optional mapping workload id -> task weight (> 0, finite); default 1 for all.
             Every workload in `groups` needs a weight; extra keys are ignored.

Ranking inside a workload: candidates sorted by score, highest first. Ties in score are
broken pessimistically and deterministically: among equal scores the slower candidate
(larger true latency) is ranked first, so a model cannot profit from predicting ties.

Per-workload metrics, then averaged over workloads as a weighted arithmetic mean
  metric = sum_w weight_w * metric_w / sum_w weight_w
over the workloads where the metric is defined:
  top_k_score@k        best latency in the workload / best latency among the model's top-k
                       (1.0 = the top-k contains the best). k larger than the workload's
                       candidate count uses all of them (so the score is 1.0).
  average_peak_score@k mean over i = 1..k of top_i_score (TenSet's average peak score).
  pairwise_accuracy    fraction of candidate pairs with different true latencies that the
                       scores order correctly (faster one scored strictly higher); a tie in
                       score counts as wrong (pessimistic: a constant model scores 0, a random
                       one 0.5). Workloads with no such pair are left out. A workload with more
                       than 2000 candidates is scored on 1,999,000 pairs drawn uniformly
                       (with replacement, i != j) by a generator with a fixed seed from
                       the workload's candidates in ranked order: the result is
                       deterministic and independent of the input order. The pooled variant
                       divides correct pairs by all pairs over all workloads (unweighted).
  kendall_tau          scipy.stats.kendalltau(scores, -latencies) (tau-b) per workload with
                       at least 2 distinct latencies; a workload where all scores are equal
                       counts as 0.0 (the model gives no ordering), not as undefined.
A metric defined for no workload is NaN (e.g. pairwise accuracy when every workload has a
single candidate).

Uncertainty (evaluate_ranking only): every averaged metric m also gets m_se, the standard
error of its weighted mean with workloads as the sampled unit,
  m_se = sqrt(sum_w v_w^2 * (metric_w - metric)^2),  v_w = weight_w / sum_w weight_w,
and effective_workloads = 1 / sum_w v_w^2 (Kish's effective sample size over the workloads
of top1_score). Task weights concentrate a mean on a few heavy workloads: 66 held-out
workloads of llvm-znver4 count as about 15, and their top-1 score has a standard error
near 0.05, so differences between models smaller than that are not evidence.
"""


class MetricInputError(ValueError):
    """Inputs a metric cannot be computed on; the message names argument, index and value."""


@dataclass(frozen=True)
class _Ranked:
    """Checked inputs, sorted into the model's ranking inside each workload.

    ``lat``/``score`` are in ranked order: grouped by workload (``starts``/``sizes``), and
    inside a workload by descending score, slower first on ties. ``weights`` is per group.
    """

    lat: np.ndarray
    score: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    weights: np.ndarray
    group_ids: np.ndarray

    @property
    def n_groups(self) -> int:
        return len(self.starts)


# -------------------------------------------------------------------------------- checks


def _as_1d_float(name: str, values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except Exception as exc:  # ragged lists and the like
        raise MetricInputError(f"{name}: cannot be read as an array ({exc})") from exc
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.dtype == bool:
        raise MetricInputError(f"{name}: expected numbers, got booleans")
    if arr.dtype.kind not in "iuf":
        # object arrays of Python numbers are fine; strings, None and the like are not
        bad = next((i for i, v in enumerate(arr) if not _is_real(v)), None)
        if bad is not None:
            raise MetricInputError(f"{name}[{bad}] = {_show(arr[bad])}: expected a number")
    return arr.astype(np.float64, copy=False)


def _show(value: Any) -> str:
    """repr of a value as the user wrote it (numpy 2 would print ``np.float64(-1.0)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _id_kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, str | np.str_):
        return "str"
    if isinstance(value, float | np.floating):
        return "float"
    return type(value).__name__


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _check_latencies(latencies: Any) -> np.ndarray:
    lat = _as_1d_float("latencies", latencies)
    bad = np.flatnonzero(~(np.isfinite(lat) & (lat > 0)))
    if bad.size:
        i = int(bad[0])
        raise MetricInputError(
            f"latencies[{i}] = {_show(lat[i])}: expected a finite latency in seconds > 0 "
            f"({bad.size} such value(s)); drop failed candidates before evaluating"
        )
    return lat


def _check_scores(scores: Any) -> np.ndarray:
    score = _as_1d_float("scores", scores)
    bad = np.flatnonzero(~np.isfinite(score))
    if bad.size:
        i = int(bad[0])
        raise MetricInputError(
            f"scores[{i}] = {_show(score[i])}: expected a finite prediction "
            f"({bad.size} such value(s))"
        )
    return score


def _check_groups(groups: Any, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(unique group ids, group code per candidate)."""
    if not isinstance(groups, np.ndarray):
        # np.asarray(["a", 1]) would quietly turn 1 into "1": refuse mixed id types first
        try:
            values = list(groups)
        except TypeError as exc:
            raise MetricInputError(f"groups: expected a sequence of workload ids ({exc})") from exc
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                raise MetricInputError(f"groups[{i}] = {v!r}: not a workload id")
        kinds = {_id_kind(v) for v in values if not isinstance(v, list | tuple | np.ndarray)}
        if len(kinds) > 1:
            raise MetricInputError(
                f"groups: ids of mixed types {sorted(kinds)}; use one type (str or int)"
            )
        groups = values  # a generator is consumed by now
    try:
        arr = np.asarray(groups)
    except Exception as exc:
        raise MetricInputError(f"groups: cannot be read as an array ({exc})") from exc
    if arr.ndim != 1:
        raise MetricInputError(f"groups: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise MetricInputError("groups: empty; need at least one candidate")
    if n is not None and arr.size != n:
        raise MetricInputError(f"groups: length {arr.size}, but latencies has length {n}")
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise MetricInputError(f"groups[{bad[0]}] = {_show(arr[bad[0]])}: not a workload id")
    if arr.dtype == object:
        for i, v in enumerate(arr):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                raise MetricInputError(f"groups[{i}] = {v!r}: not a workload id")
    try:
        ids, codes = np.unique(arr, return_inverse=True)
    except TypeError as exc:
        raise MetricInputError(f"groups: ids of mixed types cannot be compared ({exc})") from exc
    return ids, codes.reshape(-1)


def _check_weights(weights: Mapping[Any, float] | None, ids: np.ndarray) -> np.ndarray:
    if weights is None:
        return np.ones(len(ids), dtype=np.float64)
    if not isinstance(weights, Mapping):
        raise MetricInputError(
            f"weights: expected a mapping workload id -> task weight, got {type(weights).__name__}"
        )
    out = np.empty(len(ids), dtype=np.float64)
    for j, gid in enumerate(ids.tolist()):
        if gid not in weights:
            raise MetricInputError(
                f"weights: no weight for group {gid!r} (group index {j}); every workload in "
                "`groups` needs a task weight"
            )
        w = weights[gid]
        if not _is_real(w) or not math.isfinite(w) or w <= 0:
            raise MetricInputError(
                f"weights[{gid!r}] = {_show(w)}: expected a finite task weight > 0"
            )
        out[j] = float(w)
    return out


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise MetricInputError(f"{name} = {_show(k)}: expected an integer >= 1")
    return int(k)


def _prepare(
    latencies: Any, scores: Any, groups: Any, weights: Mapping[Any, float] | None
) -> _Ranked:
    lat = _check_latencies(latencies)
    score = _check_scores(scores)
    if lat.size == 0:
        raise MetricInputError("latencies: empty; need at least one candidate")
    if score.size != lat.size:
        raise MetricInputError(f"scores: length {score.size}, but latencies has length {lat.size}")
    ids, codes = _check_groups(groups, lat.size)
    w = _check_weights(weights, ids)
    # lexsort: last key is primary -> by group, then score descending, then slower first
    order = np.lexsort((-lat, -score, codes))
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, sorted_codes.size])
    return _Ranked(lat[order], score[order], starts, sizes, w, ids)


# ------------------------------------------------------------------------------- metrics


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    defined = ~np.isnan(values)
    if not defined.any():
        return float("nan")
    return float(np.sum(values[defined] * weights[defined]) / np.sum(weights[defined]))


def _weighted_se(values: np.ndarray, weights: np.ndarray) -> float:
    """Standard error of :func:`_weighted_mean` over workloads (see METRICS_DOC)."""
    defined = ~np.isnan(values)
    if defined.sum() < 2:
        return float("nan")
    v = weights[defined] / np.sum(weights[defined])
    mean = float(np.sum(v * values[defined]))
    return float(np.sqrt(np.sum(v**2 * (values[defined] - mean) ** 2)))


def _rank_in_group(r: _Ranked) -> np.ndarray:
    return np.arange(r.lat.size) - np.repeat(r.starts, r.sizes)


def _top_k_per_group(r: _Ranked, k: int, rank: np.ndarray | None = None) -> np.ndarray:
    rank = _rank_in_group(r) if rank is None else rank
    best = np.minimum.reduceat(r.lat, r.starts)
    best_in_top = np.minimum.reduceat(np.where(rank < k, r.lat, np.inf), r.starts)
    return best / best_in_top


def _avg_peak_per_group(r: _Ranked, k: int) -> np.ndarray:
    rank = _rank_in_group(r)
    return np.mean([_top_k_per_group(r, i, rank) for i in range(1, k + 1)], axis=0)


def _pairs_per_group(r: _Ranked) -> tuple[np.ndarray, np.ndarray]:
    """(correct pairs, pairs with different latencies) per group; ties in score are wrong."""
    correct = np.zeros(r.n_groups, dtype=np.float64)
    total = np.zeros(r.n_groups, dtype=np.float64)
    for g, (start, size) in enumerate(zip(r.starts, r.sizes, strict=True)):
        if size < 2:
            continue
        lat = r.lat[start : start + size]
        score = r.score[start : start + size]
        if size <= PAIR_CAP_CANDIDATES:
            i, j = np.triu_indices(size, k=1)
        else:
            rng = np.random.default_rng(_PAIR_SEED)
            i = rng.integers(0, size, MAX_PAIRS_PER_GROUP)
            j = rng.integers(0, size - 1, MAX_PAIRS_PER_GROUP)
            j = j + (j >= i)  # uniform over j != i
        dl = lat[i] - lat[j]
        ds = score[i] - score[j]
        differ = dl != 0
        # i faster (dl < 0) must be scored strictly higher (ds > 0), and vice versa
        total[g] = np.count_nonzero(differ)
        correct[g] = np.count_nonzero(differ & (np.sign(ds) == -np.sign(dl)))
    return correct, total


def _tau_per_group(r: _Ranked) -> np.ndarray:
    taus = np.full(r.n_groups, np.nan)
    for g, (start, size) in enumerate(zip(r.starts, r.sizes, strict=True)):
        lat = r.lat[start : start + size]
        score = r.score[start : start + size]
        if size < 2 or np.all(lat == lat[0]):
            continue
        if np.all(score == score[0]):
            taus[g] = 0.0  # no ordering at all: not undefined, just uninformative
            continue
        taus[g] = scipy.stats.kendalltau(score, -lat).statistic
    return taus


# -------------------------------------------------------------------------------- public


def top_k_score(
    latencies: Any,
    scores: Any,
    groups: Any,
    k: int,
    weights: Mapping[Any, float] | None = None,
) -> float:
    """Weighted mean over workloads of best latency / best latency in the model's top-k.

    This is what tuning with the model costs: if MetaSchedule measures the model's top k
    candidates, how far from the best available schedule does it end up. Ties in score
    rank the slower candidate first (pessimistic); see :data:`METRICS_DOC`.
    """
    k = _check_k(k)
    r = _prepare(latencies, scores, groups, weights)
    return _weighted_mean(_top_k_per_group(r, k), r.weights)


def average_peak_score(
    latencies: Any,
    scores: Any,
    groups: Any,
    k: int,
    weights: Mapping[Any, float] | None = None,
) -> float:
    """TenSet's average peak score@k: the mean of top-i scores for i = 1..k, weighted mean
    over workloads. Less jumpy than top-k alone, since it credits finding the best early."""
    k = _check_k(k)
    r = _prepare(latencies, scores, groups, weights)
    return _weighted_mean(_avg_peak_per_group(r, k), r.weights)


def pairwise_accuracy(
    latencies: Any,
    scores: Any,
    groups: Any,
    weights: Mapping[Any, float] | None = None,
    *,
    pooled: bool = False,
) -> float:
    """Fraction of same-workload pairs with different latencies that the scores order
    correctly; weighted mean over workloads, or pooled over all pairs with ``pooled=True``.

    Ties in score count as wrong; workloads of more than 2000 candidates are scored on a
    deterministic sample of pairs (see :data:`METRICS_DOC`).
    """
    r = _prepare(latencies, scores, groups, weights)
    correct, total = _pairs_per_group(r)
    if pooled:
        return float(correct.sum() / total.sum()) if total.sum() else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        per_group = np.where(total > 0, correct / np.where(total > 0, total, 1), np.nan)
    return _weighted_mean(per_group, r.weights)


def kendall_tau(
    latencies: Any,
    scores: Any,
    groups: Any,
    weights: Mapping[Any, float] | None = None,
) -> float:
    """Kendall's tau-b between scores and -latencies per workload, weighted mean over the
    workloads with at least two distinct latencies (a constant model counts as 0.0)."""
    r = _prepare(latencies, scores, groups, weights)
    return _weighted_mean(_tau_per_group(r), r.weights)


def evaluate_ranking(
    latencies: Any,
    scores: Any,
    groups: Any,
    weights: Mapping[Any, float] | None = None,
    ks: Sequence[int] = (1, 5),
    peak_ks: Sequence[int] = (5, 10),
) -> dict[str, float | int]:
    """All ranking metrics at once, checking and sorting the inputs only once.

    Keys: ``top{k}_score`` for each k in ``ks``, ``avg_peak_score@{k}`` for each k in
    ``peak_ks``, ``pairwise_accuracy``, ``pairwise_accuracy_pooled``, ``kendall_tau``,
    ``n_workloads`` and ``n_candidates``; each averaged metric with its standard error
    (``<metric>_se``) and ``effective_workloads``. Undefined metrics are NaN (see
    METRICS_DOC).
    """
    ks = [_check_k(k, "ks") for k in ks]
    peak_ks = [_check_k(k, "peak_ks") for k in peak_ks]
    r = _prepare(latencies, scores, groups, weights)
    rank = _rank_in_group(r)
    out: dict[str, float | int] = {}
    per_workload: dict[str, np.ndarray] = {}
    for k in ks:
        per_workload[f"top{k}_score"] = _top_k_per_group(r, k, rank)
    top_i: dict[int, np.ndarray] = {}
    for k in peak_ks:
        for i in range(1, k + 1):
            if i not in top_i:
                top_i[i] = _top_k_per_group(r, i, rank)
        per_workload[f"avg_peak_score@{k}"] = np.mean([top_i[i] for i in range(1, k + 1)], axis=0)
    correct, total = _pairs_per_group(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_workload["pairwise_accuracy"] = np.where(
            total > 0, correct / np.where(total > 0, total, 1), np.nan
        )
    per_workload["kendall_tau"] = _tau_per_group(r)
    for name, values in per_workload.items():
        out[name] = _weighted_mean(values, r.weights)
    out["pairwise_accuracy_pooled"] = (
        float(correct.sum() / total.sum()) if total.sum() else float("nan")
    )
    for name, values in per_workload.items():
        out[f"{name}_se"] = _weighted_se(values, r.weights)
    v = r.weights / r.weights.sum()
    out["effective_workloads"] = float(1.0 / np.sum(v**2))
    out["n_workloads"] = int(r.n_groups)
    out["n_candidates"] = int(r.lat.size)
    return out


def normalized_throughput(latencies: Any, groups: Any) -> np.ndarray:
    """The training label: best latency in the candidate's workload / its latency, in
    (0, 1], in the input order. Per-workload normalisation makes workloads whose run times
    differ by orders of magnitude comparable, which is all a ranking model needs."""
    lat = _check_latencies(latencies)
    if lat.size == 0:
        raise MetricInputError("latencies: empty; need at least one candidate")
    _, codes = _check_groups(groups, lat.size)
    best = np.full(codes.max() + 1, np.inf)
    np.minimum.at(best, codes, lat)
    return best[codes] / lat
