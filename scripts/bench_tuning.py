"""Tuning benchmark (issue 5): does a pretrained cost model find fast schedules sooner?

On workloads no predictor was trained on, every contender tunes with the same builder,
runner, search strategy, seeds and trial budget, in one run:

  xgb               MetaSchedule's default XGBoost model from scratch (what users run today)
  xgb-pretrained    MetaSchedule's XGBModel pre-trained on the dataset's train split (held-out
                    models excluded), then updated online as usual (TenSet's approach)
  tunezoo-frozen    the tunezoo predictor, never updated (``mode="frozen"``)
  trace-frozen      a tunezoo predictor on trace tokens (``--trace-predictor``), never
                    updated: it reads the printed schedule trace instead of lowering every
                    candidate for MetaSchedule's per-store features
  cascade           the trace predictor screening every candidate, the per-store predictor
                    ranking the best quarter of each generation by the screen
                    (:class:`tunezoo.cascade_cost_model.CascadeCostModel`), frozen
  meta-cascade      (with ``--meta-init``) the same screen in front of meta-adaptive
  tunezoo-adaptive  the same predictor, fine-tuned on the session's measurements
  meta-adaptive     (with ``--meta-init``) a meta-initialisation, re-adapted from the init by
                    its own inner loop (SGD, its inner steps and lr) after every batch
  hybrid            (with ``--meta-init``) meta-adaptive, handing over to an online XGBoost
                    model per workload as it ranks new measurements as well

Workloads: (a) matmul/conv workloads (name with ``fused_matmul`` or ``conv2d``, FLOPs >= 1e6)
of the dataset's ``test`` split and of its held-out models, which no predictor saw; (b) the
named workloads of :data:`tunezoo.tuning.WORKLOADS` (not in the dataset at all).

Reported per workload and as a geometric mean over workloads (each a mean over seeds):

* search-time speedup: the time xgb took to reach its final best latency, divided by the
  time the contender took to first reach that latency (same seed); the same ratio in
  trials. Trials count measurements, in the order MetaSchedule measured them (a batch goes
  best-predicted first), so a contender whose first pick is the target scores 1, not the
  batch size. Times are when that candidate's measurement came back
  (:class:`tunezoo.tuning.TimedRunner`), and also given at the end of its batch, for every
  contender alike: MetaSchedule builds a whole batch before it measures any of it, so the
  batch-end time is the more conservative figure (reports before 2026-12-07 had only
  batch-end times, and before 2026-11-25 one entry per batch, so their trial ratios were
  rounded to a batch). A contender that never reaches it is charged its whole session, so
  its ratio is an *upper* bound (shown as ``<=``) and so is any geometric mean with it;
* best latency at 16, 32, 64 trials and at the full budget, relative to xgb (< 1: faster);
* the cost model's share of the tuning wall time (the goal for frozen predictors is
  <= 10%), and where each session's time went: search (MetaSchedule's sampling and
  evolution, the cost model excluded), cost model, building, measuring.

Times are ``TuneResult.seconds``/``history``: they start after MetaSchedule's one-off setup
(the tensor-intrinsic import), so every contender is timed from the same point.

Why xgb-pretrained carries its training data: MetaSchedule's XGBModel predicts randomly
until it holds ``num_warmup_samples`` (100) data points, and every update retrains from
scratch on the data it holds; a bare pre-trained booster would be ignored and then
overwritten by a model of the session's first batches. ``XGBModel.save``/``load`` keep the
data beside the booster for exactly this reason, so the pre-trained model is given the
training features as its data, as ``load`` would restore them.

Usage (pin to core 0; core 1 collects data)::

    taskset -c 0 python scripts/bench_tuning.py --quick          # ~11-15 min, 1 core
    taskset -c 0 python scripts/bench_tuning.py                  # full: see below
    taskset -c 0 python scripts/bench_tuning.py --predictor /tmp/p --meta-init /tmp/meta

Full defaults: every selected dataset workload plus matmul-512, conv2d-resnet-3x3 and
conv2d-resnet-1x1 (10 workloads on 2026-11-24; the dataset grows); 3 seeds; 128 trials;
population 512 (MetaSchedule's default; the cost model scores every candidate of every
generation, so its share of the time grows with it). On one quiet core a session costs
about 0.8-1 s per trial plus ~5 s of pool start-up, plus cost-model time, so 10 workloads x
3 seeds x 4 contenders x 128 trials took roughly 4 h (plus about 1 min of one-off setup)
with MetaSchedule's LocalBuilder, which starts a pool per batch; the pooled builder
(tunezoo.pooled_builder) pays that start-up once per session and saves ~4.5 s per batch.
The quick run measured 14-15 min (20 sessions of 40 trials, while the core was shared;
about 11 min on a quiet core). The committed ``bench_tuning.md`` (4 held-out workloads x 3
seeds x 5 contenders x 64 trials, population 256, pooled builder) took 59-64 min on one core,
40-90 s per session.
``--sample N [--sample-seed S]``: N of those dataset workloads drawn at random, half from
the test split and half from the held-out models, so that a subset is a draw, not a choice.
``--quick``: the largest matmul of the test split and matmul-512, 2 seeds, 40 trials,
population 128. Writes ``scripts/results/bench_tuning.{json,md,png}`` (``--quick``:
``bench_tuning-quick.*``); the JSON is rewritten after every session, so an interrupted run
keeps what it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tvm

from tunezoo.cost_model import TimedCostModel
from tunezoo.feature_kinds import TRACE
from tunezoo.predictor import WEIGHTS_FILE, Predictor, sha256_file
from tunezoo.records import utc_time
from tunezoo.targets import UnknownTargetError, get_target
from tunezoo.tuning import WORKLOADS, TuneResult, tune

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "xgb"
CONTENDERS = (
    "xgb",
    "xgb-pretrained",
    "tunezoo-frozen",
    "trace-frozen",
    "cascade",
    "tunezoo-adaptive",
    "meta-adaptive",
    "meta-cascade",
    "hybrid",
)
FROZEN = ("tunezoo-frozen", "trace-frozen", "cascade")  # the contenders the cost-share goal is for
META_CONTENDERS = ("meta-adaptive", "meta-cascade", "hybrid")  # start from --meta-init
# without --contenders (and --quick): what users run today against the first predictors
DEFAULT_CONTENDERS = ("xgb", "xgb-pretrained", "tunezoo-frozen", "tunezoo-adaptive")
DEFAULT_NAMED = ("matmul-512", "conv2d-resnet-3x3", "conv2d-resnet-1x1")
HEADROOM_NAMES = ("fused_matmul", "conv2d")  # dense math: schedules differ by 10x and more
MIN_FLOPS = 1e6
BUDGETS = (16, 32, 64)
FROZEN_GOAL = 0.10  # a frozen predictor's cost-model share of the wall time
FAILED_COST_S = 1e10  # what MetaSchedule's XGBModel records for a failed run


# ------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: a dataset row (``test``/``heldout``) or a named one."""

    key: str  # unique label in reports
    source: str  # test | heldout | named
    name: str
    workload_id: str | None = None
    flops: float | None = None
    mod_json: str | None = field(default=None, repr=False)

    def module(self) -> tvm.IRModule:
        if self.mod_json is None:
            return WORKLOADS[self.name].build()
        return tvm.ir.load_json(self.mod_json)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("key", "source", "name", "workload_id", "flops")}


def dataset_workloads(dataset: Path, min_flops: float = MIN_FLOPS) -> list[Workload]:
    """Test-split and held-out-model workloads with tuning headroom, largest first."""
    from tunezoo.records import read_workloads  # noqa: PLC0415
    from tunezoo.training import select_workloads  # noqa: PLC0415

    table = read_workloads(dataset)
    rows = {r["workload_id"]: r for r in table.to_pylist()}
    out = []
    for part in ("test", "heldout"):
        for wid in select_workloads(table, part):
            row = rows[wid]
            flops = float(row["flops"] or 0.0)
            if flops < min_flops or not any(s in row["name"] for s in HEADROOM_NAMES):
                continue
            short = row["name"] if len(row["name"]) <= 32 else row["name"][:30] + ".."
            key = f"{short}[{wid[:6]}]"
            out.append(Workload(key, part, row["name"], wid, flops, row["mod_json"]))
    return sorted(out, key=lambda w: (w.source != "test", -(w.flops or 0.0), w.key))


def named_workload(name: str) -> Workload:
    if name not in WORKLOADS:
        raise SystemExit(f"unknown named workload {name!r}; known: {', '.join(WORKLOADS)}")
    return Workload(name, "named", name)


def sample_workloads(found: list[Workload], n: int, seed: int) -> list[Workload]:
    """``n`` of the dataset's workloads drawn at random, half from the test split and half
    from the held-out models (the odd one from the test split), so that a benchmark on a
    subset is a draw fixed by its seed, not a choice."""
    rng = random.Random(seed)
    picked = []
    for part, k in (("test", (n + 1) // 2), ("heldout", n // 2)):
        pool = [w for w in found if w.source == part]
        if k > len(pool):
            raise SystemExit(f"--sample {n}: the dataset has only {len(pool)} {part} workloads")
        picked += rng.sample(pool, k)
    return picked


def choose_workloads(args: argparse.Namespace) -> list[Workload]:
    found = dataset_workloads(Path(args.dataset), args.min_flops)
    if args.workloads:  # explicit: named workloads, dataset keys, names or ids
        by = {k: w for w in found for k in (w.key, w.name, w.workload_id)}
        picked = []
        for item in args.workloads.split(","):
            if item in WORKLOADS:
                picked.append(named_workload(item))
            elif item in by:
                picked.append(by[item])
            else:
                raise SystemExit(
                    f"unknown workload {item!r}. Dataset candidates: "
                    f"{', '.join(w.key for w in found) or 'none'}; named: {', '.join(WORKLOADS)}"
                )
        return picked
    if args.sample:
        return sample_workloads(found, args.sample, args.sample_seed)
    if args.quick:  # one matmul of the test split (largest), one named
        tests = [w for w in found if w.source == "test" and "matmul" in w.name] or found[:1]
        return [*tests[:1], named_workload("matmul-512")]
    return [*found, *(named_workload(n) for n in DEFAULT_NAMED)]


# -------------------------------------------------------------------- cost models


@dataclass
class PretrainedXGB:
    """A booster trained offline on tunezoo's training features, with the data it saw."""

    booster: Any
    groups: list[tuple[str, list[np.ndarray], np.ndarray]]  # (key, features, costs)
    size: int
    info: dict[str, Any]

    def fresh(self, cores: int) -> Any:
        """A new XGBModel for one session (updates mutate the model, so never share one)."""
        from tvm.s_tir.meta_schedule.cost_model.xgb_model import (  # noqa: PLC0415
            FeatureGroup,
            XGBModel,
        )

        model = XGBModel(num_tuning_cores=cores)  # as CostModel.create("xgb") builds it
        model.booster = self.booster.copy()
        model.data = OrderedDict((k, FeatureGroup(k, list(f), c.copy())) for k, f, c in self.groups)
        model.data_size = self.size
        return model


def predictor_snapshot(folder: Path | None) -> dt.datetime | None:
    """The predictor's training cut-off (its metrics' ``data_until``), so that
    xgb-pretrained learns from the same snapshot while the dataset keeps growing."""
    metrics = folder / "metrics.json" if folder else None
    if metrics is None or not metrics.exists():
        return None
    until = json.loads(metrics.read_text()).get("data_until")
    return utc_time(until) if until else None


def pretrain_xgb(dataset: Path, cores: int, until: dt.datetime | None = None) -> PretrainedXGB:
    """``train_ms_xgb`` on the train split (up to ``until``), plus that data in XGBModel's
    own format."""
    from tunezoo.baselines import train_ms_xgb  # noqa: PLC0415
    from tunezoo.training import load_ranking_data  # noqa: PLC0415

    t0 = time.perf_counter()
    train = load_ranking_data(dataset, "train", progress=False, until=until)
    t1 = time.perf_counter()
    booster = train_ms_xgb(train, threads=cores).model.booster
    t2 = time.perf_counter()
    groups = []
    for g, members in enumerate(train.group_members()):
        lat = train.latencies[members]
        costs = np.where(np.isfinite(lat), lat, FAILED_COST_S).astype(np.float32)
        feats = [train.features.record(int(i)) for i in members]
        groups.append((f"tunezoo-train:{train.group_ids[g]}", feats, costs))
    info = {
        "workloads": len(train.group_ids),
        "candidates": len(train),
        "data_until": until.isoformat() if until else None,
        "data_seconds": t1 - t0,
        "train_seconds": t2 - t1,
    }
    return PretrainedXGB(booster, groups, len(train), info)


@dataclass
class Contenders:
    """What each contender needs, loaded once; :meth:`cost_model` makes a fresh one per run."""

    cores: int
    predictor: Predictor | None = None
    trace_predictor: Predictor | None = None
    pretrained: PretrainedXGB | None = None
    meta_init: Predictor | None = None

    def cost_model(self, name: str) -> tuple[Any, str]:
        """(``predictor`` argument of :func:`tune`, its ``mode``)."""
        if name == "xgb":
            return "none", "frozen"
        if name == "xgb-pretrained":
            assert self.pretrained is not None
            return TimedCostModel(self.pretrained.fresh(self.cores)), "frozen"
        if name in ("tunezoo-frozen", "tunezoo-adaptive"):
            assert self.predictor is not None
            return self.predictor, name.split("-")[1]
        if name == "trace-frozen":
            assert self.trace_predictor is not None
            return self.trace_predictor, "frozen"
        if name == "cascade":  # a fresh one per session: it remembers the session's scores
            from tunezoo.cascade_cost_model import CascadeCostModel  # noqa: PLC0415

            assert self.trace_predictor is not None and self.predictor is not None
            return CascadeCostModel(self.trace_predictor, self.predictor), "frozen"
        if name == "meta-cascade":  # fresh per session, like the others
            from tunezoo.cascade_cost_model import CascadeCostModel  # noqa: PLC0415
            from tunezoo.meta_cost_model import MetaAdaptiveCostModel  # noqa: PLC0415

            assert self.trace_predictor is not None and self.meta_init is not None
            ranker = MetaAdaptiveCostModel(self.meta_init)
            return CascadeCostModel(self.trace_predictor, ranker), "meta-adaptive"
        if name in META_CONTENDERS:
            assert self.meta_init is not None
            return self.meta_init, name
        raise ValueError(f"unknown contender {name!r}; known: {', '.join(CONTENDERS)}")


def load_contenders(args: argparse.Namespace, names: list[str]) -> tuple[Contenders, dict]:
    info: dict[str, Any] = {}
    out = Contenders(args.num_cores)
    if any(n.startswith("tunezoo") or n == "cascade" for n in names):
        if args.predictor:
            out.predictor = Predictor.load(args.predictor)
            info["predictor"] = {"source": "local-dir", "path": str(Path(args.predictor))}
        else:
            from tunezoo.loading import load_predictor_artifact  # noqa: PLC0415

            try:
                out.predictor = load_predictor_artifact(args.target, local_files_only=True)
            except Exception as exc:  # noqa: BLE001 - any failure: say what to pass instead
                raise SystemExit(
                    f"no predictor for {args.target!r} ({exc}). Pass --predictor DIR, e.g. "
                    f"one trained with: tunezoo train --dataset {args.dataset} --target "
                    f"{args.target} --out /tmp/p"
                ) from None
            info["predictor"] = out.predictor.metadata.get("tunezoo_source", {})
        folder = Path(args.predictor or info["predictor"]["path"])
        info["predictor"].update(
            arch=out.predictor.arch,
            weights_sha256=sha256_file(folder / WEIGHTS_FILE),
            train_metadata={
                k: v for k, v in out.predictor.metadata.items() if k != "tunezoo_source"
            },
        )
    if any(n in ("trace-frozen", "cascade", "meta-cascade") for n in names):
        folder = Path(args.trace_predictor) if args.trace_predictor else None
        if folder is None:  # the screen load_predictor(screen=True) would use
            from tunezoo.loading import resolve_predictor, screen_for  # noqa: PLC0415

            try:
                ranker = Path(args.predictor).name if args.predictor else None
                ranker = ranker or resolve_predictor(args.target).name
                folder = resolve_predictor(screen_for(ranker)).path
            except Exception as exc:  # noqa: BLE001 - any failure: say what to pass instead
                raise SystemExit(f"{exc}; or pass --trace-predictor DIR") from None
            if folder is None:
                raise SystemExit("the trace predictor is not bundled: pass --trace-predictor DIR")
        out.trace_predictor = Predictor.load(folder, feature_version=TRACE.version)
        info["trace-predictor"] = {
            "path": str(folder),
            "arch": out.trace_predictor.arch,
            "weights_sha256": sha256_file(folder / WEIGHTS_FILE),
        }
    if "xgb-pretrained" in names:
        print("--- pre-training MetaSchedule's XGBModel on the train split")
        # the predictor's folder, also when no tunezoo contender loaded it above
        path = args.predictor or info.get("predictor", {}).get("path")
        until = predictor_snapshot(Path(path) if path else None)
        out.pretrained = pretrain_xgb(Path(args.dataset), args.num_cores, until)
        info["xgb-pretrained"] = out.pretrained.info
        print(f"    {json.dumps(out.pretrained.info)}")
    if any(n in META_CONTENDERS for n in names):
        from tunezoo.meta import META_KEY, load_init  # noqa: PLC0415

        out.meta_init = load_init(Path(args.meta_init))
        info["meta-init"] = {
            "path": args.meta_init,
            "weights_sha256": sha256_file(Path(args.meta_init) / WEIGHTS_FILE),
            "started_from": out.meta_init.metadata.get("started_from", "random"),
            **out.meta_init.metadata[META_KEY],
        }
    return out, info


# -------------------------------------------------------------------------- metrics

History = Sequence[Sequence[float]]  # (trials, seconds, best latency) after each trial


def best_at(history: History, trials: int) -> float:
    """Best latency after at most ``trials`` measurements (+inf before the first success)."""
    done = [h[2] for h in history if h[0] <= trials]
    return min(done) if done else math.inf


def first_reach(
    history: History, target: float, rtol: float = 0.0
) -> tuple[int, float, float] | None:
    """(trials, seconds, seconds at its batch's end) of the first measurement whose best is
    within ``rtol`` of ``target``.

    Histories hold one entry per measured candidate: ``(trials, seconds, best, batch end)``;
    reports before 2026-12-07 have no fourth field, their seconds being the batch's end.
    """
    for entry in history:
        trials, seconds, best = entry[0], entry[1], entry[2]
        if best <= target * (1.0 + rtol):
            return int(trials), float(seconds), _batch_end(entry)
    return None


def measured_batches(history: History) -> list[list[Sequence[float]]]:
    """A session's history cut into its measurement batches: entries that share a
    batch-end time. Reports before 2026-12-07 have no batch ends: no batches (``[]``)."""
    out: list[list[Sequence[float]]] = []
    for entry in history:
        if len(entry) < 4:
            return []
        if out and out[-1][-1][3] == entry[3]:
            out[-1].append(entry)
        else:
            out.append([entry])
    return out


def best_position(batch: Sequence[Sequence[float]], before: float = math.inf) -> int | None:
    """1-based position in ``batch`` of its fastest candidate, if it beat ``before`` (the
    best so far: a history holds only that, so a batch that improved on nothing hides
    where its best came). ``None`` too when nothing in the batch ran."""
    position, best = None, before
    for i, entry in enumerate(batch):
        if entry[2] < best:
            position, best = i + 1, entry[2]
    return position


def reach_best_first(history: History, target: float, rtol: float = 0.0) -> int | None:
    """Trials to reach ``target`` had every batch measured its fastest candidate first:
    the first trial of the batch that reached it (``None``: no batch did, or the history
    has no batch ends). The batches stay as the search made them; only their order of
    measurement changes, which is all a cost model could still improve within a batch."""
    for batch in measured_batches(history):
        if any(entry[2] <= target * (1.0 + rtol) for entry in batch):
            return int(batch[0][0])
    return None


def session_end(history: History) -> tuple[int, float, float]:
    """(trials, seconds, batch-end seconds) of a session's last measurement."""
    if not history:
        return 0, 0.0, 0.0
    last = history[-1]
    return int(last[0]), float(last[1]), _batch_end(last)


def _unmeasured(session: dict[str, Any], ref: History) -> tuple[int, float, float]:
    """What a session that measured nothing is charged: xgb's trial budget (the same
    for every contender) and all the seconds it ran."""
    seconds = float(session.get("seconds", 0.0))
    return session_end(ref)[0], seconds, seconds


def _batch_end(entry: tuple) -> float:
    """When an entry's batch ended (reports before 2026-12-07: the entry's own time)."""
    return float(entry[3] if len(entry) > 3 else entry[1])


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _usable(values: Sequence[float]) -> list[float]:
    """The values a geometric mean can take (finite and positive)."""
    return [v for v in values if v is not None and math.isfinite(v) and v > 0]


def geomean(values: Sequence[float]) -> float:
    ok = _usable(values)
    return float(np.exp(np.mean(np.log(ok)))) if ok else math.nan


def workload_summary(
    runs: dict[str, dict[int, dict[str, Any]]], budgets: Sequence[int], rtol: float
) -> dict[str, dict[str, Any]]:
    """Metrics of every contender on one workload, from ``runs[contender][seed]``."""
    base = runs.get(BASELINE, {})
    out: dict[str, dict[str, Any]] = {}
    for name, by_seed in runs.items():
        seeds = sorted(set(by_seed) & set(base))
        row: dict[str, Any] = {"seeds": seeds}
        t_base, t_mine, b_base, b_mine, n_base, n_mine, reached = [], [], [], [], [], [], 0
        first = []  # when each session's first measurement came back (for the ceiling)
        n_best_first = []  # trials had every batch measured its fastest candidate first
        for s in seeds:
            ref = base[s]["history"]
            mine = by_seed[s]["history"]
            target = ref[-1][2] if ref else math.inf
            # the same tolerance for both: xgb too "reaches" its final best once within rtol
            hit_ref = first_reach(ref, target, rtol) if math.isfinite(target) else None
            if hit_ref is None:
                continue
            hit = first_reach(mine, target, rtol)
            reached += hit is not None
            # not reached: charged the whole session (one that measured nothing, the
            # whole budget xgb had and the session's seconds)
            got = (
                hit
                if hit is not None
                else (session_end(mine) if mine else _unmeasured(by_seed[s], ref))
            )
            n_mine.append(got[0])
            ordered = reach_best_first(mine, target, rtol) if hit is not None else got[0]
            n_best_first.append(ordered if ordered is not None else math.nan)
            first.append(float(mine[0][1]) if mine else math.nan)
            t_mine.append(got[1])
            b_mine.append(got[2])
            n_base.append(hit_ref[0])
            t_base.append(hit_ref[1])
            b_base.append(hit_ref[2])
        row["reached"] = f"{reached}/{len(t_base)}"
        row["bound"] = reached < len(t_base)  # some seed censored: ratios are upper bounds
        row["time_speedup"] = _mean(t_base) / _mean(t_mine) if t_mine else math.nan
        row["time_speedup_batch_end"] = _mean(b_base) / _mean(b_mine) if b_mine else math.nan
        row["trial_speedup"] = _mean(n_base) / _mean(n_mine) if n_mine else math.nan
        row["time_to_target_s"] = _mean(t_mine)
        row["trial_speedup_best_first"] = (
            _mean(n_base) / _mean(n_best_first)
            if n_best_first and all(math.isfinite(n) for n in n_best_first)
            else math.nan
        )
        row.update(first_batch_order([by_seed[s]["history"] for s in seeds]))
        row.update(speedup_ceiling(t_base, n_base, first))
        rel, absolute = {}, {}
        for b in budgets:
            mine_b = [best_at(by_seed[s]["history"], b) for s in seeds]
            base_b = [best_at(base[s]["history"], b) for s in seeds]
            ok = all(math.isfinite(v) for v in mine_b + base_b) and seeds
            rel[str(b)] = _mean(mine_b) / _mean(base_b) if ok else math.nan
            absolute[str(b)] = 1e3 * _mean(mine_b) if ok else math.nan
        row["relative_latency"] = rel
        row["best_at_ms"] = absolute
        row["best_latency_ms"] = 1e3 * _mean([by_seed[s]["best_latency_s"] for s in by_seed])
        seconds = sum(by_seed[s]["seconds"] for s in by_seed)
        spent = sum(by_seed[s]["cost_model_stats"].get("total_seconds", 0.0) for s in by_seed)
        row["cost_model_fraction"] = spent / seconds if seconds > 0 else math.nan
        row["tuning_seconds"] = seconds / max(1, len(by_seed))
        row["phase_seconds"] = _phases(by_seed.values())
        out[name] = row
    return out


def first_batch_order(histories: Sequence[History]) -> dict[str, list[int]]:
    """Where each session's first batch had its fastest candidate, and the batch's size.

    MetaSchedule measures a batch in the order its evolutionary search hands it over, best
    predicted first (its epsilon-greedy random picks, if any, last), so a cost model that
    ranked well among the candidates it chose would put the batch's best near the front.
    The first batch is the one every session has and the one its prior alone ordered."""
    positions, sizes = [], []
    for history in histories:
        batches = measured_batches(history)
        position = best_position(batches[0]) if batches else None
        if position is not None:
            positions.append(position)
            sizes.append(len(batches[0]))
    return {"first_batch_best_positions": positions, "first_batch_sizes": sizes}


def speedup_ceiling(
    t_base: Sequence[float], n_base: Sequence[float], first: Sequence[float]
) -> dict[str, float]:
    """The most any cost model could gain under this protocol: the speedups had the
    session's very first measurement reached xgb's final best.

    No prior, however good, gets a measurement back before a whole search round and its
    batch's builds are done, so wall-time ratios are bounded by xgb's time to its best over
    that first wait; the trial ratio is bounded by xgb's trials to its best (over one).
    """
    ok = [f for f in first if math.isfinite(f) and f > 0]
    return {
        "time_speedup_ceiling": _mean(t_base) / _mean(ok) if ok and t_base else math.nan,
        "trial_speedup_ceiling": _mean(n_base) if n_base else math.nan,
    }


def _phases(sessions: Any) -> dict[str, float] | None:
    """Mean seconds per session in search, cost model, building and measuring (None for
    reports that did not time building and measuring)."""
    sessions = list(sessions)
    if not sessions or any("build_seconds" not in s for s in sessions):
        return None
    n = len(sessions)
    cost = sum(s["cost_model_stats"].get("total_seconds", 0.0) for s in sessions) / n
    build = sum(s["build_seconds"] for s in sessions) / n
    measure = sum(s["run_seconds"] for s in sessions) / n
    total = sum(s["seconds"] for s in sessions) / n
    return {
        "search": total - cost - build - measure,
        "cost_model": cost,
        "build": build,
        "measure": measure,
        "total": total,
    }


def overall_summary(per_workload: dict[str, dict[str, dict[str, Any]]], budgets: Sequence[int]):
    """Geometric means over workloads; the cost-model fraction is the mean of the
    workloads' own fractions. A workload without a ratio (xgb never succeeded, or some
    session had nothing at a budget) is left out of that mean, and the ``*_workloads``
    counts say over how many workloads each mean is."""
    names = {n for rows in per_workload.values() for n in rows}
    out: dict[str, dict[str, Any]] = {}
    for name in [c for c in CONTENDERS if c in names]:
        rows = [r[name] for r in per_workload.values() if name in r]
        batch_end = [r.get("time_speedup_batch_end", r["time_speedup"]) for r in rows]
        out[name] = {
            "time_speedup": geomean([r["time_speedup"] for r in rows]),
            "time_speedup_batch_end": geomean(batch_end),
            "trial_speedup": geomean([r["trial_speedup"] for r in rows]),
            "trial_speedup_best_first": geomean([r.get("trial_speedup_best_first") for r in rows]),
            **_order_summary(rows),
            "time_speedup_ceiling": geomean([r.get("time_speedup_ceiling") for r in rows]),
            "trial_speedup_ceiling": geomean([r.get("trial_speedup_ceiling") for r in rows]),
            "bound": any(r["bound"] for r in rows),
            "relative_latency": {
                str(b): geomean([r["relative_latency"][str(b)] for r in rows]) for b in budgets
            },
            "cost_model_fraction": _mean([r["cost_model_fraction"] for r in rows]),
            "workloads": len(rows),
            "speedup_workloads": _counted([r["trial_speedup"] for r in rows]),
            "relative_latency_workloads": {
                str(b): _counted([r["relative_latency"][str(b)] for r in rows]) for b in budgets
            },
        }
    return out


def _order_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Over every session of ``rows``: the mean position of the first batch's fastest
    candidate, how often it came first or in the first four, each beside what a random
    order of the same batches gives."""
    positions = [p for r in rows for p in r.get("first_batch_best_positions", [])]
    sizes = [n for r in rows for n in r.get("first_batch_sizes", [])]
    if not positions:
        return {"first_batch_sessions": 0}
    return {
        "first_batch_sessions": len(positions),
        "first_batch_best_position": _mean(positions),
        "first_batch_best_position_random": _mean([(n + 1) / 2 for n in sizes]),
        "first_batch_best_first": _mean([p == 1 for p in positions]),
        "first_batch_best_first_random": _mean([1 / n for n in sizes]),
        "first_batch_best_in_4": _mean([p <= 4 for p in positions]),
        "first_batch_best_in_4_random": _mean([min(4, n) / n for n in sizes]),
    }


def _counted(values: Sequence[float]) -> int:
    """How many values a geomean uses (see :func:`geomean`)."""
    return len(_usable(values))


# ------------------------------------------------------------------------- reporting


def summarize(
    raw: dict[str, dict[str, dict[int, dict[str, Any]]]], budgets: Sequence[int], rtol: float
) -> dict[str, Any]:
    """Per workload and overall metrics of ``raw[workload][contender][seed]``; workloads with
    no finished xgb session (an unfinished run's last ones) have nothing to compare with."""
    per = {k: workload_summary(by, budgets, rtol) for k, by in raw.items() if by.get(BASELINE)}
    return {"per_workload": per, "overall": overall_summary(per, budgets)}


def _curve(histories: list[History], grid: np.ndarray) -> np.ndarray:
    return np.array([[best_at(h, int(t)) for t in grid] for h in histories])


def plot(runs: dict[str, dict[str, dict[int, dict]]], path: Path) -> None:
    """Best latency vs trials per workload: mean over seeds, shaded min-max."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    keys = list(runs)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        for name in [c for c in CONTENDERS if c in runs[key]]:
            hists = [r["history"] for r in runs[key][name].values() if r["history"]]
            if not hists:
                continue
            grid = np.array(sorted({int(h[0]) for hist in hists for h in hist}))
            curves = _curve(hists, grid) * 1e3
            curves[~np.isfinite(curves)] = np.nan
            mean = np.nanmean(curves, axis=0)  # best-so-far is a step function of trials
            (line,) = ax.step(grid, mean, where="post", label=name, lw=1.6, marker=".")
            ax.fill_between(
                grid,
                np.nanmin(curves, 0),
                np.nanmax(curves, 0),
                step="post",
                color=line.get_color(),
                alpha=0.15,
            )
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("trials")
        ax.set_ylabel("best latency (ms)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt_ratio(v: float, bound: bool = False) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{'<=' if bound else ''}{v:.2f}x"


def _machine_mismatch_note(report: dict[str, Any]) -> list[str]:
    """A line saying so when the code was compiled for one CPU and run on another: such a
    report measures transfer, and must not be read beside the target's own runs."""
    llvm_cpu = report["machine"].get("llvm_cpu")
    target = report["settings"]["target"]
    try:
        target_cpu = get_target(target).llvm_cpu  # None for GPUs
    except UnknownTargetError:  # a key this machine's registry lacks: nothing to compare
        return []
    if not llvm_cpu or not target_cpu or target_cpu == llvm_cpu:
        return []
    return [
        f"**Measured on another CPU than the target:** compiled for `{target}`, run on this "
        f"machine's `{llvm_cpu}` ({report['machine']['cpu']}).",
        "",
    ]


def _transfer_note(report: dict[str, Any]) -> list[str]:
    """A line saying so when the predictors were trained for another target than the one
    tuned for (read from their artifact folders' names): such a run measures transfer."""
    from tunezoo import catalog  # noqa: PLC0415

    target = report["settings"]["target"]
    trained = []
    for entry in report.get("models", {}).values():
        path = entry.get("path") if isinstance(entry, dict) else None
        try:
            parsed = catalog.parse_name(Path(path).name) if path else None
        except catalog.CatalogError:
            continue  # a folder not named like an artifact: nothing to say
        if parsed and parsed["target"] and parsed["target"] != target:
            trained.append(f"`{Path(path).name}` (trained for `{parsed['target']}`)")
        elif parsed and parsed["family"]:
            trained.append(
                f"`{Path(path).name}` (meta-trained for the `{parsed['family']}` family)"
            )
    if not any("trained for `" in t for t in trained):
        return []
    return [
        f"**Transfer:** tuning for `{target}` with {', '.join(trained)}, which is what "
        "`load_predictor` falls back to on this CPU.",
        "",
    ]


def _resumed_note(report: dict[str, Any]) -> list[str]:
    """Says which sessions came from an interrupted run: they ran at another time of the
    machine's day, which interleaving the contenders cannot even out."""
    resumed = report.get("resumed")
    if not resumed:
        return []
    return [
        f"**Resumed** (`--resume`) at {resumed['at']} with {resumed['sessions_kept']} "
        f"sessions from an interrupted run that took "
        f"{resumed['earlier_elapsed_s'] / 60:.1f} min (the total above is this part's); its "
        f"command: `{resumed['first_command']}`",
        "",
    ]


def _pooled_note(report: dict[str, Any]) -> list[str]:
    """Which runs a pooled report holds (:func:`pool_reports`), and their commands."""
    pooled = report.get("pooled_from")
    if not pooled:
        return []
    counts: dict[str, int] = {}
    for run in pooled:
        for key in run["workloads"]:
            counts[key] = counts.get(key, 0) + 1
    again = [key for key, n in counts.items() if n > 1]
    lines = [
        f"**Pooled** from {len(pooled)} runs of one protocol (same settings, CPU and "
        f"predictors), {len(counts)} distinct workloads. "
        + (
            f"{len(again)} workload(s) were tuned in more than one run "
            f"({', '.join(again)}): each run's sessions count as further seeds, every "
            "ratio pairing sessions of one run."
            if again
            else "No workload was tuned twice."
        ),
        "",
    ]
    for run in pooled:
        lines.append(
            f"- `{run['json']}`: {len(run['workloads'])} workloads, affinity "
            f"{run.get('affinity')}, "
            f"{run['elapsed_s'] / 60:.1f} min, {run['load']} `{run['command']}`"
        )
    return [*lines, ""]


def _load_note(report: dict[str, Any]) -> str:
    """The load averages around the run; a run still going (or interrupted) has no end yet,
    and says how far it got, so that its JSON can be summarised before it finishes."""
    machine, s = report["machine"], report["settings"]
    start = f"load average {machine['loadavg_start'][1]:.2f} at the start"
    if "loadavg_end" in machine:
        return f"{start}, {machine['loadavg_end'][1]:.2f} at the end (5 min)."
    done = sum(len(seeds) for runs in report["runs"].values() for seeds in runs.values())
    planned = len(report["workloads"]) * len(s["contenders"]) * len(s["seeds"])
    return f"{start} (5 min); **unfinished: {done} of {planned} sessions**."


def _over(overall: dict[str, Any], counted: int | None) -> str:
    """`` (over N of M workloads)`` where a geomean left workloads out (see overall_summary)."""
    if counted is None or counted == overall["workloads"]:
        return ""
    return f" (over {counted} of {overall['workloads']} workloads)"


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    budgets = s["budgets"]
    names = [c for c in CONTENDERS if c in s["contenders"]]
    per, overall = report["summary"]["per_workload"], report["summary"]["overall"]
    pooled = bool(report.get("pooled_from"))
    lines = [
        f"# Tuning benchmark{' (--quick)' if s['quick'] else ''}",
        "",
        f"{report['machine']['cpu']}, {s['num_cores']} core(s) (affinity "
        f"{'per run' if pooled else report['machine']['affinity']}), "
        f"TVM {report['versions']['tvm']}; "
        f"{len(s['seeds'])} seed(s){' per run' if pooled else ''}, "
        f"{s['trials']} trials, {s['num_trials_per_iter']} per "
        f"batch, population {s['population_size'] or 512}. Total {report['elapsed_s'] / 60:.1f}"
        f" min; "
        + (
            "load averages and commands: below."
            if pooled
            else f"{_load_note(report)} Command: `{report['command']}`"
        ),
        "",
        *_pooled_note(report),
        *_resumed_note(report),
        *_machine_mismatch_note(report),
        *_transfer_note(report),
        "## Search-time speedup over xgb (time / time at batch end / trials to reach xgb's "
        "final best)",
        "",
        "Times are when the measurement that reached it came back, then the end of its "
        "batch (MetaSchedule builds a whole batch before measuring any of it), for xgb's own "
        "best alike. `<=`: some seed never reached it (charged its whole session): an upper "
        "bound."
        + (
            f" Reaching means coming within {100 * s['reach_rtol']:g}% of it."
            if s.get("reach_rtol")
            else ""
        ),
        "",
        "| workload | " + " | ".join(names[1:]) + " |",
        "|---|" + "---|" * (len(names) - 1),
    ]
    for key, rows in per.items():
        cells = []
        for n in names[1:]:
            r = rows.get(n)
            if r is None:
                cells.append("-")
                continue
            note = "" if not r["bound"] else f" ({r['reached']} reached)"
            cells.append(_speedups(r) + note)
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    cells = [
        f"**{_speedups(overall[n])}**" + _over(overall[n], overall[n].get("speedup_workloads"))
        for n in names[1:]
        if n in overall
    ]
    lines += [f"| geomean | {' | '.join(cells)} |", ""]
    lines += _ceiling_table(per, overall, names[1:])
    lines += _order_table(overall, names)
    lines += [
        "## Best latency relative to xgb at equal trial budgets (< 1: faster)",
        "",
        "| workload | budget | " + " | ".join(names[1:]) + " | xgb (ms) |",
        "|---|---|" + "---|" * len(names),
    ]
    for key, rows in per.items():
        for b in budgets:
            cells = [
                _fmt_ratio(rows[n]["relative_latency"][str(b)]) for n in names[1:] if n in rows
            ]
            ms = rows[BASELINE]["best_at_ms"][str(b)]
            xgb_ms = f"{ms:.4g}" if math.isfinite(ms) else "n/a"
            lines.append(f"| {key} | {b} | " + " | ".join(cells) + f" | {xgb_ms} |")
    for b in budgets:
        cells = [
            f"**{_fmt_ratio(overall[n]['relative_latency'][str(b)])}**"
            + _over(overall[n], overall[n].get("relative_latency_workloads", {}).get(str(b)))
            for n in names[1:]
        ]
        lines.append(f"| geomean | {b} | " + " | ".join(cells) + " | |")
    lines += [
        "",
        "## Cost model's share of tuning wall time (mean s per session in brackets)",
        "",
        "| workload | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key, rows in per.items():
        cells = [
            f"{rows[n]['cost_model_fraction']:.1%} ({rows[n]['tuning_seconds']:.0f} s)"
            for n in names
            if n in rows
        ]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    goal = []
    for name in [n for n in FROZEN if n in overall]:
        share = overall[name]["cost_model_fraction"]
        verdict = "meets" if share <= FROZEN_GOAL else "misses"
        goal.append(f"{name} {verdict} the <= {FROZEN_GOAL:.0%} goal ({share:.1%}).")
    means = " | ".join(f"**{overall[n]['cost_model_fraction']:.1%}**" for n in names)
    lines += [
        f"| mean | {means} |",
        "",
        *([" ".join(goal), ""] if goal else []),
        *_phase_table(per, names),
        "Workloads: "
        + "; ".join(
            f"{w['key']} ({w['source']}" + (f", {w['flops']:.3g} FLOPs" if w["flops"] else "") + ")"
            for w in report["workloads"]
        ),
        "",
        f"![best latency vs trials]({Path(report['outputs']['png']).name})",
        "",
    ]
    return "\n".join(lines)


def _ceiling_table(
    per: dict[str, dict[str, dict[str, Any]]], overall: dict[str, Any], names: list[str]
) -> list[str]:
    """The speedups no cost model could beat in this run (see :func:`speedup_ceiling`)."""
    names = [n for n in names if n in overall]
    if not names:
        return []
    trials = overall[names[0]].get("trial_speedup_ceiling", math.nan)
    lines = [
        "## The most any cost model could gain here",
        "",
        "Had a session's very first measurement reached xgb's final best: xgb's trials to "
        "it (the same for every contender), and xgb's time to it over the contender's wait "
        "for its first measurement: a whole search round (its own scoring included) and the "
        "batch's builds, which a better prior does not shorten.",
        "",
        "| workload | trials | " + " | ".join(f"time: {n}" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for key, rows in per.items():
        first = next((rows[n] for n in names if n in rows), {})
        cells = [
            _fmt_ratio(rows[n].get("time_speedup_ceiling", math.nan)) if n in rows else "-"
            for n in names
        ]
        lines.append(
            f"| {key} | {_fmt_ratio(first.get('trial_speedup_ceiling', math.nan))} | "
            + " | ".join(cells)
            + " |"
        )
    cells = [f"**{_fmt_ratio(overall[n].get('time_speedup_ceiling', math.nan))}**" for n in names]
    lines += [f"| geomean | **{_fmt_ratio(trials)}** | " + " | ".join(cells) + " |", ""]
    return lines


def _order_table(overall: dict[str, Any], names: list[str]) -> list[str]:
    """How well each contender ordered its own batches (see :func:`first_batch_order`),
    and what a perfect order within the same batches would have saved in trials."""
    names = [n for n in names if overall.get(n, {}).get("first_batch_sessions")]
    if not names:
        return []
    lines = [
        "## Order within a batch",
        "",
        "MetaSchedule measures a batch best-predicted first. Where each session's first "
        "batch had its fastest candidate (random order in brackets), and the trial ratio to "
        "xgb's final best as measured and had every batch measured its fastest candidate "
        "first (the same batches: the most a better order within them could give).",
        "",
        "| contender | sessions | mean position of the best | best came first | best in "
        "the first 4 | trials: measured / best first |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        o = overall[n]
        ratios = (
            "-"
            if n == BASELINE
            else f"{_fmt_ratio(o['trial_speedup'], o['bound'])} / "
            f"{_fmt_ratio(o.get('trial_speedup_best_first', math.nan), o['bound'])}"
        )
        lines.append(
            f"| {n} | {o['first_batch_sessions']} | {o['first_batch_best_position']:.1f} "
            f"({o['first_batch_best_position_random']:.1f}) | "
            f"{o['first_batch_best_first']:.0%} ({o['first_batch_best_first_random']:.0%}) | "
            f"{o['first_batch_best_in_4']:.0%} ({o['first_batch_best_in_4_random']:.0%}) | "
            f"{ratios} |"
        )
    return [*lines, ""]


def _speedups(row: dict[str, Any]) -> str:
    """``time / time at batch end / trials`` (reports without batch-end times: two)."""
    bound = row["bound"]
    parts = [_fmt_ratio(row["time_speedup"], bound)]
    if "time_speedup_batch_end" in row:
        parts.append(_fmt_ratio(row["time_speedup_batch_end"], bound))
    parts.append(_fmt_ratio(row["trial_speedup"], bound))
    return " / ".join(parts)


def _phase_table(per: dict[str, dict[str, dict[str, Any]]], names: list[str]) -> list[str]:
    """Mean seconds per session by phase, over all workloads (empty for old reports)."""
    rows = []
    for name in names:
        phases = [r[name].get("phase_seconds") for r in per.values() if name in r]
        if not phases or any(p is None for p in phases):
            continue
        mean = {k: _mean([p[k] for p in phases]) for k in phases[0]}
        rows.append(
            f"| {name} | {mean['search']:.1f} | {mean['cost_model']:.1f} | {mean['build']:.1f}"
            f" | {mean['measure']:.1f} | {mean['total']:.1f} |"
        )
    if not rows:
        return []
    return [
        "## Where a session's time went (mean s per session, all workloads)",
        "",
        "Search is MetaSchedule's sampling, evolution and bookkeeping, the cost model left out.",
        "",
        "| contender | search | cost model | build | measure | total |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def machine_info(cores: int) -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "cpu": cpu,
        "llvm_cpu": tvm.get_global_func("target.llvm_get_system_cpu")(),
        "logical_cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "num_cores": cores,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": commit,
        "loadavg_start": os.getloadavg(),  # other work on the machine skews times and latencies
    }


def versions() -> dict[str, str]:
    import torch  # noqa: PLC0415
    import xgboost  # noqa: PLC0415

    return {"tvm": tvm.__version__, "torch": torch.__version__, "xgboost": xgboost.__version__}


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj


# ------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="data/llvm-znver4")
    p.add_argument("--target", help="target key (default: the dataset folder's name)")
    p.add_argument("--predictor", help="Predictor folder (default: the bundled one for --target)")
    p.add_argument(
        "--trace-predictor",
        help="trace-token predictor folder for trace-frozen (default: the bundled one)",
    )
    p.add_argument("--meta-init", help="meta-initialisation folder: adds meta-adaptive")
    p.add_argument(
        "--contenders",
        help=f"comma list of {', '.join(CONTENDERS)} (default: {','.join(DEFAULT_CONTENDERS)})",
    )
    p.add_argument("--workloads", help="comma list of named workloads, dataset names or ids")
    p.add_argument(
        "--sample",
        type=int,
        metavar="N",
        help="N dataset workloads drawn at random, half test split, half held-out models",
    )
    p.add_argument("--sample-seed", type=int, default=0, help="the --sample draw's seed")
    p.add_argument("--min-flops", type=float, default=MIN_FLOPS)
    p.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 3; --quick 2)")
    p.add_argument("--trials", type=int, help="trial budget (default 128; --quick 40)")
    p.add_argument("--num-trials-per-iter", type=int, default=16)
    p.add_argument("--population-size", type=int, help="default MetaSchedule's 512; --quick 128")
    p.add_argument("--num-cores", type=int, default=1, help="target num-cores and XGB threads")
    p.add_argument("--reach-rtol", type=float, default=0.0, help="'reached' within this ratio")
    p.add_argument("--work-dir", help="keep the tuning databases here (default: a temp dir)")
    p.add_argument("--out", help="output path without suffix")
    p.add_argument("--verbose", action="store_true", help="MetaSchedule's per-batch logs")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the finished sessions of an interrupted run at --out.json (same settings) "
        "and tune only the rest",
    )
    p.add_argument("--quick", action="store_true", help="2 workloads, 2 seeds, 40 trials")
    p.add_argument(
        "--resummarize",
        metavar="JSON",
        nargs="+",
        help="tune nothing: recompute the summary of an earlier run's JSON (e.g. with another "
        "--reach-rtol) and write it to --out; several runs of one protocol are pooled",
    )
    args = p.parse_args(argv)
    if args.sample is not None and (args.workloads or args.quick or args.sample < 1):
        raise SystemExit("--sample N (N >= 1) draws the workloads: drop --workloads / --quick")
    args.target = args.target or Path(args.dataset).name
    args.seeds = args.seeds or (2 if args.quick else 3)
    args.trials = args.trials or (40 if args.quick else 128)
    if args.population_size is None and args.quick:
        args.population_size = 128
    names = args.contenders.split(",") if args.contenders else list(DEFAULT_CONTENDERS)
    if args.meta_init and not any(n in META_CONTENDERS for n in names):
        names.append("meta-adaptive")
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown or BASELINE not in names:
        raise SystemExit(f"contenders must include {BASELINE} and be among {CONTENDERS}")
    if any(n in META_CONTENDERS for n in names) and not args.meta_init:
        raise SystemExit(f"{' and '.join(META_CONTENDERS)} need --meta-init DIR")
    args.contender_names = [c for c in CONTENDERS if c in names]
    default_out = RESULTS / ("bench_tuning-quick" if args.quick else "bench_tuning")
    args.out = Path(args.out) if args.out else default_out
    return args


def _restore(run: dict[str, Any]) -> dict[str, Any]:
    """A session as the summary reads it, from its JSON form (which wrote +inf as null)."""
    inf = math.inf
    history = [(h[0], h[1], inf if h[2] is None else h[2], *h[3:]) for h in run["history"]]
    out = {
        "history": history,
        "best_latency_s": inf if run["best_latency_s"] is None else run["best_latency_s"],
        "seconds": run["seconds"],
        "cost_model_stats": run.get("cost_model_stats", {}),
    }
    out.update({k: run[k] for k in ("build_seconds", "run_seconds") if k in run})
    return out


RESUME_KEYS = ("dataset", "target", "contenders", "seeds", "trials", "num_trials_per_iter")
RESUME_KEYS += ("population_size", "num_cores")
# pooled runs may differ in dataset and seeds (a draw's source, more seeds), not in how
# each session tuned and was measured
POOL_KEYS = tuple(k for k in RESUME_KEYS if k not in ("dataset", "seeds"))
POOL_KEYS += ("budgets", "strategy", "measure")


def _settings_differences(
    there: dict[str, Any],
    here: dict[str, Any],
    keys: Sequence[str],
    labels: tuple[str, str] = ("there", "now"),
) -> list[str]:
    """``"key: <there> there, <here> now"`` for each of ``keys`` the two settings differ in."""
    return [
        f"{k}: {there.get(k)!r} {labels[0]}, {here.get(k)!r} {labels[1]}"
        for k in keys
        if there.get(k) != here.get(k)
    ]


def finished_sessions(
    path: Path, settings: dict[str, Any], workload_keys: list[str]
) -> tuple[dict, dict[str, Any]]:
    """The sessions an interrupted run at ``path`` finished, ``{workload: {contender: {seed:
    run}}}`` as its JSON holds them, and its first command and the time it (and any earlier
    part) took, so that ``--resume`` tunes only the rest. Refused when
    the run's settings differ: a summary mixing budgets or populations would compare unlike
    sessions."""
    if not path.exists():
        raise SystemExit(f"--resume: {path} does not exist; run without --resume to start")
    old = json.loads(path.read_text())
    differ = _settings_differences(old["settings"], settings, RESUME_KEYS)
    missing = [w for w in old["runs"] if w not in workload_keys]
    if missing:
        differ.append(f"workloads {missing} there, not selected now")
    if differ:
        raise SystemExit(
            f"--resume: {path} was run with other settings ({'; '.join(differ)}); "
            "pass the same options or choose another --out"
        )
    runs = {w: {c: dict(r) for c, r in by.items()} for w, by in old["runs"].items()}
    earlier = old.get("resumed", {})
    return runs, {
        "first_command": earlier.get("first_command", old["command"]),
        "earlier_elapsed_s": earlier.get("earlier_elapsed_s", 0.0) + old.get("elapsed_s", 0.0),
    }


def _protocol_differences(report: dict[str, Any], first: dict[str, Any]) -> list[str]:
    """What makes two runs' sessions unlike: settings, CPU, or the predictors' weights."""
    labels = ("there", "in the first run")
    differ = _settings_differences(report["settings"], first["settings"], POOL_KEYS, labels)
    for k in ("cpu", "llvm_cpu"):
        if report["machine"].get(k) != first["machine"].get(k):
            differ.append(f"machine {k}: {report['machine'].get(k)!r}")
    for name in sorted(set(report.get("models", {})) | set(first.get("models", {}))):
        mine = report.get("models", {}).get(name, {}).get("weights_sha256")
        theirs = first.get("models", {}).get(name, {}).get("weights_sha256")
        if mine != theirs:
            differ.append(f"{name} weights {str(mine)[:12]} against {str(theirs)[:12]}")
    return differ


def pool_reports(sources: list[Path]) -> dict[str, Any]:
    """One report of several runs of one protocol (e.g. two ``--sample`` draws), so that
    the geometric means are over every workload any of them tuned.

    A workload tuned in more than one run keeps each run's sessions as further seeds (run
    two's seed s becomes seed s + n, n the seeds already there), so every ratio still pairs
    a contender's session with xgb's of the same run. Refused when the runs differ in a
    setting, CPU or predictor: a mean over unlike sessions would compare nothing."""
    reports = [json.loads(path.read_text()) for path in sources]
    first = reports[0]
    for path, report in zip(sources[1:], reports[1:], strict=True):
        differ = _protocol_differences(report, first)
        if differ:
            raise SystemExit(
                f"--resummarize: {path} was run differently from {sources[0]} "
                f"({'; '.join(differ)}); pool only runs of one protocol"
            )
    pooled = json.loads(json.dumps(first))
    pooled["runs"], workloads = {}, {}
    for report in reports:
        for entry in report["workloads"]:
            workloads.setdefault(entry["key"], entry)
        for key, by_contender in report["runs"].items():
            have = pooled["runs"].setdefault(key, {})
            offset = 1 + max((int(seed) for runs in have.values() for seed in runs), default=-1)
            for contender, runs in by_contender.items():
                into = have.setdefault(contender, {})
                into.update({str(int(seed) + offset): run for seed, run in runs.items()})
    pooled["workloads"] = list(workloads.values())
    pooled["elapsed_s"] = sum(report.get("elapsed_s", 0.0) for report in reports)
    pooled["pooled_from"] = [
        {
            "json": str(path),
            "command": report["command"],
            "elapsed_s": report.get("elapsed_s", 0.0),
            "workloads": [entry["key"] for entry in report["workloads"]],
            "load": _load_note(report),
            "affinity": report["machine"].get("affinity"),
        }
        for path, report in zip(sources, reports, strict=True)
    ]
    return pooled


def resummarize(sources: Path | list[Path], rtol: float, out: Path) -> dict[str, Any]:
    """An earlier run's report with its summary recomputed at ``rtol`` (JSON, MD, PNG at
    ``out``): the reach criterion is a reporting choice, so changing it needs no re-tuning.
    Several runs are pooled into one report first (:func:`pool_reports`)."""
    sources = [sources] if isinstance(sources, Path) else list(sources)
    report = pool_reports(sources) if len(sources) > 1 else json.loads(sources[0].read_text())

    raw = {
        w: {c: {int(seed): _restore(r) for seed, r in runs.items()} for c, runs in by.items()}
        for w, by in report["runs"].items()
    }
    budgets = report["settings"]["budgets"]
    report["settings"]["reach_rtol"] = rtol
    report["resummarized_from"] = {
        "json": str(sources[0]) if len(sources) == 1 else [str(p) for p in sources],
        "command": shlex.join(sys.argv),
    }
    report["outputs"] = {s: str(out.with_suffix(f".{s}")) for s in ("json", "md", "png")}
    report["summary"] = summarize(raw, budgets, rtol)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_json(report, out.with_suffix(".json"))
    plot(raw, out.with_suffix(".png"))
    out.with_suffix(".md").write_text(markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resummarize:
        report = resummarize([Path(p) for p in args.resummarize], args.reach_rtol, args.out)
        print(markdown(report))
        return 0
    start = time.perf_counter()
    workloads = choose_workloads(args)
    if not workloads:
        raise SystemExit("no workloads selected")
    contenders, model_info = load_contenders(args, args.contender_names)
    budgets = sorted({b for b in BUDGETS if b < args.trials} | {args.trials})
    seeds = list(range(args.seeds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "settings": {
            "dataset": args.dataset,
            "target": args.target,
            "contenders": args.contender_names,
            "seeds": seeds,
            "trials": args.trials,
            "num_trials_per_iter": args.num_trials_per_iter,
            "population_size": args.population_size,
            "num_cores": args.num_cores,
            "budgets": budgets,
            "reach_rtol": args.reach_rtol,
            "quick": args.quick,
            "measure": "tunezoo.measure.MeasureSettings() defaults, fast CPU builder",
            "strategy": "evolutionary",
        },
        "machine": machine_info(args.num_cores),
        "versions": versions(),
        "models": model_info,
        "workloads": [w.to_json() for w in workloads],
        "outputs": {s: str(args.out.with_suffix(f".{s}")) for s in ("json", "md", "png")},
        "runs": {w.key: {} for w in workloads},
    }
    raw: dict[str, dict[str, dict[int, dict[str, Any]]]] = {w.key: {} for w in workloads}
    total = len(workloads) * len(seeds) * len(args.contender_names)
    kept = 0
    if args.resume:
        finished, earlier = finished_sessions(
            args.out.with_suffix(".json"), report["settings"], [w.key for w in workloads]
        )
        for w, by in finished.items():
            for name, runs in by.items():
                for seed, run in runs.items():
                    report["runs"][w].setdefault(name, {})[int(seed)] = run
                    raw[w].setdefault(name, {})[int(seed)] = _restore(run)
                    kept += 1
        report["resumed"] = {
            "sessions_kept": kept,
            "at": time.strftime("%Y-%m-%d %H:%M:%S"),
            **earlier,
        }
        print(f"--- resuming: {kept} of {total} sessions already finished in {args.out}.json")
    print(f"--- {len(workloads)} workloads x {len(seeds)} seeds x {args.contender_names}")
    with tempfile.TemporaryDirectory(prefix="bench_tuning-") as tmp:
        root = Path(args.work_dir) if args.work_dir else Path(tmp)
        done = kept
        for w in workloads:
            mod = w.module()
            for seed in seeds:
                for name in args.contender_names:  # interleaved: drift hits everyone alike
                    if seed in raw[w.key].get(name, {}):
                        continue  # finished before a --resume
                    model, mode = contenders.cost_model(name)
                    session_dir = root / w.key / f"{name}-s{seed}"
                    # a session starts from an empty database: records left by an
                    # interrupted run would seed its search
                    shutil.rmtree(session_dir, ignore_errors=True)
                    if not args.verbose:  # MetaSchedule resets its level every session
                        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
                    result: TuneResult = tune(
                        mod,
                        target_key=args.target,
                        trials=args.trials,
                        predictor=model,
                        mode=mode,
                        work_dir=session_dir,
                        num_trials_per_iter=args.num_trials_per_iter,
                        seed=seed,
                        progress=False,
                        num_cores=args.num_cores,
                        population_size=args.population_size,
                    )
                    done += 1
                    run = result.to_json()
                    run.pop("work_dir")
                    report["runs"][w.key].setdefault(name, {})[seed] = run
                    raw[w.key].setdefault(name, {})[seed] = {  # +inf kept, unlike the JSON
                        "history": [tuple(h) for h in result.history],
                        "best_latency_s": result.best_latency_s,
                        "seconds": result.seconds,
                        "cost_model_stats": result.cost_model_stats,
                        "build_seconds": result.build_seconds,
                        "run_seconds": result.run_seconds,
                    }
                    print(
                        f"[{done}/{total} {time.perf_counter() - start:6.0f} s] {w.key} "
                        f"{name} seed {seed}: {result.best_latency_s * 1e3:.4g} ms after "
                        f"{result.trials} trials in {result.seconds:.0f} s (cost model "
                        f"{result.cost_model_fraction():.1%})",
                        flush=True,
                    )
                    report["elapsed_s"] = time.perf_counter() - start
                    _write_json(report, args.out.with_suffix(".json"))
    report["summary"] = summarize(raw, budgets, args.reach_rtol)
    report["elapsed_s"] = time.perf_counter() - start
    report["machine"]["loadavg_end"] = os.getloadavg()
    _write_json(report, args.out.with_suffix(".json"))
    plot(raw, args.out.with_suffix(".png"))
    text = markdown(report)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"--- done in {report['elapsed_s'] / 60:.1f} min; wrote {args.out}.{{json,md,png}}")
    return 0


def _write_json(report: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_json_safe(report), indent=1) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
