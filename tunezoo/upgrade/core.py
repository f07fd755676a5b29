"""``upgrade_database``: an old MetaSchedule database in, a TVM 0.27 database out.

Every input record ends in exactly one place: the output database (after it parsed,
replayed and produced features in TVM 0.27) or ``UpgradeReport.rejected`` with its file,
line and reason. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunezoo.convert import run_secs_problem
from tunezoo.target_keys import TargetKeyError, derive_target_key
from tunezoo.upgrade.checks import CheckError, RecordChecker, short_error
from tunezoo.upgrade.graph import ERA_DEFAULT_VERSION, GraphError
from tunezoo.upgrade.objects import upgrade_embedded_graph
from tunezoo.upgrade.provenance import Provenance, provenance_for
from tunezoo.upgrade.sources import (
    JSON_RECORD_FILE,
    JSON_WORKLOAD_FILE,
    database_files,
    input_format,
    read_record_rows,
    read_workload_rows,
)
from tunezoo.upgrade.trace import TraceError, upgrade_trace
from tunezoo.upgrade.workload import UpgradedWorkload, upgrade_workload

STAGE_READ = "read"
STAGE_WORKLOAD = "workload"
STAGE_TRACE = "trace"
STAGE_TARGET_KEY = "target-key"
STAGE_MISSING = "missing-workload"


@dataclass(frozen=True)
class RejectedRecord:
    """An input row set aside: where it is (1-based line, or SQLite rowid) and why."""

    file: str
    line: int
    stage: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "stage": self.stage, "reason": self.reason}


def reason_kind(rejected: RejectedRecord) -> str:
    """A reason with names and numbers blurred, so equal causes count together."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", rejected.reason)
    text = re.sub(r"\d+", "N", text)
    return f"{rejected.stage}: {text[:160]}"


@dataclass
class UpgradeReport:
    """What ``upgrade_database`` did; everything the importer needs besides the files.

    ``hash_map`` maps each original workload hash to its TVM 0.27 hash (the importer's
    ``source_hash``). ``record_target_keys[i]`` and ``record_origins[i]`` belong to line
    ``i`` of the output ``database_tuning_record.json``.
    """

    src: str
    out_db_dir: str | None
    input_format: str | None
    era: str | None
    provenance: Provenance
    records_total: int = 0
    workloads_total: int = 0
    workloads_upgraded: int = 0
    hash_map: dict[str, str] = field(default_factory=dict)
    record_target_keys: list[str] = field(default_factory=list)
    record_origins: list[tuple[str, int]] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    rejected_workloads: list[RejectedRecord] = field(default_factory=list)
    missing: str | None = None
    trace_changes: Counter = field(default_factory=Counter)
    verified_load: bool | None = None  # the output re-opened with JSONDatabase
    elapsed_s: float = 0.0

    @property
    def records_upgraded(self) -> int:
        return len(self.record_target_keys)

    @property
    def source(self) -> str | None:
        return self.provenance.source

    @property
    def license(self) -> str | None:
        return self.provenance.license

    @property
    def tvm_version(self) -> str | None:
        return self.provenance.tvm_version

    def top_reasons(self, n: int = 5) -> list[tuple[str, int]]:
        """The most common rejection causes with their counts."""
        return Counter(reason_kind(r) for r in self.rejected).most_common(n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "out_db_dir": self.out_db_dir,
            "input_format": self.input_format,
            "era": self.era,
            "provenance": self.provenance.to_dict(),
            "records_total": self.records_total,
            "records_upgraded": self.records_upgraded,
            "records_rejected": len(self.rejected),
            "workloads_total": self.workloads_total,
            "workloads_upgraded": self.workloads_upgraded,
            "hash_map": self.hash_map,
            "target_keys": dict(Counter(self.record_target_keys)),
            "missing": self.missing,
            "trace_changes": dict(self.trace_changes),
            "verified_load": self.verified_load,
            "top_reasons": self.top_reasons(10),
            "rejected": [r.to_dict() for r in self.rejected],
            "rejected_workloads": [r.to_dict() for r in self.rejected_workloads],
            "elapsed_s": round(self.elapsed_s, 2),
        }


class _Workloads:
    """Old workload rows, upgraded on first use and numbered in the output database."""

    def __init__(self, report: UpgradeReport, rows: list) -> None:
        self.report = report
        self.rows = rows
        self.done: dict[int, UpgradedWorkload | str] = {}  # input index -> result or reason
        self.out_index: dict[str, int] = {}  # new hash -> output line
        self.out_lines: list[list[str]] = []

    def get(self, index: int) -> UpgradedWorkload | str:
        if index in self.done:
            return self.done[index]
        if not 0 <= index < len(self.rows):
            result: UpgradedWorkload | str = (
                f"workload index {index} out of range ({len(self.rows)} workloads)"
            )
            self.done[index] = result
            return result
        row = self.rows[index]
        try:
            if row.error is not None:
                raise GraphError(row.error)
            if not (isinstance(row.value, list) and len(row.value) == 2):
                raise GraphError("workload line is not [hash, base64]")
            result = upgrade_workload(str(row.value[1]))
        except Exception as exc:  # GraphError or TVM's parser/loader errors
            reason = short_error(exc)
            self.report.rejected_workloads.append(
                RejectedRecord(row.file, row.line, STAGE_WORKLOAD, reason)
            )
            result = f"its workload (line {row.line}) cannot be upgraded: {reason}"
        else:
            self.report.workloads_upgraded += 1
            self.report.hash_map[str(row.value[0])] = result.shash
            if self.report.era is None:
                self.report.era = result.era
            prov = self.report.provenance
            if result.tvm_version and prov.tvm_version_from not in ("argument", "graph"):
                prov.tvm_version, prov.tvm_version_from = result.tvm_version, "graph"
        self.done[index] = result
        return result

    def output_index(self, wl: UpgradedWorkload) -> int:
        if wl.shash not in self.out_index:
            self.out_index[wl.shash] = len(self.out_lines)
            self.out_lines.append(wl.line)
        return self.out_index[wl.shash]


def _write_lines(path: Path, lines: list[Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(json.dumps(line) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _missing_workloads(report: UpgradeReport, src: Path, fmt: str) -> None:
    """Report a records-only directory: every record set aside with the same reason."""
    wfile, rfile = database_files(src, fmt)
    report.missing = (
        f"{src}: {wfile.name} is missing, so the {report.records_total} records in "
        f"{rfile.name} have no workloads (the TIR they were tuned for) and cannot be "
        "replayed, checked or imported; add the workload file from the same tuning run"
    )
    for row in read_record_rows(src, fmt):
        report.rejected.append(
            RejectedRecord(row.file, row.line, STAGE_MISSING, f"{wfile.name} missing")
        )


def upgrade_database(
    src: str | Path,
    out_db_dir: str | Path | None,
    *,
    device: str | None = None,
    repo: str | None = None,
    commit: str | None = None,
    path: str | None = None,
    license: str | None = None,  # noqa: A002 - the record column's name
    tvm_version: str | None = None,
    max_records: int | None = None,
    overwrite: bool = False,
    checker: RecordChecker | None = None,
) -> UpgradeReport:
    """Upgrade a MetaSchedule database (JSON or SQLite, any TVM era) to TVM 0.27.

    Writes ``database_workload.json`` and ``database_tuning_record.json`` to
    ``out_db_dir`` (skipped when None: a dry run) holding the records that passed every
    check, with their original target dicts and run times. ``device`` names the
    hardware for target keys (``"rtx3070"``); ``repo``, ``commit``, ``path``,
    ``license`` and ``tvm_version`` override what is read from an external-dbs README
    or the data. ``max_records`` processes only the first N record lines (for quick
    checks; the rest count neither as upgraded nor as rejected).
    """
    start = time.monotonic()
    src = Path(src)
    prov = provenance_for(
        src, repo=repo, commit=commit, path=path, license=license, tvm_version=tvm_version
    )
    fmt = input_format(src)
    report = UpgradeReport(str(src), None, fmt, None, prov)
    wfile, rfile = database_files(src, fmt)
    if not rfile.is_file():
        raise FileNotFoundError(f"{src}: {rfile.name} is missing; there are no records to upgrade")
    if not wfile.is_file():
        report.records_total = sum(1 for _ in read_record_rows(src, fmt))
        _missing_workloads(report, src, fmt)
        report.elapsed_s = time.monotonic() - start
        return report
    out = Path(out_db_dir) if out_db_dir is not None else None
    if out is not None and not overwrite:
        clash = [out / n for n in (JSON_WORKLOAD_FILE, JSON_RECORD_FILE) if (out / n).exists()]
        if clash:
            raise FileExistsError(f"{clash[0]} exists; pass overwrite=True to replace it")
    checker = checker or RecordChecker()
    workload_rows = list(read_workload_rows(src, fmt))
    report.workloads_total = len(workload_rows)
    workloads = _Workloads(report, workload_rows)
    out_records: list[Any] = []
    for row in read_record_rows(src, fmt):
        if max_records is not None and report.records_total >= max_records:
            break
        report.records_total += 1
        result = _upgrade_record(row, workloads, checker, device, report)
        if isinstance(result, RejectedRecord):
            report.rejected.append(result)
            continue
        line, key = result
        out_records.append(line)
        report.record_target_keys.append(key)
        report.record_origins.append((row.file, row.line))
    if max_records is None:  # every workload gets a new hash, used or not
        for index in range(len(workload_rows)):
            wl = workloads.get(index)
            if isinstance(wl, UpgradedWorkload):
                workloads.output_index(wl)
    if prov.tvm_version is None and report.era is not None:
        prov.tvm_version, prov.tvm_version_from = ERA_DEFAULT_VERSION[report.era], "era"
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _write_lines(out / JSON_WORKLOAD_FILE, workloads.out_lines)
        _write_lines(out / JSON_RECORD_FILE, out_records)
        report.out_db_dir = str(out)
        report.verified_load = _verify(out, len(out_records))
    report.elapsed_s = time.monotonic() - start
    return report


def _upgrade_record(
    row: Any,
    workloads: _Workloads,
    checker: RecordChecker,
    device: str | None,
    report: UpgradeReport,
) -> tuple[list[Any], str] | RejectedRecord:
    """One record line -> (output line, target key), or why it is set aside."""

    def reject(stage: str, reason: str) -> RejectedRecord:
        return RejectedRecord(row.file, row.line, stage, reason)

    if row.error is not None:
        return reject(STAGE_READ, row.error)
    value = row.value
    if not (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and isinstance(value[1], list)
        and len(value[1]) == 4
    ):
        return reject(STAGE_READ, "not [workload_index, [trace, run_secs, target, args_info]]")
    if isinstance(value[0], bool):
        return reject(STAGE_READ, f"workload index {value[0]!r} is not an integer")
    index, (trace, run_secs, target, args_info) = value
    problem = run_secs_problem(run_secs)  # what the importer would refuse, refused here
    if problem is not None:
        return reject(STAGE_READ, f"run_secs: {problem}")
    wl = workloads.get(index)
    if isinstance(wl, str):
        return reject(STAGE_WORKLOAD, wl)
    try:
        new_trace, changes = upgrade_trace(trace, upgrade_embedded_graph)
    except TraceError as exc:
        return reject(STAGE_TRACE, str(exc))
    except (TypeError, AttributeError, KeyError, IndexError) as exc:  # a malformed shape
        return reject(STAGE_TRACE, f"malformed trace ({type(exc).__name__}: {exc})")
    try:
        key = derive_target_key(target, device=device)
    except TargetKeyError as exc:
        return reject(STAGE_TARGET_KEY, str(exc))
    except (TypeError, AttributeError, KeyError, IndexError) as exc:
        return reject(STAGE_TARGET_KEY, f"malformed target ({type(exc).__name__}: {exc})")
    record = [new_trace, run_secs, target, args_info]
    try:
        checker.check(record, wl)
    except CheckError as exc:
        return reject(exc.stage, exc.message)
    report.trace_changes.update(changes)
    # exactly what TVM 0.27 just parsed; target dict and run times as given
    return [workloads.output_index(wl), record], key


def _verify(out: Path, expected: int) -> bool:
    """Re-open the written database with TVM 0.27's own JSONDatabase."""
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

    db = ms.database.JSONDatabase(work_dir=str(out), allow_missing=False)
    return len(db.get_all_tuning_records()) == expected
