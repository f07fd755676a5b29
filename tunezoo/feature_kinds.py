"""The feature versions tunezoo computes, in one table.

A predictor stores the ``feature_version`` it was trained on. This table says what each
version is: how many numbers a row holds, how to compute the rows for stored records
(training, evaluation) and for MetaSchedule's candidates (tuning). Loaders, the cost
models and training all look versions up here, so a version is never half supported.

* ``per-store``: MetaSchedule's ``PerStoreFeature`` (164 numbers per buffer store), from
  the lowered program. The most informative and the most expensive (2.5-10 ms per
  distinct candidate on 2-core CPUs).
* ``trace``: trace tokens (:mod:`tunezoo.trace_features`), one row per schedule
  instruction, read off the printed trace without lowering (about 0.3 ms).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tunezoo import features, trace_features


class UnknownFeatureVersionError(ValueError):
    """A feature version (or kind name) this tunezoo does not compute."""


@dataclass(frozen=True)
class FeatureKind:
    """One feature version: its short name, row width and record extractor."""

    name: str
    version: str
    dim: int
    description: str
    extract_records: Callable[..., tuple[features.FeatureSet, np.ndarray]]

    def records(
        self, records: pa.Table, workloads: pa.Table, **kwargs: Any
    ) -> tuple[features.FeatureSet, np.ndarray]:
        """Features of stored records (see :func:`tunezoo.features.extract_features`)."""
        return self.extract_records(records, workloads, **kwargs)


PER_STORE = FeatureKind(
    "per-store",
    features.FEATURE_VERSION,
    features.PER_STORE_DIM,
    "MetaSchedule PerStoreFeature of the lowered program, one row per buffer store",
    features.extract_features,
)
TRACE = FeatureKind(
    "trace",
    trace_features.TRACE_FEATURE_VERSION,
    trace_features.TOKEN_DIM,
    "trace tokens read off the printed schedule trace, one row per instruction",
    trace_features.extract_trace_features,
)
FEATURE_KINDS: dict[str, FeatureKind] = {k.version: k for k in (PER_STORE, TRACE)}


def feature_kind(version_or_name: str) -> FeatureKind:
    """The kind of a feature version (``per-store-164.tvm-0.27.v1``) or short name
    (``per-store``, ``trace``); anything else names what exists."""
    for kind in FEATURE_KINDS.values():
        if version_or_name in (kind.version, kind.name):
            return kind
    known = [k.version for k in FEATURE_KINDS.values()] + [k.name for k in FEATURE_KINDS.values()]
    close = difflib.get_close_matches(str(version_or_name), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownFeatureVersionError(
        f"unknown feature version {version_or_name!r}.{hint} This tunezoo computes: "
        + ", ".join(f"{k.version} ({k.name})" for k in FEATURE_KINDS.values())
        + "; a predictor trained on another version needs the tunezoo that made it, or "
        "retraining (tunezoo train)"
    )


def artifact_name(arch: str, feature_version: str, target_key: str) -> str:
    """The name a predictor is published and bundled under: ``<arch>.<target>`` for
    per-store features (the default kind), ``<arch>-<kind>.<target>`` for others (e.g.
    ``seed-ensemble-trace.llvm-znver4``), so two kinds of one architecture never share
    a name."""
    kind = feature_kind(feature_version)
    stem = arch if kind is PER_STORE else f"{arch}-{kind.name}"
    return f"{stem}.{target_key}"


__all__ = [
    "artifact_name",
    "FEATURE_KINDS",
    "PER_STORE",
    "TRACE",
    "FeatureKind",
    "UnknownFeatureVersionError",
    "feature_kind",
]
