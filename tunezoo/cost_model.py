"""The MetaSchedule cost-model adapter: a tunezoo :class:`~tunezoo.predictor.Predictor` as a
``PyCostModel`` that ``tune_tir`` / ``tune_tasks`` / ``tune_relax`` accept as ``cost_model=``.

Two modes:

* ``frozen``: the pretrained predictor ranks candidates and nothing is learnt during the
  session. ``update`` only counts what it was shown. This is the mode to use when a
  predictor was trained on the same hardware: it costs one forward pass per ``predict``.
* ``adaptive``: few-shot fine-tuning on what the session measures. Each ``update`` adds the
  measured candidates to a per-workload pool and takes a few gradient steps of the ranking
  loss tunezoo was trained with, from the current weights. Labels are normalised throughput
  (best latency / latency) within the session's measurements of that workload; failed runs
  get 0. The weights being tuned are a copy: the predictor object passed in is never
  mutated, so one loaded artifact can serve several sessions.

Scores go through a fixed monotone map to positive numbers (``elu(x) + 1``) because
MetaSchedule's evolutionary search clips negative predictions to 0 and uses the scores as
sampling weights, and keeps a heap of the best candidates across ``predict`` calls: a
per-batch normalisation would make scores of different calls incomparable.

Every method is timed (:meth:`TunezooCostModel.stats`) so a tuning benchmark can report the
cost model's share of the wall time. :class:`TimedCostModel` gives MetaSchedule's own
cost models (``"xgb"``) the same statistics, so baselines are measured the same way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import tvm_ffi
from safetensors.torch import load_file, save_file
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.cost_model import PyCostModel

from tunezoo.feature_cache import DEFAULT_MAX_ENTRIES, CandidateFeatureCache
from tunezoo.models import build_model
from tunezoo.predictor import (
    Predictor,
    PredictorFormatError,
    check_feature_version,
    sha256_file,
)
from tunezoo.training import LOSSES

Mode = Literal["frozen", "adaptive"]
MODES: tuple[str, ...] = ("frozen", "adaptive")
SIDECAR_SUFFIX = ".json"
SAVE_FORMAT = 1
# MetaSchedule's runners report failures as an error message; its database stores them
# with a run time of 1e10 s. Anything at least this slow is treated as a failure.
FAILED_RUN_SECS = 1e9


@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """How ``adaptive`` mode fine-tunes during a session (ignored in ``frozen`` mode).

    The defaults are deliberately timid (20 steps at 1e-4 per update): a session measures
    a few dozen candidates per workload, enough to correct a pretrained ranking, far too
    few to retrain it.
    """

    steps: int = 20
    lr: float = 1e-4
    weight_decay: float = 0.0
    loss: str = "lambdarank"  # a key of tunezoo.training.LOSSES
    max_per_group: int = 128  # candidates of one workload per gradient step
    min_candidates: int = 2  # a workload trains once it has this many measurements
    grad_clip: float = 5.0
    # Train on the workload just measured (default), or on every workload of the session:
    # the latter guards against forgetting but costs a step per workload tuned so far.
    all_workloads: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is not one of {sorted(LOSSES)}")
        if self.steps < 0 or self.lr < 0 or self.max_per_group < 2 or self.min_candidates < 2:
            raise ValueError(f"invalid adaptation settings: {self}")


def positive_scores(raw: np.ndarray) -> np.ndarray:
    """``elu(raw) + 1``: strictly increasing, > 0, never saturating upwards, batch-free.

    MetaSchedule clips scores below 0 and samples parents in proportion to them, so raw
    ranking scores (any real number) must be mapped to positive ones without reordering.
    Unlike a sigmoid, this map keeps the good candidates (large scores) apart.
    """
    x = np.asarray(raw, dtype=np.float64)
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def run_failed(result: Any) -> bool:
    """Whether a MetaSchedule ``RunnerResult`` is a failure (error, no or absurd times)."""
    if getattr(result, "error_msg", None):
        return True
    secs = getattr(result, "run_secs", None)
    if not secs:
        return True
    values = [float(s) for s in secs]
    return not all(math.isfinite(v) and 0 < v < FAILED_RUN_SECS for v in values)


def run_latency(result: Any) -> float:
    """Mean run time in seconds (how MetaSchedule scores a run), +inf for a failure."""
    if run_failed(result):
        return math.inf
    values = [float(s) for s in result.run_secs]
    return sum(values) / len(values)


def _workload_key(context: Any) -> str:
    return str(tvm_ffi.structural_hash(context.mod))


def _start_update(
    stats: dict[str, Any], candidates: Sequence[Any], results: Sequence[Any]
) -> tuple[list[Any], list[Any]]:
    """What every tunezoo cost model's ``update`` does first: check that candidates and
    results pair up, and count them (calls, candidates, failed runs)."""
    candidates, results = list(candidates), list(results)
    if len(candidates) != len(results):
        raise ValueError(f"{len(candidates)} candidates but {len(results)} results")
    stats["update_calls"] += 1
    stats["updated_candidates"] += len(candidates)
    stats["failed_candidates"] += sum(run_failed(r) for r in results)
    return candidates, results


def measurements_to_tensors(
    keys: Sequence[str], mats: dict[str, list[np.ndarray]], latencies: dict[str, list[float]]
) -> dict[str, torch.Tensor]:
    """A session's measurements per workload as safetensors entries ``group.<i>.*`` (``i``
    indexes ``keys``, which the caller stores in its sidecar)."""
    tensors: dict[str, torch.Tensor] = {}
    for i, key in enumerate(keys):
        counts = np.array([len(m) for m in mats[key]], dtype=np.int64)
        values = np.concatenate(mats[key]).astype(np.float32)
        tensors[f"group.{i}.values"] = torch.from_numpy(values)
        tensors[f"group.{i}.counts"] = torch.from_numpy(counts)
        tensors[f"group.{i}.latencies"] = torch.tensor(latencies[key], dtype=torch.float64)
    return tensors


def measurements_from_tensors(
    path: Path, tensors: dict[str, torch.Tensor], keys: Sequence[str]
) -> tuple[dict[str, list[np.ndarray]], dict[str, list[float]]]:
    """The inverse of :func:`measurements_to_tensors`; a missing entry names the file."""
    mats: dict[str, list[np.ndarray]] = {}
    latencies: dict[str, list[float]] = {}
    for i, key in enumerate(keys):
        try:
            values = tensors[f"group.{i}.values"].numpy()
            counts = tensors[f"group.{i}.counts"].numpy()
            latencies[key] = tensors[f"group.{i}.latencies"].tolist()
        except KeyError as exc:
            raise PredictorFormatError(f"{path}: no tensor {exc}") from exc
        bounds = np.concatenate([[0], np.cumsum(counts)])
        mats[key] = [values[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return mats, latencies


@dataclasses.dataclass
class _Group:
    """What the session has measured of one workload."""

    mats: list[np.ndarray] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)

    def labels(self) -> np.ndarray:
        lat = np.asarray(self.latencies, dtype=np.float64)
        ok = np.isfinite(lat)
        if not ok.any():
            return np.zeros(len(lat), dtype=np.float32)
        best = lat[ok].min()
        return np.where(ok, best / np.where(ok, lat, 1.0), 0.0).astype(np.float32)

    def trainable(self, min_candidates: int) -> bool:
        labels = self.labels()
        return len(labels) >= min_candidates and len(np.unique(labels)) > 1


def _direct_python_calls(cls: type) -> type:
    """Let Python callers reach the Python methods of a ``derived_object`` directly.

    Without this, ``model.load(path)`` from Python goes through TVM's FFI and back, and any
    exception arrives as a bare ``RuntimeError``; with it, callers get tunezoo's typed
    errors. MetaSchedule's C++ side is unaffected: it holds the packed functions that
    ``derived_object`` made at construction time, which call the same methods.
    """

    def forward(name: str):
        def method(self, *args, **kwargs):
            return getattr(self._inst, name)(*args, **kwargs)

        method.__name__ = name
        method.__doc__ = getattr(cls._cls, name).__doc__
        return method

    for name in ("load", "save", "update", "predict"):
        setattr(cls, name, forward(name))
    return cls


def _new_stats(mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "predict_calls": 0,
        "predicted_candidates": 0,
        "update_calls": 0,
        "updated_candidates": 0,
        "failed_candidates": 0,
        "workloads": 0,
        "train_steps": 0,
        "scored_candidates": 0,  # went through a forward pass (the rest were remembered)
        "last_loss_first_step": None,
        "last_loss_last_step": None,
        "feature_seconds": 0.0,  # feature extraction, in predict and update
        "predict_seconds": 0.0,  # the forward passes of predict
        "train_seconds": 0.0,  # gradient steps in update
        "update_seconds": 0.0,  # everything in update (its features and training included)
        "total_seconds": 0.0,  # everything in predict and update
    }


@_direct_python_calls
@derived_object
class TunezooCostModel(PyCostModel):
    """A tunezoo predictor as a MetaSchedule cost model (see the module docstring).

    ``predictor`` is copied; the copy is what ``adaptive`` mode trains and what
    ``save``/``load`` write and read. ``adapt`` (or keyword settings of
    :class:`AdaptConfig`) configure adaptive mode.
    """

    def __init__(
        self,
        predictor: Predictor,
        mode: Mode = "frozen",
        adapt: AdaptConfig | None = None,
        feature_cache_size: int = DEFAULT_MAX_ENTRIES,
        **adapt_kwargs: Any,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {list(MODES)}")
        check_feature_version(predictor.feature_version, f"{predictor.arch}.{predictor.target_key}")
        if adapt is not None and adapt_kwargs:
            raise ValueError("give either adapt=AdaptConfig(...) or its fields, not both")
        self.mode: str = mode
        self._use_adapt(adapt or AdaptConfig(**adapt_kwargs))
        self.predictor: Predictor = predictor.copy()
        self.predictor.model.eval()
        self._groups: dict[str, _Group] = {}
        self._optimizer: torch.optim.Optimizer | None = None
        self._stats = _new_stats(mode)
        self._features = CandidateFeatureCache(feature_cache_size, predictor.feature_version)
        # raw scores by candidate key, valid until the weights change (_train clears it)
        self._scores: dict[Any, float] = {}

    # ------------------------------------------------------------------ MetaSchedule API

    def predict(self, context: Any, candidates: Sequence[Any]) -> np.ndarray:
        """Scores (higher = predicted faster, always > 0): one forward pass for the
        candidates not scored since the weights last changed; the others are remembered
        (the evolutionary search scores most of a population again in every generation)."""
        t0 = time.perf_counter()
        _, raw = self.keyed_raw_scores(context, candidates)
        out = positive_scores(raw)
        s = self._stats
        s["predict_calls"] += 1
        s["predicted_candidates"] += len(raw)
        s["total_seconds"] += time.perf_counter() - t0
        return out

    def keyed_raw_scores(
        self, context: Any, candidates: Sequence[Any]
    ) -> tuple[list[Any], np.ndarray]:
        """(a key per candidate, its raw score) with the remembered scores reused; what
        :meth:`predict` maps to positive scores. Equal keys are equal schedules of one task
        (see :meth:`CandidateFeatureCache.keyed_features`). Timed into ``feature_seconds``
        and ``predict_seconds``; the caller counts the call."""
        t0 = time.perf_counter()
        keys, mats = self._features.keyed_features(context, candidates)
        t1 = time.perf_counter()
        new = {k: m for k, m in zip(keys, mats, strict=True) if k not in self._scores}
        if len(self._scores) + len(new) > self._features.max_entries:
            self._scores.clear()  # bounded like the features: a long session stays small
            new = dict(zip(keys, mats, strict=True))
        if new:
            scored = self.predictor.score_matrices(list(new.values()))
            self._scores.update(zip(new, scored.tolist(), strict=True))
        raw = np.array([self._scores[k] for k in keys], dtype=np.float64)
        s = self._stats
        s["scored_candidates"] += len(new)
        s["feature_seconds"] += t1 - t0
        s["predict_seconds"] += time.perf_counter() - t1
        return keys, raw

    def update(self, context: Any, candidates: Sequence[Any], results: Sequence[Any]) -> None:
        """Frozen: count only. Adaptive: remember the measurements, take a few steps."""
        t0 = time.perf_counter()
        s = self._stats
        candidates, results = _start_update(s, candidates, results)
        if self.mode == "adaptive" and candidates:
            tf = time.perf_counter()
            mats = self._features.features(context, candidates)
            s["feature_seconds"] += time.perf_counter() - tf
            key = _workload_key(context)
            group = self._groups.setdefault(key, _Group())
            group.mats.extend(mats)
            group.latencies.extend(run_latency(r) for r in results)
            s["workloads"] = len(self._groups)
            tt = time.perf_counter()
            self._train(list(self._groups) if self.adapt.all_workloads else [key])
            s["train_seconds"] += time.perf_counter() - tt
        elapsed = time.perf_counter() - t0
        s["update_seconds"] += elapsed
        s["total_seconds"] += elapsed

    def save(self, path: str) -> None:
        """Weights and the session's measurements (safetensors) at ``path``; mode,
        adaptation settings, workload keys and stats in ``path + .json``. Adaptive mode
        trains on every measurement of a workload so far, so a restored model must have
        them to go on as the saved one would."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        p = self.predictor
        tensors = p.tensors()
        keys = sorted(self._groups)
        mats = {k: self._groups[k].mats for k in keys}
        latencies = {k: self._groups[k].latencies for k in keys}
        tensors.update(measurements_to_tensors(keys, mats, latencies))
        save_file(tensors, target, metadata={"format": "pt", "arch": p.arch})
        sidecar = {
            "tunezoo_cost_model_format": SAVE_FORMAT,
            "mode": self.mode,
            "adapt": dataclasses.asdict(self.adapt),
            "predictor": p.config_dict(),
            "workload_keys": keys,
            "stats": self.stats(),
        }
        _write_sidecar(target, sidecar)

    def load(self, path: str) -> None:
        """Restore weights, measurements, mode, adaptation settings and stats written by
        :meth:`save` (same architecture only)."""
        target = Path(path)
        sidecar = _read_sidecar(target)
        config = sidecar["predictor"]
        p = self.predictor
        mine = p.config_dict()
        for key in ("arch", "arch_config", "feature_version"):
            if config.get(key) != mine[key]:
                raise PredictorFormatError(
                    f"{target}: saved {key} {config.get(key)!r} does not match this cost "
                    f"model's {mine[key]!r}; build the cost model with TunezooCostModel."
                    "from_file instead"
                )
        tensors = load_file(target)
        state, mean, std = _read_weights(target, tensors)
        mats, latencies = measurements_from_tensors(
            target, tensors, sidecar.get("workload_keys", [])
        )
        try:
            adapt = AdaptConfig(**sidecar.get("adapt", dataclasses.asdict(self.adapt)))
        except (TypeError, ValueError) as exc:
            raise PredictorFormatError(f"{_sidecar(target)}: bad 'adapt' settings: {exc}") from exc
        try:
            p.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PredictorFormatError(f"{target}: {str(exc).splitlines()[0]}") from exc
        p.mean.copy_(mean)
        p.std.copy_(std)
        p.model.eval()
        self._use_adapt(adapt)
        self._groups = {k: _Group(mats[k], latencies[k]) for k in mats}
        self.mode = sidecar.get("mode", self.mode)
        self._stats = {**_new_stats(self.mode), **sidecar.get("stats", {}), "mode": self.mode}
        self._optimizer = None  # Adam's moments belong to the old weights
        self._scores.clear()  # and so do the remembered scores

    # ------------------------------------------------------------------------ tunezoo API

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TunezooCostModel:
        """A cost model rebuilt from :meth:`save`'s two files alone (no artifact needed)."""
        target = Path(path)
        sidecar = _read_sidecar(target)
        config = sidecar["predictor"]
        check_feature_version(config.get("feature_version"), str(target))
        model = build_model(config["arch"], config["arch_config"])
        state, mean, std = _read_weights(target)
        model.load_state_dict(state, strict=True)
        predictor = Predictor(
            model,
            mean,
            std,
            config["target_key"],
            config["feature_version"],
            config.get("metadata", {}),
        )
        mode = overrides.pop("mode", sidecar.get("mode", "frozen"))
        adapt = overrides.pop("adapt", None)
        if overrides:
            raise TypeError(f"unknown arguments {sorted(overrides)}")
        out = cls(predictor, mode=mode)
        out.load(str(target))
        out.set_mode(mode)  # an explicit mode wins over the saved one
        if adapt is not None:  # and so do explicit adaptation settings
            out._use_adapt(adapt)
        return out

    def raw_scores(self, workload_key: str, mats: Sequence[np.ndarray]) -> np.ndarray:
        """The predictor's scores of feature matrices before the positive map (any real;
        higher = faster). One set of weights scores every workload, so the key is unused;
        it is there to match :meth:`MetaAdaptiveCostModel.raw_scores`."""
        del workload_key
        return self.predictor.score_matrices(list(mats))

    def _use_adapt(self, adapt: AdaptConfig) -> None:
        """Adaptation settings, and the subsampling generator seeded by them."""
        self.adapt: AdaptConfig = adapt
        self._rng = np.random.default_rng(adapt.seed)

    def set_mode(self, mode: Mode) -> None:
        """Switch between frozen and adaptive (e.g. freeze a model adapted earlier)."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {list(MODES)}")
        self.mode = mode
        self._stats["mode"] = mode

    def stats(self) -> dict[str, Any]:
        """Counts and seconds spent so far (a copy; see ``_new_stats`` for the keys)."""
        out = dict(self._stats)
        out.update(self._features.stats())
        out["arch"] = self.predictor.arch
        out["target_key"] = self.predictor.target_key
        return out

    def reset_stats(self) -> None:
        self._stats = _new_stats(self.mode)
        self._features.hits = self._features.misses = 0

    # --------------------------------------------------------------------------- adapting

    def _train(self, keys: list[str]) -> None:
        """``steps`` gradient steps of the ranking loss on the measured workloads ``keys``."""
        cfg = self.adapt
        groups = [self._groups[k] for k in keys if self._groups[k].trainable(cfg.min_candidates)]
        if not groups or cfg.steps == 0:
            return
        model = self.predictor.model
        self._scores.clear()  # the weights are about to change
        if self._optimizer is None:
            self._optimizer = torch.optim.AdamW(
                model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
            )
        loss_fn = LOSSES[cfg.loss]
        packed = [(g.mats, g.labels()) for g in groups]
        # nothing to subsample: the batch is the same every step, so build it once
        fixed = self._batch(packed) if all(len(m) <= cfg.max_per_group for m, _ in packed) else None
        model.train()
        first = last = None
        try:
            for _ in range(cfg.steps):
                values, offsets, labels, mask = fixed or self._batch(packed)
                scores = self.predictor.forward_packed(values, offsets)
                padded = scores.new_zeros(mask.shape)
                padded[mask] = scores
                loss = loss_fn(padded, labels, mask)
                self._optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                self._optimizer.step()
                last = float(loss.detach())
                first = last if first is None else first
        finally:
            model.eval()
        s = self._stats
        s["train_steps"] += cfg.steps
        s["last_loss_first_step"], s["last_loss_last_step"] = first, last

    def _batch(self, packed):
        """All trainable workloads as one padded batch (subsampled past ``max_per_group``)."""
        cap = self.adapt.max_per_group
        picks = []
        for mats, labels in packed:
            idx = np.arange(len(mats))
            if len(idx) > cap:
                idx = np.sort(self._rng.choice(idx, size=cap, replace=False))
            picks.append((mats, labels, idx))
        width = max(len(idx) for _, _, idx in picks)
        mask = torch.zeros((len(picks), width), dtype=torch.bool)
        labels_t = torch.zeros((len(picks), width))
        chosen: list[np.ndarray] = []
        for row, (mats, labels, idx) in enumerate(picks):
            mask[row, : len(idx)] = True
            labels_t[row, : len(idx)] = torch.from_numpy(labels[idx])
            chosen.extend(mats[i] for i in idx)
        counts = np.array([len(m) for m in chosen], dtype=np.int64)
        offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]))
        values = torch.from_numpy(np.concatenate(chosen).astype(np.float32))
        return values, offsets, labels_t, mask


# ------------------------------------------------------------------------- persistence


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _write_sidecar(path: Path, sidecar: dict[str, Any]) -> None:
    """``path + .json``: ``sidecar`` plus the sha256 of the weights just saved at ``path``,
    which :func:`_read_sidecar` checks."""
    text = json.dumps({**sidecar, "weights_sha256": sha256_file(path)}, indent=2, sort_keys=True)
    _sidecar(path).write_text(text + "\n")


def _read_sidecar(path: Path, format_key: str = "tunezoo_cost_model_format") -> dict[str, Any]:
    """The sidecar of a save, checked: both files exist, its format, the weights' sha256."""
    side = _sidecar(path)
    for p in (path, side):
        if not p.exists():
            raise PredictorFormatError(
                f"{p} is missing: not a saved tunezoo cost model (save writes the weights "
                f"and a '{SIDECAR_SUFFIX}' sidecar)"
            )
    try:
        sidecar = json.loads(side.read_text())
    except ValueError as exc:
        raise PredictorFormatError(f"{side}: invalid JSON ({exc})") from exc
    if sidecar.get(format_key) != SAVE_FORMAT:
        raise PredictorFormatError(
            f"{side}: {format_key} {sidecar.get(format_key)!r}, expected {SAVE_FORMAT}"
        )
    want = sidecar.get("weights_sha256")
    if want is not None and sha256_file(path) != want:
        raise PredictorFormatError(
            f"{path}: sha256 differs from the one {side.name} recorded; the weights were "
            "changed or corrupted after they were saved"
        )
    return sidecar


def _read_weights(
    path: Path, tensors: dict[str, torch.Tensor] | None = None
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """(model state, normaliser mean, std) of a save (``tensors``: already loaded)."""
    tensors = load_file(path) if tensors is None else tensors
    for key in ("normalizer.mean", "normalizer.std"):
        if key not in tensors:
            raise PredictorFormatError(f"{path}: no {key} tensor")
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    return state, tensors["normalizer.mean"], tensors["normalizer.std"]


# ---------------------------------------------------------------------- timed baseline


def _new_timed_stats(kind: str) -> dict[str, Any]:
    return {
        "mode": kind,
        "predict_calls": 0,
        "predicted_candidates": 0,
        "update_calls": 0,
        "updated_candidates": 0,
        "failed_candidates": 0,
        "predict_seconds": 0.0,  # all of predict (the inner model's features included)
        "update_seconds": 0.0,
        "total_seconds": 0.0,
    }


@_direct_python_calls
@derived_object
class TimedCostModel(PyCostModel):
    """Any MetaSchedule cost model (e.g. ``"xgb"``), timed like :class:`TunezooCostModel`.

    So that a benchmark compares the baseline's cost-model time measured the same way.
    ``inner`` is a ``CostModel`` or a name for ``CostModel.create``.
    """

    def __init__(self, inner: Any = "xgb", **create_kwargs: Any) -> None:
        from tvm.s_tir.meta_schedule.cost_model import CostModel  # noqa: PLC0415

        kind = inner if isinstance(inner, str) else type(inner).__name__
        self.inner = CostModel.create(inner, **create_kwargs) if isinstance(inner, str) else inner
        self._stats = _new_timed_stats(kind)

    def predict(self, context: Any, candidates: Sequence[Any]) -> np.ndarray:
        t0 = time.perf_counter()
        out = np.asarray(self.inner.predict(context, list(candidates)), dtype=np.float64)
        elapsed = time.perf_counter() - t0
        s = self._stats
        s["predict_calls"] += 1
        s["predicted_candidates"] += len(candidates)
        s["predict_seconds"] += elapsed
        s["total_seconds"] += elapsed
        return out

    def update(self, context: Any, candidates: Sequence[Any], results: Sequence[Any]) -> None:
        t0 = time.perf_counter()
        self.inner.update(context, list(candidates), list(results))
        elapsed = time.perf_counter() - t0
        s = self._stats
        s["update_calls"] += 1
        s["updated_candidates"] += len(candidates)
        s["failed_candidates"] += sum(run_failed(r) for r in results)
        s["update_seconds"] += elapsed
        s["total_seconds"] += elapsed

    def save(self, path: str) -> None:
        self.inner.save(path)

    def load(self, path: str) -> None:
        self.inner.load(path)

    def stats(self) -> dict[str, Any]:
        return dict(self._stats)


__all__ = [
    "MODES",
    "AdaptConfig",
    "TimedCostModel",
    "TunezooCostModel",
    "positive_scores",
    "run_failed",
    "run_latency",
]
