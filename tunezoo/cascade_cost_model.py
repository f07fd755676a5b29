"""A cheap screen in front of a strong ranker: the frozen cost model that keeps per-store
ranking quality at a fraction of its feature cost.

MetaSchedule's ``PerStoreFeature`` lowers every candidate (1.4-2.5 ms each on a 2-core
Xeon, 2.5-3 ms on the Zen 4 machine); a 64-trial convolution session scores about 3,500
distinct candidates, so a frozen per-store predictor spent 14-15% of the wall time on
features. Trace tokens (:mod:`tunezoo.trace_features`) cost 0.2-0.4 ms, but a predictor on
them ranks worse than one on per-store features (held-out top-1 0.65-0.78 against 0.86).
The evolutionary search needs a good ranking only near the top: it measures the best few
and breeds mostly from the better half. So every candidate is scored by the trace
predictor (the screen), and only the best ``refine_fraction`` of each call's candidates
not scored before, by the screen, get per-store features and the per-store predictor's
score (the ranker).

Scores: a refined candidate's score is the ranker's. An unrefined one gets the ranker's
score as the screen predicts it: per task, a least-squares line from screen to ranker
scores over the candidates refined so far, minus one residual standard deviation (an
estimate, so it is held a notch below the measured ones). Scores are remembered per
candidate, so the heap MetaSchedule keeps across calls compares like with like, except
that a candidate refined later moves from its estimate to its own score.

Frozen only: ``update`` counts what it was shown. ``save``/``load`` write and read the two
predictors' weights and this model's settings.
"""

from __future__ import annotations

import json
import math
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
    _workload_key,
    positive_scores,
)
from tunezoo.feature_cache import DEFAULT_MAX_ENTRIES
from tunezoo.feature_kinds import TRACE
from tunezoo.predictor import FeatureVersionError, Predictor, PredictorFormatError

SAVE_FORMAT = 1
MIN_FIT = 8  # refined candidates of a task before the screen-to-ranker line is fitted


def _new_stats() -> dict[str, Any]:
    return {
        "mode": "cascade",
        "predict_calls": 0,
        "predicted_candidates": 0,
        "refined_candidates": 0,  # got per-store features and the ranker's score
        "update_calls": 0,
        "updated_candidates": 0,
        "failed_candidates": 0,
        "screen_seconds": 0.0,  # trace tokens and the screen's forward passes
        "ranker_seconds": 0.0,  # per-store features and the ranker's forward passes
        "feature_seconds": 0.0,  # both kinds of features
        "predict_seconds": 0.0,  # both kinds of forward passes
        "total_seconds": 0.0,
    }


class _Calibration:
    """Per task: the refined candidates' (screen, ranker) scores and the line between."""

    def __init__(self) -> None:
        self.screen: list[float] = []
        self.ranker: list[float] = []
        self.line: tuple[float, float, float] | None = None  # slope, intercept, residual sd

    def add(self, screen: Sequence[float], ranker: Sequence[float]) -> None:
        self.screen.extend(screen)
        self.ranker.extend(ranker)
        if len(self.screen) >= MIN_FIT:
            x, y = np.asarray(self.screen), np.asarray(self.ranker)
            slope, intercept = np.polyfit(x, y, 1) if x.std() > 1e-12 else (0.0, y.mean())
            resid = y - (slope * x + intercept)
            self.line = (float(slope), float(intercept), float(resid.std()))

    def estimate(self, screen: np.ndarray) -> np.ndarray:
        """The ranker's score predicted from the screen's, held one residual sd lower;
        before a line exists, just below every refined score (ordered by the screen)."""
        if self.line is not None:
            slope, intercept, sd = self.line
            return slope * screen + intercept - sd
        floor = min(self.ranker) if self.ranker else 0.0
        z = (screen - screen.mean()) / (screen.std() + 1e-12) if len(screen) > 1 else 0 * screen
        return floor - 2.0 + 1.0 / (1.0 + np.exp(-z))  # in (floor - 2, floor - 1)


@_direct_python_calls
@derived_object
class CascadeCostModel(PyCostModel):
    """Trace-token screen, per-store ranker (see the module docstring).

    ``screen`` must read trace tokens; ``ranker`` any other features (MetaSchedule's
    per-store ones in practice). ``refine_fraction`` of each ``predict`` call's candidates
    (at least ``min_refine``) that were not refined before are refined.
    """

    def __init__(
        self,
        screen: Predictor,
        ranker: Predictor,
        *,
        refine_fraction: float = 0.25,
        min_refine: int = 16,
        feature_cache_size: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if screen.feature_version != TRACE.version:
            raise FeatureVersionError(
                f"the screen must read trace tokens ({TRACE.version}); "
                f"{screen.arch}.{screen.target_key} reads {screen.feature_version!r}"
            )
        if ranker.feature_version == TRACE.version:
            raise FeatureVersionError(
                "the ranker reads trace tokens too: nothing would be refined; use "
                "TunezooCostModel(screen) on its own"
            )
        if not 0.0 < refine_fraction <= 1.0 or min_refine < 1:
            raise ValueError("refine_fraction must be in (0, 1] and min_refine >= 1")
        self.refine_fraction = float(refine_fraction)
        self.min_refine = int(min_refine)
        self.screen = TunezooCostModel(screen, feature_cache_size=feature_cache_size)
        self.ranker = TunezooCostModel(ranker, feature_cache_size=feature_cache_size)
        self._refined: dict[Any, float] = {}  # screen key -> the ranker's raw score
        self._calibration: dict[str, _Calibration] = {}
        self._stats = _new_stats()

    # ------------------------------------------------------------------ MetaSchedule API

    def predict(self, context: Any, candidates: Sequence[Any]) -> np.ndarray:
        """Scores for every candidate; per-store features only for the screen's best."""
        t0 = time.perf_counter()
        candidates = list(candidates)
        keys, screen_raw = self.screen.keyed_raw_scores(context, candidates)
        t1 = time.perf_counter()
        first: dict[Any, int] = {}
        for i, key in enumerate(keys):
            if key not in self._refined:
                first.setdefault(key, i)
        budget = max(self.min_refine, math.ceil(self.refine_fraction * len(candidates)))
        chosen = sorted(first.values(), key=lambda i: -screen_raw[i])[:budget]
        calibration = self._calibration.setdefault(_workload_key(context), _Calibration())
        if chosen:
            _, ranked = self.ranker.keyed_raw_scores(context, [candidates[i] for i in chosen])
            for i, score in zip(chosen, ranked.tolist(), strict=True):
                self._refined[keys[i]] = score
            calibration.add([float(screen_raw[i]) for i in chosen], ranked.tolist())
        t2 = time.perf_counter()
        known = np.array([k in self._refined for k in keys])
        raw = calibration.estimate(screen_raw)
        raw[known] = [self._refined[k] for k, ok in zip(keys, known, strict=True) if ok]
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
        """Frozen: count only."""
        t0 = time.perf_counter()
        _start_update(self._stats, candidates, results)
        self._stats["total_seconds"] += time.perf_counter() - t0

    def save(self, path: str) -> None:
        """Settings at ``path`` (JSON), the two predictors beside it (``.screen`` and
        ``.ranker``, as :meth:`TunezooCostModel.save` writes them)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.screen.save(str(target) + ".screen")
        self.ranker.save(str(target) + ".ranker")
        settings = {
            "tunezoo_cascade_format": SAVE_FORMAT,
            "refine_fraction": self.refine_fraction,
            "min_refine": self.min_refine,
            "stats": self.stats(),
        }
        target.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")

    def load(self, path: str) -> None:
        """Restore what :meth:`save` wrote (the same architectures only); the session's
        remembered scores are forgotten, since the weights may differ."""
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
        self.screen.load(str(target) + ".screen")
        self.ranker.load(str(target) + ".ranker")
        self.refine_fraction = float(settings["refine_fraction"])
        self.min_refine = int(settings["min_refine"])
        self._refined.clear()
        self._calibration.clear()

    # ------------------------------------------------------------------------ tunezoo API

    def stats(self) -> dict[str, Any]:
        """Counts and seconds (a copy), with the screen's and ranker's feature caches."""
        out = dict(self._stats)
        screen, ranker = self.screen.stats(), self.ranker.stats()
        out["feature_seconds"] = screen["feature_seconds"] + ranker["feature_seconds"]
        out["predict_seconds"] = screen["predict_seconds"] + ranker["predict_seconds"]
        for name, inner in (("screen", screen), ("ranker", ranker)):
            out[f"{name}_feature_seconds"] = inner["feature_seconds"]
            out[f"{name}_feature_cache_misses"] = inner["feature_cache_misses"]
            out[f"{name}_arch"] = f"{inner['arch']}.{inner['target_key']}"
        return out


__all__ = ["CascadeCostModel"]
