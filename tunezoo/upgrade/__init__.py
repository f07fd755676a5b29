"""Upgrade MetaSchedule tuning databases written by older TVM (0.12-0.23) to TVM 0.27.

Most tuning records in the world were written by TVM versions whose workload graphs,
node types and instruction names TVM 0.27 refuses. :func:`upgrade_database` recognises
the era of a database (JSON or SQLite), rewrites workloads (via TVMScript, see
:mod:`tunezoo.upgrade.tvmscript`) and traces (:mod:`tunezoo.upgrade.trace`), checks every
record for real in TVM 0.27 (parse, replay, features) and writes a current-format
database plus an :class:`UpgradeReport` (hash mapping, provenance, target keys, and every
record it set aside with file, line and reason).
"""

from tunezoo.upgrade.checks import CheckError, RecordChecker
from tunezoo.upgrade.core import RejectedRecord, UpgradeReport, reason_kind, upgrade_database
from tunezoo.upgrade.graph import ERAS, Graph, GraphError, decode_workload_b64, detect_era
from tunezoo.upgrade.provenance import Provenance, provenance_for
from tunezoo.upgrade.trace import TraceError, upgrade_trace
from tunezoo.upgrade.tvmscript import graph_to_tvmscript
from tunezoo.upgrade.workload import UpgradedWorkload, upgrade_workload

__all__ = [
    "ERAS",
    "CheckError",
    "Graph",
    "GraphError",
    "Provenance",
    "RecordChecker",
    "RejectedRecord",
    "TraceError",
    "UpgradeReport",
    "UpgradedWorkload",
    "decode_workload_b64",
    "detect_era",
    "graph_to_tvmscript",
    "provenance_for",
    "reason_kind",
    "upgrade_database",
    "upgrade_trace",
    "upgrade_workload",
]
