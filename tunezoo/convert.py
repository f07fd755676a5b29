"""Lossless conversion between MetaSchedule JSON databases and tunezoo Parquet shards.

Import reads ``database_workload.json`` and ``database_tuning_record.json`` line by line,
so that one bad line costs one record, not the file: every valid record is kept and every
refused line goes to ``DIR/rejected/<shard>.jsonl`` with the file, line, field and reason.
Traces, run times, targets and argument info are kept exactly as the database spells them,
so export writes a database that MetaSchedule reads back record for record.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from tunezoo.records import (
    RecordsError,
    read_records,
    read_workloads,
    record_row,
    shard_name_for,
    write_rejected,
    write_shards,
)
from tunezoo.schema import FAILED_RUN_SECS, RECORD_SCHEMA, WORKLOAD_SCHEMA

WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"


class DatabaseFormatError(RecordsError):
    """A database that cannot be imported at all (missing files, mixed targets, ...)."""


@dataclass
class ImportReport:
    db_dir: str
    out_dir: str
    workloads: int = 0
    records: int = 0
    failed_records: int = 0
    rejected: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    rejected_file: str | None = None

    def summary(self) -> dict:
        return {
            "db_dir": self.db_dir,
            "out_dir": self.out_dir,
            "workloads": self.workloads,
            "records": self.records,
            "failed_records": self.failed_records,
            "rejected": len(self.rejected),
            "rejected_file": self.rejected_file,
            "files": self.files,
        }


def _compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _reject(report: ImportReport, file: str, line: int, field_: str | None, reason: str, raw):
    report.rejected.append(
        {"file": file, "line": line, "field": field_, "reason": reason, "raw": raw[:2000]}
    )


def read_lines(path: Path, limit: int | None = None) -> list[tuple[int, str]]:
    """(line number, line) of the non-blank lines of a database file, bad bytes replaced
    (a bad line is refused on its own later); the first ``limit`` of them if given."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, ln in enumerate(fh):
            if ln.strip():
                out.append((i + 1, ln))
                if len(out) == limit:
                    break
    return out


def run_secs_problem(value) -> str | None:
    """Why a record's run times cannot be stored (None: they can); shared with the upgrader,
    so that it never passes on what the importer would refuse."""
    if not isinstance(value, list) or not value:
        return "expected a non-empty list of run times"
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"repeat {i} is {v!r}, expected a number"
        if not math.isfinite(v):
            return f"repeat {i} is {v}, expected a finite number"
        if v <= 0:
            return f"repeat {i} is {v}, expected a positive time"
    return None


def import_database(
    db_dir: str | Path,
    out_dir: str | Path,
    *,
    target_key: str,
    sampling: str = "imported",
    source: str | None = None,
    contributor: str | None = None,
    license: str | None = None,  # noqa: A002
    tvm_version: str | None = None,
    source_hashes: dict[str, str] | None = None,
    check_traces: bool = True,
    force: bool = False,
    record_origins: list[tuple[str, int]] | None = None,
) -> ImportReport:
    """Import a MetaSchedule JSON database directory into Parquet shards in ``out_dir``.

    ``source_hashes`` maps a workload's current hash to the hash it had in an older
    database (filled in by the upgrader). ``check_traces`` replays every trace on its
    workload and refuses the ones that no longer apply. ``record_origins[i]`` is the
    (file, line) the i-th record line came from, when the database given is a rewritten
    one (the upgrader's): refused records then name their line in the user's own file.
    """
    import tvm  # noqa: PLC0415
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

    from tunezoo.hardware import Hardware  # noqa: PLC0415
    from tunezoo.target_keys import target_mismatch  # noqa: PLC0415
    from tunezoo.workloads import workload_id, workload_row  # noqa: PLC0415

    db = Path(db_dir)
    wl_path, rec_path = db / WORKLOAD_FILE, db / RECORD_FILE
    if not rec_path.exists():
        raise DatabaseFormatError(f"{db}: no {RECORD_FILE}; is this a MetaSchedule work_dir?")
    if not wl_path.exists():
        raise DatabaseFormatError(
            f"{db}: {RECORD_FILE} but no {WORKLOAD_FILE}: the records cannot be used without "
            "the workloads they were tuned on; copy the workload file from the same work_dir"
        )
    report = ImportReport(db_dir=str(db), out_dir=str(out_dir))
    source = source or f"file:{db.resolve()}"
    now = dt.datetime.now(dt.UTC)

    workloads: list = []  # index in file -> (Workload object, workload id) or None
    workload_rows: dict[str, dict] = {}
    for lineno, raw in read_lines(wl_path):
        try:
            obj = json.loads(raw)
            wl = ms.database.Workload.from_json(obj)
            wid = workload_id(wl.mod)
        except Exception as exc:  # one bad line costs one workload
            _reject(report, WORKLOAD_FILE, lineno, "workload", _short(exc), raw)
            workloads.append(None)
            continue
        workloads.append((wl, wid))
        if wid not in workload_rows:
            original = str(obj[0]) if isinstance(obj, list) and obj else None
            old = (source_hashes or {}).get(wid) or (original if original != wid else None)
            workload_rows[wid] = workload_row(wl.mod, source_hash=old)

    def origin(lineno: int) -> tuple[str, int]:
        return record_origins[lineno - 1] if record_origins else (RECORD_FILE, lineno)

    rows: list[dict] = []
    first_target: tuple[int, str] | None = None
    misfit: str | None = None  # why the database's target cannot go under target_key
    for lineno, raw in read_lines(rec_path):
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            _reject(report, *origin(lineno), None, f"malformed JSON ({exc})", raw)
            continue
        problem = _record_shape_problem(obj, len(workloads))
        if problem is not None:
            _reject(report, *origin(lineno), problem[0], problem[1], raw)
            continue
        index, (trace, run_secs, target, args_info) = obj[0], obj[1]
        if workloads[index] is None:
            _reject(
                report,
                *origin(lineno),
                "workload_index",
                f"workload {index} was itself refused",
                raw,
            )
            continue
        kind = _target_kind(target)
        if first_target is None:  # every record kept is of this kind: one check for all
            first_target = (origin(lineno)[1], kind)
            misfit = target_mismatch(target, target_key, cpu=False)
        elif kind != first_target[1]:
            _reject(
                report,
                *origin(lineno),
                "target",
                f"target is {kind}, line {first_target[0]}'s is {first_target[1]} (the target "
                "differs): a database holds one kind of hardware; import one target at a time",
                raw,
            )
            continue
        if misfit:
            _reject(
                report,
                *origin(lineno),
                "target",
                f"{misfit}: records are filed under the hardware they were measured on; import "
                "them without --target (the key is derived from each record) or name a key "
                "that fits",
                raw,
            )
            continue
        wl, wid = workloads[index]
        if check_traces:
            try:  # from_json replays the trace on the workload and fails if it no longer applies
                ms.database.TuningRecord.from_json(obj[1], wl)
            except Exception as exc:
                _reject(
                    report,
                    *origin(lineno),
                    "trace",
                    f"trace does not apply to its workload in TVM {tvm.__version__} "
                    f"({_short(exc)})",
                    raw,
                )
                continue
        failed = any(v >= FAILED_RUN_SECS for v in run_secs)
        rows.append(
            record_row(
                workload_id=wid,
                target_key=target_key,
                target_json=_compact(target),
                trace_json=_compact(trace),
                args_info_json=_compact(args_info),
                run_secs=run_secs,
                error_kind="failed-in-database" if failed else None,
                error_msg="MetaSchedule stored the failure sentinel 1e10" if failed else None,
                hardware=Hardware(None, None, None, None).columns(),
                tvm_version=tvm_version or tvm.__version__,
                measure_settings=_compact({"imported_from": RECORD_FILE}),
                sampling=sampling,
                source=source,
                created_at=now,
                contributor=contributor,
                license=license,
            )
        )
        report.failed_records += int(failed)

    used = {r["workload_id"] for r in rows}
    wl_table = pa.Table.from_pylist(
        [row for wid, row in workload_rows.items() if wid in used], schema=WORKLOAD_SCHEMA
    )
    rec_table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    shard = "import-" + shard_name_for(r["record_id"] for r in rows)
    report.files = [
        str(p) for p in write_shards(out_dir, wl_table, rec_table, shard=shard, force=force)
    ]
    rejected_path = write_rejected(out_dir, shard, report.rejected)
    report.rejected_file = str(rejected_path) if rejected_path else None
    report.workloads = wl_table.num_rows
    report.records = rec_table.num_rows
    return report


def _target_kind(target: dict) -> str:
    """The hardware a target dict describes, ignoring settings such as ``num-cores``: the
    same CPU tuned with 4 and with 8 threads is one kind of hardware (each record keeps its
    full target), a CUDA record in a CPU database is not."""
    from tunezoo.target_keys import derive_target_key  # noqa: PLC0415

    try:
        return derive_target_key(target)
    except Exception:  # a target no key describes: compare it whole
        return _compact(target)


def _record_shape_problem(obj, n_workloads: int) -> tuple[str, str] | None:
    """(field, reason) when a tuning-record line is not ``[index, [trace, secs, target,
    args]]``; None when its shape is right."""
    if not (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[1], list)):
        return ("line", "expected [workload_index, [trace, run_secs, target, args_info]]")
    index, body = obj
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_workloads:
        return ("workload_index", f"{index!r} is not a workload line (0..{n_workloads - 1})")
    if len(body) != 4:
        names = "trace, run_secs, target, args_info"
        return ("record", f"has {len(body)} fields, expected 4 ({names})")
    trace, run_secs, target, args_info = body
    if not (isinstance(trace, list) and len(trace) == 2):
        return ("trace", "expected [instructions, decisions]")
    problem = run_secs_problem(run_secs)
    if problem is not None:
        return ("run_secs", problem)
    if not isinstance(target, dict) or "kind" not in target:
        return ("target", "expected a target dict with a 'kind'")
    if not isinstance(args_info, list):
        return ("args_info", "expected a list")
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


# ------------------------------------------------------------------------------- export


def export_database(
    dataset_dir: str | Path,
    db_dir: str | Path,
    *,
    force: bool = False,
    target_key: str | None = None,
) -> dict:
    """Write a MetaSchedule JSON database (one target) from Parquet shards.

    Records are written in their stored order; failed records keep the 1e10 sentinel
    MetaSchedule uses, so tuning resumes from the database as it would from the original.
    """
    out = Path(db_dir)
    wl_path, rec_path = out / WORKLOAD_FILE, out / RECORD_FILE
    if (wl_path.exists() or rec_path.exists()) and not force:
        raise FileExistsError(f"{out} already holds a database; pass --force to overwrite")
    records = read_records(dataset_dir)
    keys = set(records.column("target_key").to_pylist())
    if target_key is not None:
        records = records.filter(pa.compute.equal(records["target_key"], target_key))
    elif len(keys) > 1:
        raise DatabaseFormatError(
            f"{dataset_dir} holds targets {sorted(keys)}; a MetaSchedule database holds one: "
            "pass --target"
        )
    if records.num_rows == 0:  # nothing to export: never replace a database with nothing
        what = f"for target {target_key!r}" if target_key is not None else "at all"
        raise DatabaseFormatError(
            f"{dataset_dir} holds no records {what}; its targets: {sorted(keys) or 'none'}"
        )
    workloads = {r["workload_id"]: r for r in read_workloads(dataset_dir).to_pylist()}
    index: dict[str, int] = {}
    wl_lines: list[str] = []
    rec_lines: list[str] = []
    for row in records.to_pylist():
        wid = row["workload_id"]
        if wid not in workloads:
            raise RecordsError(f"{dataset_dir}: record {row['record_id']} has no workload row")
        if wid not in index:
            index[wid] = len(wl_lines)
            wl_lines.append(_workload_line(wid, workloads[wid]["mod_json"]))
        body = [
            json.loads(row["trace"]),
            row["run_secs"],
            json.loads(row["target"]),
            json.loads(row["args_info"]),
        ]
        rec_lines.append(_compact([index[wid], body]))
    out.mkdir(parents=True, exist_ok=True)
    # both files written in full before either replaces its old version: an interrupted
    # export never leaves new workloads beside old records whose indices point elsewhere
    staged = [
        (_staged_text(path, lines), path)
        for path, lines in ((wl_path, wl_lines), (rec_path, rec_lines))
    ]
    for tmp, path in staged:
        os.replace(tmp, path)
    return {"workloads": len(wl_lines), "records": len(rec_lines), "db_dir": str(out)}


def _workload_line(wid: str, mod_json: str) -> str:
    """A ``database_workload.json`` line: hash, then base64 of 8-byte length + JSON."""
    payload = mod_json.encode()
    blob = len(payload).to_bytes(8, "little") + payload
    return _compact([wid, base64.b64encode(blob).decode()])


def _staged_text(path: Path, lines: list[str]) -> str:
    """``lines`` written and synced to a temporary file beside ``path`` (its name returned)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return tmp
