"""The arithmetic of screening, shared by tuning and offline evaluation.

A cheap screen scores every candidate; the ranker scores only the screen's best slice of
each call; the rest get the ranker's scale estimated from the screen's score. The cost model
(:mod:`tunezoo.cascade_cost_model`) does this per ``predict`` call during tuning, and
``tunezoo eval --screen`` (:func:`screened_scores`) per workload of a dataset; both use the
budget and estimate here, so the offline metrics describe what tuning does. No TVM import:
evaluation and the command line read the defaults without starting TVM.
"""

from __future__ import annotations

import math

import numpy as np

MIN_FIT = 8  # refined candidates in a call before the screen-to-ranker line is fitted
REFINE_FRACTION = 0.25  # share of a call's new candidates the ranker scores
MIN_REFINE = 16  # ... but at least this many


def refine_budget(n: int, refine_fraction: float, min_refine: int) -> int:
    """How many of ``n`` candidates the ranker scores."""
    return max(min_refine, math.ceil(refine_fraction * n))


def estimate_unrefined(
    screen: np.ndarray, refined_screen: np.ndarray, refined_ranker: np.ndarray
) -> np.ndarray:
    """The ranker's score of candidates it did not score, predicted from the screen's.

    With at least ``MIN_FIT`` refined pairs: the least-squares line, minus one residual
    standard deviation, never above the refined scores' median. With fewer: just below
    every refined score, in the screen's order.

    The refined candidates are the screen's best, so the fit sees a narrow top slice of its
    range, where the two can even disagree in sign. A falling line extrapolated to the
    screen's rejects would put them above everything the ranker scored, and the search
    would measure them (seen in a session: a convolution's first batch at 3.7 ms against
    0.2 ms). So the slope is held at zero or above and the estimate capped at the median.
    """
    screen = np.asarray(screen, dtype=np.float64)
    if len(refined_screen) >= MIN_FIT:
        x, y = np.asarray(refined_screen), np.asarray(refined_ranker)
        slope, intercept = np.polyfit(x, y, 1) if x.std() > 1e-12 else (0.0, float(y.mean()))
        if slope < 0.0:
            slope, intercept = 0.0, float(y.mean())
        sd = float((y - (slope * x + intercept)).std())
        return np.minimum(slope * screen + intercept - sd, float(np.median(y)))
    floor = float(np.min(refined_ranker)) if len(refined_ranker) else 0.0
    spread = screen.std()
    z = (screen - screen.mean()) / spread if spread > 1e-12 else np.zeros_like(screen)
    return floor - 2.0 + 1.0 / (1.0 + np.exp(-z))  # in (floor - 2, floor - 1)


def screened_scores(
    screen: np.ndarray,
    ranker: np.ndarray,
    groups: np.ndarray,
    *,
    refine_fraction: float = REFINE_FRACTION,
    min_refine: int = MIN_REFINE,
) -> np.ndarray:
    """Offline, what the cascade scores each candidate of a dataset: every group (workload)
    as one ``predict`` call with nothing refined before. ``screen`` and ``ranker`` hold both
    predictors' scores of every candidate; only the refined ones' ranker scores are used.
    Ranking metrics on the result (``tunezoo eval --screen``) show what screening costs in
    ranking quality, without a tuning session's noise."""
    screen, ranker = np.asarray(screen, np.float64), np.asarray(ranker, np.float64)
    groups = np.asarray(groups)
    if not screen.shape == ranker.shape == groups.shape:
        raise ValueError(
            f"screen, ranker and groups differ in length: {len(screen)}, {len(ranker)}, "
            f"{len(groups)}"
        )
    out = np.empty(len(screen), dtype=np.float64)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        budget = refine_budget(len(idx), refine_fraction, min_refine)
        order = idx[np.argsort(-screen[idx], kind="stable")]
        refined, rest = order[:budget], order[budget:]
        out[refined] = ranker[refined]
        if len(rest):
            out[rest] = estimate_unrefined(screen[rest], screen[refined], ranker[refined])
    return out


__all__ = [
    "MIN_FIT",
    "MIN_REFINE",
    "REFINE_FRACTION",
    "estimate_unrefined",
    "refine_budget",
    "screened_scores",
]
