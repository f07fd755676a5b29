"""Remember the per-store features of tune-time candidates across ``predict`` calls.

MetaSchedule's evolutionary search scores its whole population once per generation, and
most of a generation survives into the next one unchanged (the fittest candidates are
resampled, and only some are mutated). Extracting ``PerStoreFeature`` costs a few ms per
candidate on this CPU, while a structural hash of the scheduled module costs a small
fraction of that, so a cost model that remembers features by that hash extracts each
distinct schedule once per session. At MetaSchedule's default population of 512 the
extraction dominated the frozen cost model's time (about 30% of tuning wall time before
this cache; see ``scripts/results/bench_tuning*.json``).

Entries are keyed by the task (the structural hash of ``context.mod``) and the candidate's
scheduled module, so two tasks never share features; the cache is bounded (least recently
used entries go first) so a long session does not grow without limit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import tvm_ffi

from tunezoo.features import features_of_candidates

DEFAULT_MAX_ENTRIES = 100_000


class CandidateFeatureCache:
    """Features of MetaSchedule candidates, extracted once per distinct schedule."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def features(self, context: Any, candidates: Sequence[Any]) -> list[np.ndarray]:
        """Per-store feature matrices of ``candidates``, in order; misses in one batch."""
        candidates = list(candidates)
        if not candidates:
            return []
        task = int(tvm_ffi.structural_hash(context.mod))
        keys = [(task, int(tvm_ffi.structural_hash(c.sch.mod))) for c in candidates]
        found: dict[tuple[int, int], np.ndarray] = {}
        missing: dict[tuple[int, int], Any] = {}
        for key, cand in zip(keys, candidates, strict=True):
            mat = self._entries.get(key)
            if mat is not None:
                self._entries.move_to_end(key)
                found[key] = mat
            elif key not in missing:
                missing[key] = cand
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            for key, mat in zip(
                missing, features_of_candidates(context, list(missing.values())), strict=True
            ):
                found[key] = mat
                self._entries[key] = mat
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return [found[key] for key in keys]

    def stats(self) -> dict[str, int]:
        """Hits, misses and entries, for the cost model's statistics."""
        return {
            "feature_cache_hits": self.hits,
            "feature_cache_misses": self.misses,
            "feature_cache_entries": len(self._entries),
        }
