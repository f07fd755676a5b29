"""A meta-initialisation as a MetaSchedule cost model that adapts the way it was meta-trained.

:class:`~tunezoo.cost_model.TunezooCostModel`'s ``adaptive`` mode keeps training one copy
of a predictor with AdamW, batch after batch. A meta-initialisation was optimised for a
different procedure: start from the init, take ``inner_steps`` SGD steps at ``inner_lr``
on the measured candidates of *one* workload, then rank the rest of that workload. This
cost model follows exactly that procedure (:func:`tunezoo.meta.adapt`): after every
measured batch, the workload's fast weights are recomputed from the init on everything
measured of that workload so far, and its next candidates are scored with them. Workloads
not measured yet are scored by the init itself, and adapting one workload never changes
another's weights (no forgetting, no interference between tasks of a session).

``tunezoo.load_predictor(target, mode="meta-adaptive")`` returns one of these.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file, save_file
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.cost_model import PyCostModel

from tunezoo.cost_model import (
    SAVE_FORMAT,
    _direct_python_calls,
    _read_sidecar,
    _read_weights,
    _start_update,
    _workload_key,
    _write_sidecar,
    measurements_from_tensors,
    measurements_to_tensors,
    positive_scores,
    run_latency,
)
from tunezoo.cost_model import _new_stats as _cost_model_stats
from tunezoo.feature_cache import DEFAULT_MAX_ENTRIES, CandidateFeatureCache
from tunezoo.features import FeatureSet
from tunezoo.meta import META_KEY, adapt, is_meta_init
from tunezoo.predictor import (
    Predictor,
    PredictorFormatError,
    check_feature_version,
)
from tunezoo.training import RankingData

FORMAT_KEY = "tunezoo_meta_cost_model_format"
MODE = "meta-adaptive"


def _new_stats() -> dict[str, Any]:
    """The adaptive cost model's statistics; ``train_steps`` counts inner-loop steps."""
    return {**_cost_model_stats(MODE), "adaptations": 0}


def _group_data(mats: list[np.ndarray], latencies: list[float], version: str) -> RankingData:
    """One workload's measurements (features of ``version``) as :func:`adapt` takes them."""
    n = len(mats)
    lat = np.asarray(latencies, dtype=np.float64)
    return RankingData(
        FeatureSet.from_list([str(i) for i in range(n)], ["session"] * n, mats, version),
        lat,
        np.zeros(n, np.float32),  # adapt() labels within the workload itself
        np.zeros(n, np.int64),
        ["session"],
        np.ones(1),
    )


@_direct_python_calls
@derived_object
class MetaAdaptiveCostModel(PyCostModel):
    """Per-workload fast weights adapted from a meta-initialisation (see the module doc).

    ``max_support`` caps how many measurements of a workload one adaptation uses (the most
    recent ones), so that a long session costs a bounded time per update.
    """

    def __init__(
        self,
        init: Predictor,
        *,
        max_support: int = 256,
        feature_cache_size: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if not is_meta_init(init):
            raise PredictorFormatError(
                f"{init.arch}.{init.target_key} is a predictor, not a meta-initialisation "
                f"(no metadata.{META_KEY}); use TunezooCostModel(mode='adaptive') for it"
            )
        check_feature_version(init.feature_version, "the meta-initialisation")
        if max_support < 2:
            raise ValueError("max_support must be at least 2")
        # a copy, like TunezooCostModel's: load() overwrites these weights in place, and
        # the caller's predictor may serve other sessions
        self.init = init.copy()
        self.init.model.eval()
        self.max_support = max_support
        self.meta: dict[str, Any] = dict(init.metadata[META_KEY])
        self._mats: dict[str, list[np.ndarray]] = {}
        self._latencies: dict[str, list[float]] = {}
        self._adapted: dict[str, Predictor] = {}
        self._stats = _new_stats()
        self._features = CandidateFeatureCache(feature_cache_size, init.feature_version)

    # ------------------------------------------------------------------ MetaSchedule API

    def predict(self, context: Any, candidates: Sequence[Any]) -> np.ndarray:
        """Scores from the workload's fast weights (the init before its first update)."""
        t0 = time.perf_counter()
        _, raw = self.keyed_raw_scores(context, candidates)
        s = self._stats
        s["predict_calls"] += 1
        s["predicted_candidates"] += len(raw)
        s["total_seconds"] += time.perf_counter() - t0
        return positive_scores(raw)

    def keyed_raw_scores(
        self, context: Any, candidates: Sequence[Any]
    ) -> tuple[list[Any], np.ndarray]:
        """(a key per candidate, its raw score by the workload's current weights), as
        :meth:`tunezoo.cost_model.TunezooCostModel.keyed_raw_scores` gives them; what
        :meth:`predict` maps to positive scores. The caller counts the call."""
        t0 = time.perf_counter()
        keys, mats = self._features.keyed_features(context, candidates)
        t1 = time.perf_counter()
        raw = self.predictor_for(_workload_key(context)).score_matrices(mats)
        s = self._stats
        s["feature_seconds"] += t1 - t0
        s["predict_seconds"] += time.perf_counter() - t1
        return keys, np.asarray(raw, dtype=np.float64)

    def update(self, context: Any, candidates: Sequence[Any], results: Sequence[Any]) -> None:
        """Remember the measurements and re-adapt this workload's weights from the init."""
        t0 = time.perf_counter()
        s = self._stats
        candidates, results = _start_update(s, candidates, results)
        if candidates:
            tf = time.perf_counter()
            mats = self._features.features(context, candidates)
            s["feature_seconds"] += time.perf_counter() - tf
            key = _workload_key(context)
            self._mats.setdefault(key, []).extend(mats)
            self._latencies.setdefault(key, []).extend(run_latency(r) for r in results)
            s["workloads"] = len(self._mats)
            self._readapt(key)
        elapsed = time.perf_counter() - t0
        s["update_seconds"] += elapsed
        s["total_seconds"] += elapsed

    def save(self, path: str) -> None:
        """The init's weights and every measurement (safetensors) at ``path``; the init's
        config, the keys and stats in ``path + .json``. :meth:`load` re-adapts from them, so
        the restored model scores exactly as the saved one did."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        p = self.init
        tensors = p.tensors()
        keys = sorted(self._mats)
        tensors.update(measurements_to_tensors(keys, self._mats, self._latencies))
        save_file(tensors, target, metadata={"format": "pt"})
        sidecar = {
            FORMAT_KEY: SAVE_FORMAT,
            "mode": MODE,
            "max_support": self.max_support,
            "init": p.config_dict(),
            "workload_keys": keys,
            "stats": self.stats(),
        }
        _write_sidecar(target, sidecar)

    def load(self, path: str) -> None:
        """Restore what :meth:`save` wrote (same architecture), re-adapting each workload."""
        target = Path(path)
        sidecar = _read_sidecar(target, FORMAT_KEY)
        mine = self.init.config_dict()
        for key in ("arch", "arch_config", "feature_version"):
            if sidecar["init"].get(key) != mine[key]:
                raise PredictorFormatError(
                    f"{target}: saved {key} {sidecar['init'].get(key)!r} does not match "
                    f"this cost model's {mine[key]!r}"
                )
        tensors = load_file(target)
        state, mean, std = _read_weights(target, tensors)
        try:
            self.init.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PredictorFormatError(f"{target}: {str(exc).splitlines()[0]}") from exc
        self.init.mean.copy_(mean)
        self.init.std.copy_(std)
        self.init.model.eval()
        self.init.metadata = sidecar["init"].get("metadata", self.init.metadata)
        self.meta = dict(self.init.metadata[META_KEY])
        self.max_support = int(sidecar.get("max_support", self.max_support))
        self._adapted = {}
        self._mats, self._latencies = measurements_from_tensors(
            target, tensors, sidecar["workload_keys"]
        )
        for key in self._mats:
            self._readapt(key)
        self._stats = {**_new_stats(), **sidecar.get("stats", {})}

    # ------------------------------------------------------------------------ tunezoo API

    def predictor_for(self, workload_key: str) -> Predictor:
        """The weights that score ``workload_key`` now: its adapted copy, or the init."""
        return self._adapted.get(workload_key, self.init)

    def raw_scores(self, workload_key: str, mats: Sequence[np.ndarray]) -> np.ndarray:
        """Scores of feature matrices by the workload's current weights, before the
        positive map (any real; higher = faster)."""
        return self.predictor_for(workload_key).score_matrices(list(mats))

    def stats(self) -> dict[str, Any]:
        out = dict(self._stats)
        out.update(self._features.stats())
        out["arch"] = self.init.arch
        out["target_key"] = self.init.target_key
        out["inner_lr"] = self.meta.get("inner_lr")
        out["inner_steps"] = self.meta.get("inner_steps")
        return out

    def reset_stats(self) -> None:
        self._stats = {**_new_stats(), "workloads": len(self._mats)}
        self._features.hits = self._features.misses = 0

    def _readapt(self, key: str) -> None:
        mats = self._mats[key][-self.max_support :]
        lat = self._latencies[key][-self.max_support :]
        if int(np.isfinite(lat).sum()) < 2:
            return  # nothing to rank yet (adapt needs 2 successes): the init keeps scoring
        t0 = time.perf_counter()
        self._adapted[key] = adapt(self.init, _group_data(mats, lat, self.init.feature_version))
        s = self._stats
        s["train_seconds"] += time.perf_counter() - t0
        s["adaptations"] += 1
        s["train_steps"] += int(self.meta.get("inner_steps", 0))


__all__ = ["MODE", "MetaAdaptiveCostModel"]
