"""Features derived from records: MetaSchedule's per-store features, versioned and cached.

Features are never the source of truth. They are recomputed from a record's workload and
schedule trace (replay the trace, then run MetaSchedule's ``PerStoreFeature``), without
measuring anything, and cached on disk by (record id, feature version). A predictor
stores the feature version it was trained on and refuses any other, so a change in TVM's
extractor cannot silently feed a model vectors it has never seen.

A record's features are a variable number of per-store vectors (one per buffer store in
the scheduled program), kept packed: ``values`` holds all stores of all records stacked,
``offsets[i]:offsets[i+1]`` are the rows of record ``i``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

PER_STORE_DIM = 164
# Bump when the extractor, its settings or TVM's implementation change.
FEATURE_VERSION = "per-store-164.tvm-0.27.v1"


@dataclass
class FeatureSet:
    """Packed per-store features of N records (see module docstring)."""

    record_ids: list[str]
    workload_ids: list[str]
    offsets: np.ndarray  # int64, N + 1
    values: np.ndarray  # float32, (total stores, PER_STORE_DIM)
    feature_version: str = FEATURE_VERSION

    def __len__(self) -> int:
        return len(self.record_ids)

    def record(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def stores_per_record(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def dim(self) -> int:
        """Numbers per row (164 for per-store features, more or fewer for other kinds)."""
        return int(self.values.shape[1])

    def subset(self, indices: Sequence[int] | np.ndarray) -> FeatureSet:
        idx = np.asarray(indices, dtype=np.int64)
        parts = [self.record(int(i)) for i in idx]
        counts = np.array([len(p) for p in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        values = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
        return FeatureSet(
            [self.record_ids[i] for i in idx],
            [self.workload_ids[i] for i in idx],
            offsets,
            values.astype(np.float32, copy=False),
            self.feature_version,
        )

    @staticmethod
    def from_list(
        record_ids: list[str],
        workload_ids: list[str],
        mats: list[np.ndarray],
        version: str = FEATURE_VERSION,
        dim: int = PER_STORE_DIM,
    ) -> FeatureSet:
        """``dim`` is only needed when ``mats`` is empty (the rows say it otherwise)."""
        counts = np.array([len(m) for m in mats], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        values = np.concatenate(mats).astype(np.float32) if mats else np.zeros((0, dim), np.float32)
        return FeatureSet(record_ids, workload_ids, offsets, values, version)


# ------------------------------------------------------------------ extraction in TVM


def light_tune_context(mod, target):
    """A ``TuneContext`` for feature extraction, without ``TuneContext.__init__``'s
    22-second import of every tensor intrinsic (features need only mod and target)."""
    from tvm.s_tir.meta_schedule import TuneContext, _ffi_api  # noqa: PLC0415
    from tvm.s_tir.meta_schedule.logging import get_logger, get_logging_func  # noqa: PLC0415

    ctx = TuneContext.__new__(TuneContext)
    ctx.__init_handle_by_constructor__(
        _ffi_api.TuneContext,
        mod,
        target,
        None,
        None,
        "main",
        1,
        0,
        get_logging_func(get_logger("tunezoo.features")),
    )
    return ctx


def per_store_extractor():
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

    return ms.feature_extractor.PerStoreFeature(
        buffers_per_store=5,
        arith_intensity_curve_num_samples=10,
        cache_line_bytes=64,
        extract_workload=False,
    )


def features_of_candidates(context, candidates) -> list[np.ndarray]:
    """Per-store features of MetaSchedule candidates (the cost model's path at tune time)."""
    if not candidates:
        return []
    return [t.numpy() for t in per_store_extractor().extract_from(context, candidates)]


def _ensure_intrinsics(traces: Iterable[str]) -> None:
    if any('"Tensorize"' in t for t in traces):
        import tvm.s_tir.tensor_intrin  # noqa: F401, PLC0415 - registers what Tensorize needs


def _extract_workload_chunk(
    job: tuple[str, str, list[tuple[str, str, str]]],
) -> list[tuple[str, np.ndarray | None, str | None]]:
    """Worker: features of some records of one workload: (record id, matrix | None, error)."""
    import tvm  # noqa: PLC0415
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

    mod_json, target_json, items = job
    _ensure_intrinsics(trace for _, trace, _ in items)
    mod = tvm.ir.load_json(mod_json)
    target = tvm.target.Target(json.loads(target_json))
    workload = ms.database.Workload(mod)
    context = light_tune_context(mod, target)
    extractor = per_store_extractor()
    out: list[tuple[str, np.ndarray | None, str | None]] = []
    candidates, ids = [], []
    for record_id, trace, args_info in items:
        try:
            body = json.loads(f"[{trace},[1.0],{target_json},{args_info}]")
            record = ms.database.TuningRecord.from_json(body, workload)
            candidates.append(record.as_measure_candidate())
            ids.append(record_id)
        except Exception as exc:  # a trace that no longer replays: no features, say why
            out.append((record_id, None, str(exc).strip().splitlines()[-1][:200]))
    if candidates:
        for record_id, tensor in zip(ids, extractor.extract_from(context, candidates), strict=True):
            out.append((record_id, tensor.numpy().astype(np.float32), None))
    return out


# ------------------------------------------------------------------------- the cache


def cache_root() -> Path:
    """Where tunezoo keeps derived data: ``$TUNEZOO_CACHE``, else ``$XDG_CACHE_HOME/tunezoo``
    (``~/.cache/tunezoo``)."""
    root = os.environ.get("TUNEZOO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tunezoo"
    )
    return Path(root)


def default_cache_dir() -> Path:
    return cache_root() / "features" / FEATURE_VERSION


def _cache_path(cache_dir: Path, workload_id: str, target_json: str) -> Path:
    tag = hashlib.sha256(target_json.encode()).hexdigest()[:8]
    return cache_dir / f"{workload_id}-{tag}.npz"


def _load_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as z:
        ids = [str(s) for s in z["record_ids"]]
        offsets, values = z["offsets"], z["values"]
    if values.ndim != 2 or values.shape[1] != PER_STORE_DIM:
        return {}  # another extractor's width: computed again (and the file rewritten)
    return {rid: values[offsets[i] : offsets[i + 1]] for i, rid in enumerate(ids)}


def _save_cache(path: Path, feats: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = list(feats)
    mats = [feats[r] for r in ids]
    counts = np.array([len(m) for m in mats], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    values = np.concatenate(mats) if mats else np.zeros((0, PER_STORE_DIM), np.float32)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    with open(tmp, "wb") as fh:
        np.savez(fh, record_ids=np.array(ids, dtype=str), offsets=offsets, values=values)
    os.replace(tmp, path)


# ------------------------------------------------------------------------- public API


@dataclass
class ExtractionStats:
    records: int = 0
    from_cache: int = 0
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0

    def records_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds else 0.0


def mod_json_by_workload(workloads: pa.Table) -> dict[str, str]:
    """Each workload's TVM JSON by workload id, from a dataset's workloads table."""
    return dict(
        zip(
            workloads.column("workload_id").to_pylist(),
            workloads.column("mod_json").to_pylist(),
            strict=True,
        )
    )


def extract_features(
    records: pa.Table,
    workloads: pa.Table,
    *,
    workers: int = 1,
    cache_dir: str | Path | None = None,
    chunk_size: int = 256,
    progress: bool = True,
    stats: ExtractionStats | None = None,
) -> tuple[FeatureSet, np.ndarray]:
    """Features of every record in ``records`` (rows order kept).

    Returns the feature set and a boolean mask of the records that have features (a trace
    that no longer replays gets none). Uses and fills the on-disk cache.
    """
    stats = stats if stats is not None else ExtractionStats()
    t0 = time.time()
    # versioned under a given folder too (as trace features are): features of an older
    # extractor in a caller's cache folder must never be read as this version's
    cache = Path(cache_dir) / FEATURE_VERSION if cache_dir is not None else default_cache_dir()
    mod_json = mod_json_by_workload(workloads)
    rows = records.select(["record_id", "workload_id", "target", "trace", "args_info"])
    groups: dict[tuple[str, str], list[int]] = {}
    wids = rows.column("workload_id").to_pylist()
    targets = rows.column("target").to_pylist()
    for i, key in enumerate(zip(wids, targets, strict=True)):
        groups.setdefault(key, []).append(i)
    rids = rows.column("record_id").to_pylist()
    traces = rows.column("trace").to_pylist()
    args = rows.column("args_info").to_pylist()
    found = cached_per_group(
        groups,
        rids,
        path_of=lambda key: _cache_path(cache, *key),
        load=_load_cache,
        save=_save_cache,
        job_of=lambda key, part: (
            mod_json[key[0]],
            key[1],
            [(rids[i], traces[i], args[i]) for i in part],
        ),
        worker=_extract_workload_chunk,
        workers=workers,
        chunk_size=chunk_size,
        stats=stats,
        progress=progress,
        desc="features",
    )
    mask = np.array([r in found for r in rids], dtype=bool)
    keep = [i for i in range(len(rids)) if mask[i]]
    fs = FeatureSet.from_list(
        [rids[i] for i in keep], [wids[i] for i in keep], [found[rids[i]] for i in keep]
    )
    stats.records = len(rids)
    stats.seconds = time.time() - t0
    return fs, mask


def cached_per_group(
    groups: dict[Hashable, list[int]],
    rids: list[str],
    *,
    path_of: Callable[[Any], Path],
    load: Callable[[Path], dict[str, Any]],
    save: Callable[[Path, dict[str, Any]], None],
    job_of: Callable[[Any, list[int]], Any],
    worker: Callable[[Any], list[tuple[str, Any, str | None]]],
    workers: int,
    chunk_size: int,
    stats: ExtractionStats,
    progress: bool,
    desc: str,
) -> dict[str, Any]:
    """The value of every row (by record id) that has one: from each group's (workload's)
    cache file at ``path_of(key)``, the rest computed by ``worker`` on jobs of up to
    ``chunk_size`` rows of one group (``job_of``), in ``workers`` processes, then added to
    the cache. A worker returns ``(record id, value or None, error)`` per row; rows with
    no value are counted as failed. Every derived, cached feature path goes through this,
    so they fail, count and cache alike."""
    found: dict[str, Any] = {}
    jobs, job_keys, sizes = [], [], []
    for key, idx in groups.items():
        cached = load(path_of(key))
        missing = [i for i in idx if rids[i] not in cached]
        found.update({rids[i]: cached[rids[i]] for i in idx if rids[i] in cached})
        stats.from_cache += len(idx) - len(missing)
        for start in range(0, len(missing), chunk_size):
            part = missing[start : start + chunk_size]
            jobs.append(job_of(key, part))
            job_keys.append(key)
            sizes.append(len(part))
    computed: dict[Any, dict[str, Any]] = {}
    bar = tqdm(total=sum(sizes), desc=desc, unit="rec", disable=not progress or not jobs)
    for key, result in zip(job_keys, run_jobs(worker, jobs, workers), strict=True):
        for rid, value, _err in result:
            if value is None:
                stats.failed += 1
                continue
            found[rid] = value
            computed.setdefault(key, {})[rid] = value
            stats.computed += 1
        bar.update(len(result))
    bar.close()
    for key, values in computed.items():
        path = path_of(key)
        save(path, {**load(path), **values})
    return found


def run_jobs(worker: Callable[[Any], Any], jobs: list, workers: int) -> Iterator[Any]:
    """``worker(job)`` for every job, results in job order as they finish (a generator,
    so progress can be shown); ``workers`` > 1 uses spawned processes (TVM is not
    fork-safe), so ``worker`` must be a module-level function."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield worker(job)
        return
    import multiprocessing as mp  # noqa: PLC0415

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        yield from pool.map(worker, jobs)
