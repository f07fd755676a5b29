"""Remember the features of tune-time candidates across ``predict`` calls.

MetaSchedule's evolutionary search scores its whole population once per generation, and
most of a generation survives into the next one unchanged (the fittest candidates are
resampled, and only some are mutated). A cost model that remembers features by candidate
computes each distinct schedule's features once per session.

* Per-store features (``PerStoreFeature``, a few ms per candidate on these CPUs) are keyed
  by the structural hash of the scheduled module (0.1 ms). At MetaSchedule's default
  population of 512 their extraction had been about 30% of tuning wall time before this
  cache (see ``scripts/results/bench_tuning*.json``).
* Trace tokens are keyed by a digest of the printed trace, which the tokens are computed
  from anyway; the workload's block loops (:func:`tunezoo.trace_features.workload_blocks`)
  are read once per task.

Entries are keyed by the task (the structural hash of ``context.mod``) and the candidate,
so two tasks never share features; the cache is bounded (least recently used entries go
first) so a long session does not grow without limit.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import tvm_ffi

from tunezoo.feature_kinds import PER_STORE, TRACE, feature_kind
from tunezoo.features import features_of_candidates
from tunezoo.trace_features import BlockLoops, trace_tokens, workload_blocks

DEFAULT_MAX_ENTRIES = 100_000


class CandidateFeatureCache:
    """Features of MetaSchedule candidates, computed once per distinct schedule."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, feature_version: str = PER_STORE.version
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self.kind = feature_kind(feature_version)
        if self.kind not in (PER_STORE, TRACE):  # pragma: no cover - a kind added to the table
            raise NotImplementedError(f"no tune-time extractor for {self.kind.version}")
        self._entries: OrderedDict[tuple[int, Any], np.ndarray] = OrderedDict()
        self._blocks: dict[int, BlockLoops] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def features(self, context: Any, candidates: Sequence[Any]) -> list[np.ndarray]:
        """Feature matrices of ``candidates``, in order; misses computed in one batch."""
        return self.keyed_features(context, candidates)[1]

    def keyed_features(
        self, context: Any, candidates: Sequence[Any]
    ) -> tuple[list[tuple[int, Any]], list[np.ndarray]]:
        """(a key per candidate, its feature matrix): equal keys are equal schedules of one
        task, so a caller may remember anything else it derives per key (e.g. scores)."""
        candidates = list(candidates)
        if not candidates:
            return [], []
        task = int(tvm_ffi.structural_hash(context.mod))
        if self.kind is TRACE:
            payloads: list[Any] = [str(c.sch.trace) for c in candidates]
            ids = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in payloads]
        else:
            payloads = candidates
            ids = [int(tvm_ffi.structural_hash(c.sch.mod)) for c in candidates]
        keys = [(task, i) for i in ids]
        found: dict[tuple[int, Any], np.ndarray] = {}
        missing: dict[tuple[int, Any], Any] = {}
        for key, payload in zip(keys, payloads, strict=True):
            mat = self._entries.get(key)
            if mat is not None:
                self._entries.move_to_end(key)
                found[key] = mat
            elif key not in missing:
                missing[key] = payload
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            for key, mat in zip(missing, self._compute(task, context, missing), strict=True):
                found[key] = mat
                self._entries[key] = mat
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return keys, [found[key] for key in keys]

    def _compute(self, task: int, context: Any, missing: dict) -> list[np.ndarray]:
        if self.kind is TRACE:
            if task not in self._blocks:
                self._blocks[task] = workload_blocks(context.mod)
            return [trace_tokens(text, self._blocks[task]) for text in missing.values()]
        return features_of_candidates(context, list(missing.values()))

    def stats(self) -> dict[str, int]:
        """Hits, misses and entries, for the cost model's statistics."""
        return {
            "feature_cache_hits": self.hits,
            "feature_cache_misses": self.misses,
            "feature_cache_entries": len(self._entries),
        }
