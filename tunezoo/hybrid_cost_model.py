"""A pretrained prior handing over to an online XGBoost model as a session measures more.

The tuning benchmarks show two regimes. Early in a session (16-64 trials) a pretrained
predictor or meta-initialisation finds fast schedules in several times fewer trials than
MetaSchedule's XGBoost, which predicts at random until it has 100 measurements. Late in a
long session (192 trials, ``scripts/results/bench_tuning-192*``) XGBoost, trained only on
the workload at hand, catches up and can overtake: a prior adapted with a few gradient
steps fits one workload less closely than a model fitted to nothing else.

:class:`HybridCostModel` scores with both and lets the evidence decide the mix. Before any
model learns from a measured batch, both rank that batch (which neither has seen), and
each one's pairwise accuracy on it is kept per workload over the last few batches. The
weight of a model is how far that accuracy is above chance (0.5), so the prior carries a
workload until the online model ranks its new measurements as well, and a model that
ranks worse than chance gets no weight at all. Scores are standardised per workload (by
the spread of each model's scores over that workload's measured candidates, fixed until
the next update) so that neither model's scale decides the mix; between two updates
every candidate keeps one score, which MetaSchedule's search needs (it compares scores of
different ``predict`` calls).

Measured (``scripts/results/bench_tuning-192-hybrid.md``, 4 workloads x 3 seeds x 192
trials): no gain over meta-adaptive tuning alone, which already stays level with XGBoost
at 192 trials; the hybrid was slightly behind it early and cost 2.4 points more of the
wall time. It is kept as a measured option (and a baseline for longer sessions, where an
online model has more to learn from), not as the recommended mode.

The online model is MetaSchedule's own ``XGBModel`` (pack-sum over per-store features,
retrained when the data grew by a fifth, as in MetaSchedule), fed from the prior's feature
cache, so no candidate's features are extracted twice. ``save`` stores the prior and the
measured data; ``load`` retrains the online model from that data (no booster file, and
nothing is unpickled).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.cost_model import PyCostModel

from tunezoo.cost_model import (
    SAVE_FORMAT,
    TunezooCostModel,
    _direct_python_calls,
    _read_sidecar,
    _start_update,
    _workload_key,
    _write_sidecar,
    measurements_from_tensors,
    measurements_to_tensors,
    positive_scores,
    run_latency,
)
from tunezoo.feature_kinds import PER_STORE
from tunezoo.meta_cost_model import MetaAdaptiveCostModel
from tunezoo.predictor import FeatureVersionError, PredictorFormatError

MODE = "hybrid"
HYBRID_SETTINGS = ("window", "min_online", "xgb_threads")  # keyword settings of the class
FORMAT_KEY = "tunezoo_hybrid_cost_model_format"
PRIOR_SUFFIX = ".prior"
# MetaSchedule's XGBModel stores a failed run as 1e10 s; a throughput ratio of 0 either way
FAILED_COST_S = 1e10


def pair_counts(scores: np.ndarray, latencies: np.ndarray) -> tuple[float, int]:
    """(correctly ordered pairs, pairs) of one measured batch: higher score = faster.

    Pairs of equal latency, and pairs of two failures, say nothing about ranking and are
    left out; a failure (infinite latency) is slower than any run. Tied scores count half.
    """
    s = np.asarray(scores, dtype=np.float64)
    lat = np.asarray(latencies, dtype=np.float64)
    i, j = np.triu_indices(len(s), k=1)
    informative = lat[i] != lat[j]
    i, j = i[informative], j[informative]
    if len(i) == 0:
        return 0, 0
    faster_i = lat[i] < lat[j]
    ds = s[i] - s[j]
    agree = np.where(ds == 0, 0.5, ((ds > 0) == faster_i).astype(np.float64))
    return float(agree.sum()), len(i)


class ExpertWeights:
    """Per-workload weights of the prior and the online model from their recent accuracy.

    ``window`` batches are remembered per model and workload. A model's weight is
    ``max(accuracy - 0.5, 0)`` with accuracy ``(correct + 1) / (pairs + 2)`` (a batch of
    evidence moves it, one lucky pair does not); weights are normalised to sum to 1, and a
    model without evidence on a workload has weight 0 there. With no evidence at all the
    prior alone scores.
    """

    MODELS = ("prior", "online")

    def __init__(self, window: int = 4) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._seen: dict[str, dict[str, deque[tuple[float, int]]]] = {}

    def record(self, workload: str, model: str, correct: float, pairs: int) -> None:
        if model not in self.MODELS:
            raise ValueError(f"model {model!r} is not one of {self.MODELS}")
        if pairs == 0:
            return
        per_model = self._seen.setdefault(
            workload, {m: deque(maxlen=self.window) for m in self.MODELS}
        )
        per_model[model].append((float(correct), int(pairs)))

    def accuracy(self, workload: str, model: str) -> float | None:
        batches = self._seen.get(workload, {}).get(model)
        if not batches:
            return None
        correct = sum(c for c, _ in batches)
        pairs = sum(p for _, p in batches)
        return (correct + 1) / (pairs + 2)

    def weights(self, workload: str) -> dict[str, float]:
        raw = {}
        for model in self.MODELS:
            acc = self.accuracy(workload, model)
            raw[model] = 0.0 if acc is None else max(acc - 0.5, 0.0)
        total = sum(raw.values())
        if total == 0:
            return {"prior": 1.0, "online": 0.0}
        return {m: w / total for m, w in raw.items()}

    def state(self) -> dict[str, dict[str, list[list[float]]]]:
        return {
            w: {m: [list(b) for b in d] for m, d in per.items()} for w, per in self._seen.items()
        }

    def restore(self, state: dict[str, dict[str, list[list[float]]]]) -> None:
        self._seen = {}
        for workload, per in state.items():
            for model, batches in per.items():
                for correct, pairs in batches:
                    self.record(workload, model, correct, pairs)


def _spread(scores: np.ndarray) -> float:
    """The scale a model's scores are divided by on one workload (1 if they are flat)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    std = float(s.std()) if len(s) > 1 else 0.0
    return std if std > 1e-12 else 1.0


@_direct_python_calls
@derived_object
class HybridCostModel(PyCostModel):
    """A tunezoo cost model (the prior) and MetaSchedule's XGBoost, mixed per workload by
    how well each ranked the session's newest measurements (see the module docstring).

    ``prior`` is a :class:`~tunezoo.cost_model.TunezooCostModel` (frozen or adaptive) or a
    :class:`~tunezoo.meta_cost_model.MetaAdaptiveCostModel`; it keeps learning the way it
    would alone. ``min_online`` measurements of a workload are needed before the online
    model is trained on it.
    """

    def __init__(
        self,
        prior: TunezooCostModel | MetaAdaptiveCostModel,
        *,
        window: int = 4,
        min_online: int = 16,
        xgb_threads: int = 1,
    ) -> None:
        if not isinstance(prior, TunezooCostModel | MetaAdaptiveCostModel):
            raise TypeError(
                "prior must be a TunezooCostModel or MetaAdaptiveCostModel, got "
                f"{type(prior).__name__}"
            )
        if min_online < 2:
            raise ValueError("min_online must be at least 2")
        weights = prior.init if isinstance(prior, MetaAdaptiveCostModel) else prior.predictor
        if weights.feature_version != PER_STORE.version:
            raise FeatureVersionError(
                "the online XGBoost model reads per-store features from the prior's cache, "
                f"but the prior reads {weights.feature_version!r}; use a per-store prior"
            )
        self.prior = prior
        self.window = window
        self.min_online = min_online
        self.xgb_threads = xgb_threads
        self.experts = ExpertWeights(window)
        self._mats: dict[str, list[np.ndarray]] = {}
        self._latencies: dict[str, list[float]] = {}
        self._scales: dict[str, dict[str, float]] = {}
        self._online = None  # an XGBModel once it has been trained
        self._online_trained_on = 0
        self._online_counts: dict[str, int] = {}  # what the online model was trained on
        self._stats = _new_stats()

    # ------------------------------------------------------------------ MetaSchedule API

    def predict(self, context: Any, candidates: Sequence[Any]) -> np.ndarray:
        """Standardised, accuracy-weighted sum of the prior's and the online model's scores."""
        t0 = time.perf_counter()
        mats = self._features(context, candidates)
        t1 = time.perf_counter()
        key = _workload_key(context)
        mixed = self._mixed_scores(key, mats)
        s = self._stats
        s["predict_calls"] += 1
        s["predicted_candidates"] += len(mats)
        s["feature_seconds"] += t1 - t0
        s["predict_seconds"] += time.perf_counter() - t1
        s["total_seconds"] += time.perf_counter() - t0
        return positive_scores(mixed)

    def update(self, context: Any, candidates: Sequence[Any], results: Sequence[Any]) -> None:
        """Score the new batch with both models (out of sample), then let both learn it."""
        t0 = time.perf_counter()
        s = self._stats
        candidates, results = _start_update(s, candidates, results)
        if not candidates:
            return
        tf = time.perf_counter()
        mats = self._features(context, candidates)
        s["feature_seconds"] += time.perf_counter() - tf
        key = _workload_key(context)
        latencies = np.array([run_latency(r) for r in results], dtype=np.float64)
        self.experts.record(key, "prior", *pair_counts(self.prior.raw_scores(key, mats), latencies))
        if self._online is not None and key in self._scales:
            online = self._online_scores(mats)
            self.experts.record(key, "online", *pair_counts(online, latencies))
        tp = time.perf_counter()
        self.prior.update(context, candidates, results)
        s["prior_update_seconds"] += time.perf_counter() - tp
        self._mats.setdefault(key, []).extend(mats)
        self._latencies.setdefault(key, []).extend(latencies.tolist())
        self._maybe_train_online()
        for measured in self._mats:  # the prior may have changed for all, the online model too
            self._rescale(measured)
        s["workloads"] = len(self._mats)
        elapsed = time.perf_counter() - t0
        s["update_seconds"] += elapsed
        s["total_seconds"] += elapsed

    def save(self, path: str) -> None:
        """The prior (``path + .prior`` and its sidecar), every measurement (safetensors at
        ``path``) and the experts' record (``path + .json``)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.prior.save(str(target) + PRIOR_SUFFIX)
        keys = list(self._mats)  # first-measured order: the online model's training order
        tensors = measurements_to_tensors(keys, self._mats, self._latencies)
        if not tensors:
            tensors["empty"] = torch.zeros(0)
        save_file(tensors, target, metadata={"format": "pt"})
        sidecar = {
            FORMAT_KEY: SAVE_FORMAT,
            "mode": MODE,
            "prior_mode": self.prior.stats()["mode"],
            "window": self.window,
            "min_online": self.min_online,
            "workload_keys": keys,
            "online_trained_counts": self._online_counts if self._online is not None else None,
            "experts": self.experts.state(),
            "stats": self.stats(),
        }
        _write_sidecar(target, sidecar)

    def load(self, path: str) -> None:
        """Restore what :meth:`save` wrote: the prior, the data, the online model retrained."""
        target = Path(path)
        sidecar = _read_sidecar(target, FORMAT_KEY)
        mine = self.prior.stats()["mode"]
        if sidecar.get("prior_mode", mine) != mine:
            raise PredictorFormatError(
                f"{target}: saved with a {sidecar['prior_mode']} prior, this hybrid has a "
                f"{mine} one ({type(self.prior).__name__}); build it with the same prior"
            )
        self.prior.load(str(target) + PRIOR_SUFFIX)
        tensors = load_file(target)
        self._mats, self._latencies = measurements_from_tensors(
            target, tensors, sidecar["workload_keys"]
        )
        self.window = int(sidecar.get("window", self.window))
        self.min_online = int(sidecar.get("min_online", self.min_online))
        self.experts = ExpertWeights(self.window)
        self.experts.restore(sidecar.get("experts", {}))
        self._online, self._online_trained_on, self._online_counts = None, 0, {}
        counts = sidecar.get("online_trained_counts")
        if counts:
            unknown = sorted(set(counts) - set(self._mats))
            if unknown:
                raise PredictorFormatError(f"{target}: online model trained on unknown {unknown}")
            self._train_online(counts)
        self._scales = {}
        for key in self._mats:
            self._rescale(key)
        self._stats = {**_new_stats(), **sidecar.get("stats", {})}

    # ------------------------------------------------------------------------ tunezoo API

    def weights(self, context_or_key: Any) -> dict[str, float]:
        """The current mix on one workload (a TuneContext or its key)."""
        key = context_or_key if isinstance(context_or_key, str) else _workload_key(context_or_key)
        w = self.experts.weights(key)
        if self._online is None or key not in self._scales:
            return {"prior": 1.0, "online": 0.0}
        return w

    def stats(self) -> dict[str, Any]:
        out = dict(self._stats)
        prior = self.prior.stats()
        out["prior"] = {k: v for k, v in prior.items() if not k.endswith("_seconds")}
        out["prior_train_seconds"] = prior.get("train_seconds", 0.0)
        out["arch"] = prior.get("arch")
        out["target_key"] = prior.get("target_key")
        out["online_trained_on"] = self._online_trained_on
        out["weights"] = {k: self.weights(k) for k in self._mats}
        return out

    # --------------------------------------------------------------------------- internals

    def _features(self, context: Any, candidates: Sequence[Any]) -> list[np.ndarray]:
        return self.prior._features.features(context, candidates)

    def _online_scores(self, mats: list[np.ndarray]) -> np.ndarray:
        """XGBoost's scores; a candidate without stores gets the lowest (XGB cannot score it)."""
        out = np.zeros(len(mats), dtype=np.float64)
        keep = [i for i, m in enumerate(mats) if len(m)]
        if keep and self._online is not None:
            out[keep] = self._online._predict(xs=[mats[i].astype(np.float32) for i in keep])
        return out

    def _mixed_scores(self, key: str, mats: list[np.ndarray]) -> np.ndarray:
        prior = np.asarray(self.prior.raw_scores(key, mats), dtype=np.float64)
        if self._online is None or key not in self._scales:
            return prior  # nothing measured of this workload yet: the prior alone
        w, scale = self.weights(key), self._scales[key]
        mixed = w["prior"] * prior / scale["prior"]
        if w["online"] > 0:
            mixed = mixed + w["online"] * self._online_scores(mats) / scale["online"]
        return mixed

    def _maybe_train_online(self) -> None:
        """Retrain on everything measured once the data grew by a fifth (MetaSchedule's
        rule), from ``min_online`` measurements of some workload on."""
        size = sum(len(m) for m in self._mats.values())
        if max((len(m) for m in self._mats.values()), default=0) < self.min_online:
            return
        grown = size - self._online_trained_on
        if self._online is not None and grown < self._online_trained_on / 5:
            return
        t0 = time.perf_counter()
        self._train_online({key: len(mats) for key, mats in self._mats.items()})
        self._stats["online_train_seconds"] += time.perf_counter() - t0
        self._stats["online_trainings"] += 1

    def _train_online(self, counts: dict[str, int]) -> None:
        """Train the online model on the first ``counts[key]`` measurements of each workload
        (in the order the workloads were first measured), labels as MetaSchedule's: the
        workload's best cost over each cost. ``load`` passes the saved counts, so a restored
        model is trained on exactly the data the saved one was."""
        from tvm.s_tir.meta_schedule.cost_model import XGBModel  # noqa: PLC0415

        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        for key, n in counts.items():
            mats = self._mats[key][:n]
            lat = np.asarray(self._latencies[key][:n], dtype=np.float64)
            costs = np.where(np.isfinite(lat), lat, FAILED_COST_S)
            keep = [i for i, m in enumerate(mats) if len(m)]
            xs.extend(mats[i].astype(np.float32) for i in keep)
            ys.append((costs.min() / costs[keep]).astype(np.float32))
        model = XGBModel(num_tuning_cores=self.xgb_threads, verbose_eval=10**9)
        model._train(xs=xs, ys=np.concatenate(ys))  # the function XGBModel.update calls
        self._online = model
        self._online_counts = dict(counts)
        self._online_trained_on = sum(counts.values())

    def _rescale(self, key: str) -> None:
        """Each model's score spread over the workload's measured candidates."""
        if self._online is None:
            return
        mats = self._mats[key]
        prior = self.prior.raw_scores(key, mats)
        self._scales[key] = {
            "prior": _spread(prior),
            "online": _spread(self._online_scores(mats)),
        }


def hybrid_from_init(init: Any, **settings: Any) -> HybridCostModel:
    """``mode="hybrid"`` from a meta-initialisation: ``settings`` named in
    :data:`HYBRID_SETTINGS` go to the hybrid, the rest to its meta-adaptive prior."""
    mine = {k: v for k, v in settings.items() if k in HYBRID_SETTINGS}
    rest = {k: v for k, v in settings.items() if k not in HYBRID_SETTINGS}
    return HybridCostModel(MetaAdaptiveCostModel(init, **rest), **mine)


def _new_stats() -> dict[str, Any]:
    return {
        "mode": MODE,
        "predict_calls": 0,
        "predicted_candidates": 0,
        "update_calls": 0,
        "updated_candidates": 0,
        "failed_candidates": 0,
        "workloads": 0,
        "online_trainings": 0,
        "feature_seconds": 0.0,  # feature extraction (the prior's cache), predict and update
        "predict_seconds": 0.0,  # both models' scoring in predict
        "prior_update_seconds": 0.0,  # the prior's own update (its adaptation)
        "online_train_seconds": 0.0,  # XGBoost training
        "update_seconds": 0.0,  # everything in update
        "total_seconds": 0.0,  # everything in predict and update
    }


__all__ = [
    "HYBRID_SETTINGS",
    "MODE",
    "ExpertWeights",
    "HybridCostModel",
    "hybrid_from_init",
    "pair_counts",
]
