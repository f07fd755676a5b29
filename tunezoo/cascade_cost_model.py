"""A cheap screen in front of a strong ranker: a cost model that keeps per-store ranking
quality at a fraction of its feature cost, frozen or learning during the session.

MetaSchedule's ``PerStoreFeature`` lowers every candidate (1.4-2.5 ms each on this
project's 2-core Xeon, about 3 ms on its Zen 4); a 64-trial convolution session scores
about 3,500 distinct candidates, so a per-store cost model spent 13-16% of the wall time
on features. Trace tokens (:mod:`tunezoo.trace_features`) cost a fraction of that, but a
predictor on them ranks worse than one on per-store features (held-out top-1 0.77 against
0.86). The evolutionary search needs a good ranking only near the top: it measures the
best few and breeds mostly from the better half. So every candidate is scored by the
trace predictor (the screen), and the best ``refine_fraction`` of each call's candidates
not refined before, by the screen, are refined: from then on the ranker scores them, on
per-store features computed once per session.

The ranker is a per-store cost model: frozen (:class:`~tunezoo.cost_model.
TunezooCostModel`, the default when a predictor is given) or one that keeps learning
(adaptive, or :class:`~tunezoo.meta_cost_model.MetaAdaptiveCostModel`). Its ``update``
sees every measurement, and its current weights score every refined candidate a call
holds, so what it has learnt applies to them at once (features come from its cache).

Scores: a refined candidate's score is the ranker's. An unrefined one gets the ranker's
score as the screen predicts it: a least-squares line from screen to ranker scores over
the refined candidates of the call (never falling), minus one residual standard deviation
and at most their median (an estimate, so it is held a notch below what was scored), or
below every refined score while fewer than ``MIN_FIT`` candidates were refined
(:mod:`tunezoo.screening`, shared with ``tunezoo eval --screen``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.cost_model import PyCostModel

from tunezoo.cost_model import (
    TunezooCostModel,
    _direct_python_calls,
    _start_update,
    positive_scores,
)
from tunezoo.feature_cache import DEFAULT_MAX_ENTRIES
from tunezoo.feature_kinds import TRACE
from tunezoo.meta_cost_model import MetaAdaptiveCostModel
from tunezoo.predictor import FeatureVersionError, Predictor, PredictorFormatError
from tunezoo.screening import MIN_REFINE, REFINE_FRACTION, estimate_unrefined, refine_budget

SAVE_FORMAT = 1

Ranker = TunezooCostModel | MetaAdaptiveCostModel


def _new_stats() -> dict[str, Any]:
    return {
        "mode": "screened",
        "predict_calls": 0,
        "predicted_candidates": 0,
        "refined_candidates": 0,  # entered the ranker's care (per-store features, its score)
        "update_calls": 0,
        "updated_candidates": 0,
        "failed_candidates": 0,
        "screen_seconds": 0.0,  # trace tokens and the screen's forward passes
        "ranker_seconds": 0.0,  # per-store features and the ranker's forward passes
        "update_seconds": 0.0,  # the ranker's learning, if it learns
        "total_seconds": 0.0,
    }


@_direct_python_calls
@derived_object
class CascadeCostModel(PyCostModel):
    """Trace-token screen, per-store ranker (see the module docstring).

    ``screen``: a predictor on trace tokens. ``ranker``: a per-store predictor (frozen) or
    a per-store cost model (adaptive or meta-adaptive). ``refine_fraction`` of each
    ``predict`` call's candidates (at least ``min_refine``) that were not refined before
    are refined.
    """

    def __init__(
        self,
        screen: Predictor,
        ranker: Predictor | Ranker,
        *,
        refine_fraction: float = REFINE_FRACTION,
        min_refine: int = MIN_REFINE,
        feature_cache_size: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if screen.feature_version != TRACE.version:
            raise FeatureVersionError(
                f"the screen must read trace tokens ({TRACE.version}); "
                f"{screen.arch}.{screen.target_key} reads {screen.feature_version!r}"
            )
        if isinstance(ranker, Predictor):
            ranker = TunezooCostModel(ranker, feature_cache_size=feature_cache_size)
        if not isinstance(ranker, TunezooCostModel | MetaAdaptiveCostModel):
            raise TypeError(
                "ranker must be a Predictor, TunezooCostModel or MetaAdaptiveCostModel, got "
                f"{type(ranker).__name__}"
            )
        weights = ranker.init if isinstance(ranker, MetaAdaptiveCostModel) else ranker.predictor
        if weights.feature_version == TRACE.version:
            raise FeatureVersionError(
                "the ranker reads trace tokens too: nothing would be refined; use "
                "TunezooCostModel(screen) on its own"
            )
        if not 0.0 < refine_fraction <= 1.0 or min_refine < 1:
            raise ValueError("refine_fraction must be in (0, 1] and min_refine >= 1")
        self.refine_fraction = float(refine_fraction)
        self.min_refine = int(min_refine)
        self.max_entries = int(feature_cache_size)
        self.screen = TunezooCostModel(screen, feature_cache_size=feature_cache_size)
        self.ranker = ranker
        self._refined: set[Any] = set()  # screen keys of the candidates the ranker scores
        self._stats = _new_stats()

    # ------------------------------------------------------------------ MetaSchedule API

    def predict(self, context: Any, candidates: Sequence[Any]) -> np.ndarray:
        """Scores for every candidate; the ranker's for the refined ones."""
        t0 = time.perf_counter()
        candidates = list(candidates)
        keys, screen_raw = self.screen.keyed_raw_scores(context, candidates)
        t1 = time.perf_counter()
        if len(self._refined) > self.max_entries:
            self._refined.clear()  # bounded like the feature caches; a long session re-refines
        first: dict[Any, int] = {}
        for i, key in enumerate(keys):
            if key not in self._refined:
                first.setdefault(key, i)
        budget = refine_budget(len(candidates), self.refine_fraction, self.min_refine)
        chosen = sorted(first.values(), key=lambda i: -screen_raw[i])[:budget]
        self._refined.update(keys[i] for i in chosen)
        refined = np.array([k in self._refined for k in keys])
        raw = np.empty(len(candidates), dtype=np.float64)
        if refined.any():
            idx = np.flatnonzero(refined)
            _, ranked = self.ranker.keyed_raw_scores(context, [candidates[i] for i in idx])
            raw[idx] = ranked
            raw[~refined] = estimate_unrefined(screen_raw[~refined], screen_raw[idx], ranked)
        else:
            raw[:] = estimate_unrefined(screen_raw, screen_raw[:0], screen_raw[:0])
        t2 = time.perf_counter()
        out = positive_scores(raw)
        s = self._stats
        s["predict_calls"] += 1
        s["predicted_candidates"] += len(candidates)
        s["refined_candidates"] += len(chosen)
        s["screen_seconds"] += t1 - t0
        s["ranker_seconds"] += t2 - t1
        s["total_seconds"] += time.perf_counter() - t0
        return out

    def update(self, context: Any, candidates: Sequence[Any], results: Sequence[Any]) -> None:
        """Count, and hand the measurements to the ranker (which learns, if it learns)."""
        t0 = time.perf_counter()
        candidates, results = _start_update(self._stats, candidates, results)
        self.ranker.update(context, candidates, results)
        elapsed = time.perf_counter() - t0
        self._stats["update_seconds"] += elapsed
        self._stats["total_seconds"] += elapsed

    def save(self, path: str) -> None:
        """Settings at ``path`` (JSON), the screen and ranker beside it (``.screen`` and
        ``.ranker``, as their own ``save`` writes them)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.screen.save(str(target) + ".screen")
        self.ranker.save(str(target) + ".ranker")
        settings = {
            "tunezoo_cascade_format": SAVE_FORMAT,
            "refine_fraction": self.refine_fraction,
            "min_refine": self.min_refine,
            "ranker": type(self.ranker).__name__,
            "stats": self.stats(),
        }
        target.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")

    def load(self, path: str) -> None:
        """Restore what :meth:`save` wrote (the same kinds of screen and ranker); which
        candidates were refined is forgotten, as the weights may differ."""
        target = Path(path)
        try:
            settings = json.loads(target.read_text())
        except (OSError, ValueError) as exc:
            raise PredictorFormatError(f"{target}: not a saved cascade cost model ({exc})") from exc
        if settings.get("tunezoo_cascade_format") != SAVE_FORMAT:
            raise PredictorFormatError(
                f"{target}: tunezoo_cascade_format {settings.get('tunezoo_cascade_format')!r},"
                f" expected {SAVE_FORMAT}"
            )
        if settings.get("ranker") != type(self.ranker).__name__:
            raise PredictorFormatError(
                f"{target}: saved with a {settings.get('ranker')} ranker, this cascade has a "
                f"{type(self.ranker).__name__}"
            )
        self.screen.load(str(target) + ".screen")
        self.ranker.load(str(target) + ".ranker")
        self.refine_fraction = float(settings["refine_fraction"])
        self.min_refine = int(settings["min_refine"])
        self._refined.clear()
        saved = settings.get("stats") or {}
        self._stats = {**_new_stats(), **{k: saved[k] for k in _new_stats() if k in saved}}

    # ------------------------------------------------------------------------ tunezoo API

    def stats(self) -> dict[str, Any]:
        """Counts and seconds (a copy), with the screen's and the ranker's own."""
        out = dict(self._stats)
        screen, ranker = self.screen.stats(), self.ranker.stats()
        out["ranker_mode"] = ranker.get("mode")
        out["feature_seconds"] = screen["feature_seconds"] + ranker["feature_seconds"]
        out["predict_seconds"] = screen["predict_seconds"] + ranker["predict_seconds"]
        for name, inner in (("screen", screen), ("ranker", ranker)):
            out[f"{name}_feature_seconds"] = inner["feature_seconds"]
            out[f"{name}_feature_cache_misses"] = inner["feature_cache_misses"]
            out[f"{name}_arch"] = f"{inner['arch']}.{inner['target_key']}"
        out["train_seconds"] = ranker.get("train_seconds", 0.0)
        return out


__all__ = ["CascadeCostModel"]
