"""Reading, writing, validating and merging tunezoo record datasets (Parquet).

A dataset directory holds two tables split into shards::

    DIR/workloads/<shard>.parquet          one row per workload
    DIR/records/<split>-<shard>.parquet    one row per measured candidate
    DIR/rejected/<shard>.jsonl             input rows an import refused, with the reason

Shards are only ever added, never rewritten: an import or a collection writes new files
(atomically: temp file, fsync, rename), so a killed job leaves the earlier shards intact.
Record shards are named by split so that Hub dataset configs can point ``train`` /
``validation`` / ``test`` at file globs. This module needs no TVM.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tunezoo.schema import (
    ERROR_KINDS,
    FAILED_RUN_SECS,
    META_TABLE_KEY,
    META_VERSION_KEY,
    RECORD_SCHEMA,
    SAMPLING_METHODS,
    SCHEMA_VERSION,
    SCHEMAS,
    WORKLOAD_SCHEMA,
)
from tunezoo.splits import SPLITS, split_of

# About 1-4 MB per row group for typical traces: small enough to stream, big enough to
# compress well.
ROW_GROUP_SIZE = 1024
ZSTD_LEVEL = 9


class RecordsError(ValueError):
    """A dataset file or row that cannot be used; the message names file, row and field."""


@dataclass(frozen=True)
class Problem:
    """One validation finding. ``row`` is 0-based within ``file`` (None: whole file)."""

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field is not None:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


# ---------------------------------------------------------------- ids and canonical forms


def canonical_json(text_or_obj: str | object) -> str:
    """Compact JSON with sorted keys: one spelling per value, so hashes are stable."""
    obj = json.loads(text_or_obj) if isinstance(text_or_obj, str) else text_or_obj
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def make_record_id(workload_id: str, trace_json: str, target_json: str) -> str:
    """The stable id of (workload, schedule trace, target): the same candidate measured
    twice on the same target has one id, so merges can pool its run times."""
    payload = "\n".join([workload_id, canonical_json(trace_json), canonical_json(target_json)])
    return hashlib.sha256(payload.encode()).hexdigest()


def summarize_latency(run_secs: list[float], error_kind: str | None) -> float | None:
    """The summary latency of a record: the mean of its repeats (MetaSchedule's choice)."""
    if error_kind is not None or not run_secs:
        return None
    return float(sum(run_secs) / len(run_secs))


# ------------------------------------------------------------------------------ writing


def _write_table_atomic(table: pa.Table, path: Path, *, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            row_group_size=ROW_GROUP_SIZE,
            use_dictionary=True,
            write_statistics=True,
        )
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def conform(table: pa.Table, kind: str) -> pa.Table:
    """Cast a table to the v1 schema of ``kind`` (column order, types, metadata)."""
    schema = SCHEMAS[kind]
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise RecordsError(f"{kind} table lacks columns {missing}")
    extra = [c for c in table.column_names if c not in schema.names]
    if extra:
        raise RecordsError(f"{kind} table has unknown columns {extra}; schema v{SCHEMA_VERSION}")
    return table.select(schema.names).cast(schema)


def shard_name_for(record_ids: Iterable[str]) -> str:
    """A content-derived shard name, so writing the same records twice is detected."""
    digest = hashlib.sha256()
    for rid in sorted(record_ids):
        digest.update(rid.encode())
    return digest.hexdigest()[:16]


def write_shards(
    out_dir: str | Path,
    workloads: pa.Table,
    records: pa.Table,
    *,
    shard: str | None = None,
    force: bool = False,
) -> list[Path]:
    """Write one shard of workloads and records (split by workload) into ``out_dir``.

    Returns the files written. Existing files are never overwritten unless ``force``.
    """
    out = Path(out_dir)
    workloads = conform(workloads, "workloads")
    records = conform(records, "records")
    name = shard or shard_name_for(records.column("record_id").to_pylist() or ["empty"])
    targets: list[tuple[pa.Table, Path]] = []
    if records.num_rows:
        split_col = pa.array([split_of(w) for w in records.column("workload_id").to_pylist()])
        for split in SPLITS:
            part = records.filter(pc.equal(split_col, split))
            if part.num_rows:
                targets.append((part, out / "records" / f"{split}-{name}.parquet"))
    # the workloads file goes last: a shard whose workloads file exists is complete, which
    # is how a resumed collection knows a task finished
    if workloads.num_rows:
        targets.append((workloads, out / "workloads" / f"{name}.parquet"))
    clashes = [p for _, p in targets if p.exists()]
    if clashes and not force:
        raise FileExistsError(
            f"{clashes[0]} exists (same records already written?); pass --force to overwrite"
        )
    for table, path in targets:
        _write_table_atomic(table, path, force=force)
    return [p for _, p in targets]


def write_rejected(out_dir: str | Path, name: str, rejected: list[dict]) -> Path | None:
    """Write refused input rows with their reasons as JSON lines (None if nothing refused).

    Never over an earlier file: imports into one folder each keep their own list
    (``name.jsonl``, else ``name-2.jsonl``, ...), and a file appears whole or not at all.
    """
    if not rejected:
        return None
    folder = Path(out_dir) / "rejected"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for row in rejected:
                fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        for n in itertools.count(1):
            path = folder / (f"{name}.jsonl" if n == 1 else f"{name}-{n}.jsonl")
            try:
                os.link(tmp, path)  # atomic, and fails rather than replace
            except FileExistsError:
                continue
            return path
    finally:
        os.unlink(tmp)
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------ reading


def shard_files(path: str | Path, kind: str) -> list[Path]:
    """The Parquet shards of one table kind under a dataset directory (or a single file)."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such dataset directory")
    return sorted((p / kind).glob("*.parquet"))


def check_file_schema(path: Path, kind: str) -> pa.Schema:
    """Open a shard's footer and refuse it unless it is a v1 ``kind`` table."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise RecordsError(f"{path}: not a readable Parquet file ({exc})") from exc
    meta = schema.metadata or {}
    version = meta.get(META_VERSION_KEY)
    if version is None:
        raise RecordsError(f"{path}: no tunezoo schema version in the file metadata")
    if version.decode() != SCHEMA_VERSION:
        raise RecordsError(
            f"{path}: schema version {version.decode()!r}, this tunezoo reads "
            f"{SCHEMA_VERSION!r}; upgrade tunezoo (pip install -U tunezoo)"
        )
    table_kind = meta.get(META_TABLE_KEY, b"").decode()
    if table_kind != kind:
        raise RecordsError(f"{path}: holds a {table_kind!r} table, expected {kind!r}")
    unknown = [n for n in schema.names if n not in SCHEMAS[kind].names]
    if unknown:
        raise RecordsError(f"{path}: unknown fields {unknown} for schema v{SCHEMA_VERSION}")
    missing = [n for n in SCHEMAS[kind].names if n not in schema.names]
    if missing:  # read anyway, they would come back as nulls: a run time of None
        raise RecordsError(
            f"{path}: lacks the schema v{SCHEMA_VERSION} {kind} fields {missing}; it was not "
            "written by tunezoo (write_shards writes every field), rewrite it with write_shards"
        )
    return schema


def read_table(
    path: str | Path,
    kind: str = "records",
    *,
    columns: list[str] | None = None,
    filter: pc.Expression | None = None,  # noqa: A002 - pyarrow's own name
    exclude_shards: set[str] | None = None,
) -> pa.Table:
    """Read all shards of one table kind, checking each file's schema version first.

    ``exclude_shards``: shard names (see :func:`shard_name`) whose files are left out, e.g.
    the tasks a snapshot does not hold (:func:`shards_after`).
    """
    files = shard_files(path, kind)
    if exclude_shards:
        files = [f for f in files if shard_name(f, kind) not in exclude_shards]
    for f in files:
        check_file_schema(f, kind)
    if not files:
        return SCHEMAS[kind].empty_table().select(columns or SCHEMAS[kind].names)
    dataset = ds.dataset([str(f) for f in files], schema=SCHEMAS[kind], format="parquet")
    try:
        return dataset.to_table(columns=columns, filter=filter)
    except (pa.ArrowInvalid, OSError) as exc:
        raise RecordsError(_damaged(files, exc)) from exc


def shard_name(file: Path, kind: str) -> str:
    """The name :func:`write_shards` gave a file's shard: ``<split>-<name>.parquet`` for
    records, ``<name>.parquet`` for workloads."""
    return file.stem.split("-", 1)[1] if kind == "records" and "-" in file.stem else file.stem


def shards_after(path: str | Path, until) -> set[str]:
    """Names of the shards holding a record measured after ``until`` (a UTC datetime).

    A collector writes a task's shard only when the task ends, so a shard is the unit a
    snapshot keeps or leaves out whole: the task in flight at ``until`` (some records
    measured before it, written after it) is left out with its workloads row, while a
    workload measured again later by another run keeps the shard it had at ``until``.
    """
    stamp = pa.scalar(until, pa.timestamp("us", tz="UTC"))
    out = set()
    for f in shard_files(path, "records"):
        check_file_schema(f, "records")
        created = pq.read_table(f, columns=["created_at"]).column("created_at")
        if len(created) and pc.greater(pc.max(created), stamp).as_py():
            out.add(shard_name(f, "records"))
    return out


def _damaged(files: list[Path], exc: Exception) -> str:
    """Which shard could not be read (pyarrow's error does not say): each file on its own."""
    for f in files:
        try:
            pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as one:
            return (
                f"{f}: unreadable data ({one}); restore the shard from git or its source "
                "(tunezoo records validate lists every damaged file)"
            )
    return f"{files[0].parent}: the shards could not be read together ({exc})"


def read_records(path: str | Path, **kwargs) -> pa.Table:
    """All records under a dataset directory (see :func:`read_table`)."""
    return read_table(path, "records", **kwargs)


def read_workloads(path: str | Path, **kwargs) -> pa.Table:
    """All workloads under a dataset directory, one row per workload id (merged)."""
    return dedupe_workloads(read_table(path, "workloads", **kwargs))


def dedupe_workloads(table: pa.Table) -> pa.Table:
    """One row per workload id; the model lists of duplicate rows are unioned."""
    if table.num_rows == 0 or "models" not in table.column_names:
        return table
    rows: dict[str, dict] = {}
    for row in table.to_pylist():
        wid = row["workload_id"]
        if wid not in rows:
            rows[wid] = row
            continue
        known = {(m["model"], m["weight"]) for m in rows[wid]["models"]}
        for m in row["models"]:
            if (m["model"], m["weight"]) not in known:
                rows[wid]["models"].append(m)
                known.add((m["model"], m["weight"]))
    return pa.Table.from_pylist(list(rows.values()), schema=table.schema)


# ---------------------------------------------------------------------------- validation


def validate_record_row(row: dict) -> list[tuple[str, str]]:
    """Problems with one record row as (field, message) pairs; empty when valid."""
    problems: list[tuple[str, str]] = []
    for name in ("record_id", "workload_id", "target_key", "target", "trace", "args_info"):
        if not row.get(name):
            problems.append((name, "missing or empty"))
    for name in ("trace", "args_info", "target", "measure_settings"):
        value = row.get(name)
        if value:
            try:
                json.loads(value)
            except (TypeError, ValueError) as exc:
                problems.append((name, f"not valid JSON ({exc})"))
    run_secs = row.get("run_secs")
    if run_secs is None or len(run_secs) == 0:
        problems.append(("run_secs", "no measured run time"))
    else:
        for i, v in enumerate(run_secs):
            if v is None or not math.isfinite(v):
                problems.append(("run_secs", f"repeat {i} is {v}, expected a finite number"))
            elif v <= 0:
                problems.append(("run_secs", f"repeat {i} is {v}, expected a positive time"))
    kind = row.get("error_kind")
    if kind is not None and kind not in ERROR_KINDS:
        problems.append(("error_kind", f"{kind!r} is not one of {list(ERROR_KINDS)}"))
    if kind is None and run_secs and any(v == FAILED_RUN_SECS for v in run_secs if v):
        problems.append(("error_kind", "run time is the failure sentinel but no error kind"))
    if row.get("sampling") not in SAMPLING_METHODS:
        problems.append(("sampling", f"{row.get('sampling')!r} not in {list(SAMPLING_METHODS)}"))
    if all(row.get(k) for k in ("workload_id", "trace", "target", "record_id")):
        try:
            expected = make_record_id(row["workload_id"], row["trace"], row["target"])
        except ValueError:
            expected = None
        if expected is not None and expected != row["record_id"]:
            problems.append(("record_id", "does not match hash of workload, trace and target"))
    return problems


def validate(path: str | Path) -> list[Problem]:
    """Every problem in a dataset directory at once: files, rows and cross-references."""
    problems: list[Problem] = []
    workload_ids: set[str] = set()
    for kind in ("workloads", "records"):
        try:
            files = shard_files(path, kind)
        except FileNotFoundError as exc:
            return [Problem(str(path), None, None, str(exc))]
        for f in files:
            try:
                check_file_schema(f, kind)
                table = pq.read_table(f)
            except RecordsError as exc:
                problems.append(Problem(str(f), None, None, str(exc).split(": ", 1)[-1]))
                continue
            except (pa.ArrowInvalid, OSError) as exc:  # a sound footer over damaged pages
                problems.append(Problem(str(f), None, None, f"unreadable data ({exc})"))
                continue
            if kind == "workloads":
                for i, wid in enumerate(table.column("workload_id").to_pylist()):
                    if not wid:
                        problems.append(Problem(str(f), i, "workload_id", "missing"))
                    workload_ids.add(wid)
                continue
            for i, row in enumerate(table.to_pylist()):
                for field, message in validate_record_row(row):
                    problems.append(Problem(str(f), i, field, message))
                if row["workload_id"] and row["workload_id"] not in workload_ids:
                    problems.append(
                        Problem(str(f), i, "workload_id", "no such workload in workloads/")
                    )
    return problems


# ------------------------------------------------------------------------- info, merge


RICH_CANDIDATES = 100  # distinct successful candidates that make a workload "rich"


def utc_time(text: str) -> dt.datetime:
    """An ISO time as a snapshot cut-off; ``created_at`` is UTC, so a time without a zone
    is read as UTC (not local time)."""
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def successful_candidates(records: pa.Table) -> dict[str, set[str]]:
    """Per workload, the record ids of its distinct successful candidates (every workload
    of ``records`` is a key, even one whose candidates all failed)."""
    distinct: dict[str, set[str]] = {}
    for wid, rid, err in zip(
        records.column("workload_id").to_pylist(),
        records.column("record_id").to_pylist(),
        records.column("error_kind").to_pylist(),
        strict=True,
    ):
        ok = distinct.setdefault(wid, set())
        if err is None:
            ok.add(rid)
    return distinct


def depth_kind(n_distinct: int, rich: int = RICH_CANDIDATES) -> str:
    """``rich``: at least ``rich`` distinct schedules measured (what ranking is learned
    from); ``single_schedule``: one at most, a layout-only task whose design space holds a
    single schedule, so there is nothing to rank however long one samples; ``partial``:
    between."""
    return "rich" if n_distinct >= rich else "single_schedule" if n_distinct <= 1 else "partial"


def candidate_depth(records: pa.Table, rich: int = RICH_CANDIDATES) -> dict[str, dict[str, int]]:
    """Workloads per split by their number of distinct successful candidates
    (see :func:`depth_kind`)."""
    out: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for wid, ids in successful_candidates(records).items():
        out[split_of(wid)][depth_kind(len(ids), rich)] += 1
    return {split: dict(c) for split, c in out.items()}


def info(path: str | Path) -> dict:
    """Counts per target, workload and model; failures; duplicate record ids."""
    records = read_records(
        path, columns=["record_id", "workload_id", "target_key", "error_kind", "sampling"]
    )
    workloads = read_workloads(path, columns=["workload_id", "name", "models"])
    ids = records.column("record_id").to_pylist()
    dup = sum(c - 1 for c in Counter(ids).values() if c > 1)
    per_workload = Counter(records.column("workload_id").to_pylist())
    models: Counter[str] = Counter()
    for wid, mlist in zip(
        workloads.column("workload_id").to_pylist(),
        workloads.column("models").to_pylist(),
        strict=True,
    ):
        for m in {m["model"] for m in mlist}:
            models[m] += per_workload.get(wid, 0)
    splits = Counter(split_of(w) for w in per_workload.elements())
    errors = Counter(e for e in records.column("error_kind").to_pylist() if e is not None)
    counts = sorted(per_workload.values())
    return {
        "path": str(path),
        "records": records.num_rows,
        "workloads": workloads.num_rows,
        "workloads_with_records": len(per_workload),
        "targets": dict(Counter(records.column("target_key").to_pylist())),
        "models": dict(sorted(models.items())),
        "splits": {s: splits.get(s, 0) for s in SPLITS},
        "sampling": dict(Counter(records.column("sampling").to_pylist())),
        "failed": dict(errors),
        "duplicate_record_ids": dup,
        "workloads_by_candidates": candidate_depth(records),
        "records_per_workload": {
            "min": counts[0] if counts else 0,
            "median": counts[len(counts) // 2] if counts else 0,
            "max": counts[-1] if counts else 0,
        },
    }


def merge_record_rows(rows: list[dict]) -> dict:
    """Merge rows that share a record id, keeping every distinct measurement.

    Identical measurements (same run times, same time stamp) are one measurement seen
    twice; different measurements of the same candidate are pooled, never dropped. An
    imported row's time stamp is when it was imported, not measured, so imported rows
    with the same run times are one measurement whenever they were imported (importing
    a grown work_dir again must not count its old records twice).
    """
    base = dict(rows[0])
    seen = {_measurement_key(base)}
    pooled = list(base["run_secs"])
    for row in rows[1:]:
        key = _measurement_key(row)
        if key in seen:
            continue
        seen.add(key)
        pooled.extend(row["run_secs"])
        if base["error_kind"] is not None and row["error_kind"] is None:
            base.update({k: row[k] for k in ("error_kind", "error_msg")})
    if base["error_kind"] is None:
        pooled = [v for v in pooled if v != FAILED_RUN_SECS]
    base["run_secs"] = pooled
    base["latency_s"] = summarize_latency(pooled, base["error_kind"])
    return base


def _measurement_key(row: dict) -> tuple:
    """What makes two rows of one record id the same measurement (see merge_record_rows)."""
    if row.get("sampling") == "imported":
        return (tuple(row["run_secs"]), "imported")
    return (tuple(row["run_secs"]), row["created_at"])


def merge(sources: list[str | Path], out_dir: str | Path, *, force: bool = False) -> dict:
    """Merge datasets into one new shard, deduplicating by record id (run times pooled)."""
    records = pa.concat_tables([read_records(s) for s in sources])
    workloads = dedupe_workloads(pa.concat_tables([read_table(s, "workloads") for s in sources]))
    by_id: dict[str, list[dict]] = {}
    for row in records.to_pylist():
        by_id.setdefault(row["record_id"], []).append(row)
    merged = [merge_record_rows(rows) for rows in by_id.values()]
    table = pa.Table.from_pylist(merged, schema=RECORD_SCHEMA)
    files = write_shards(out_dir, workloads, table, force=force)
    return {
        "input_records": records.num_rows,
        "output_records": table.num_rows,
        "pooled_duplicates": records.num_rows - table.num_rows,
        "workloads": workloads.num_rows,
        "files": [str(f) for f in files],
    }


__all__ = [
    "Problem",
    "RecordsError",
    "RECORD_SCHEMA",
    "WORKLOAD_SCHEMA",
    "canonical_json",
    "info",
    "make_record_id",
    "merge",
    "read_records",
    "read_workloads",
    "validate",
    "write_shards",
]


# ------------------------------------------------------------------------ building rows


def record_row(
    *,
    workload_id: str,
    target_key: str,
    target_json: str,
    trace_json: str,
    args_info_json: str,
    run_secs: list[float],
    error_kind: str | None,
    error_msg: str | None,
    hardware: dict,
    tvm_version: str,
    measure_settings: str,
    sampling: str,
    source: str,
    created_at,
    contributor: str | None = None,
    license: str | None = None,  # noqa: A002 - the column's name
) -> dict:
    """One ``records`` row; the id and the summary latency are derived here, once."""
    from tunezoo import __version__  # noqa: PLC0415 - avoid an import cycle at load time

    return {
        "record_id": make_record_id(workload_id, trace_json, target_json),
        "workload_id": workload_id,
        "target_key": target_key,
        "target": target_json,
        "trace": trace_json,
        "args_info": args_info_json,
        "run_secs": [float(v) for v in run_secs],
        "latency_s": summarize_latency(run_secs, error_kind),
        "error_kind": error_kind,
        "error_msg": error_msg,
        "hw_cpu_model": hardware.get("hw_cpu_model"),
        "hw_gpu_model": hardware.get("hw_gpu_model"),
        "hw_num_cores": hardware.get("hw_num_cores"),
        "hw_driver": hardware.get("hw_driver"),
        "tvm_version": tvm_version,
        "tunezoo_version": __version__,
        "measure_settings": measure_settings,
        "sampling": sampling,
        "source": source,
        "contributor": contributor,
        "license": license,
        "created_at": created_at,
    }
