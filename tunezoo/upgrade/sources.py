"""Read the lines of an input database, JSON or SQLite, as :class:`SourceRow` values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tunezoo.sqlite_db import (
    RECORD_FILE as SQLITE_RECORD_FILE,
)
from tunezoo.sqlite_db import (
    WORKLOAD_FILE as SQLITE_WORKLOAD_FILE,
)
from tunezoo.sqlite_db import (
    SourceRow,
    read_sqlite_records,
    read_sqlite_workloads,
)

JSON_WORKLOAD_FILE = "database_workload.json"
JSON_RECORD_FILE = "database_tuning_record.json"


def read_json_lines(path: Path) -> Iterator[SourceRow]:
    """Each non-empty line of a JSON-lines file, parsed; bad lines carry their error."""
    with open(path, "rb") as fh:  # decoded per line: a bad byte costs its line only
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield SourceRow(str(path), number, error=f"not UTF-8 text ({exc})")
                continue
            try:
                yield SourceRow(str(path), number, json.loads(line))
            except ValueError as exc:
                yield SourceRow(str(path), number, error=f"not valid JSON ({exc})")


def input_format(src: Path) -> str:
    """``json`` or ``sqlite``; raises FileNotFoundError naming what a database needs."""
    if (src / JSON_RECORD_FILE).is_file() or (src / JSON_WORKLOAD_FILE).is_file():
        return "json"
    if (src / SQLITE_RECORD_FILE).is_file() or (src / SQLITE_WORKLOAD_FILE).is_file():
        return "sqlite"
    raise FileNotFoundError(
        f"{src}: no MetaSchedule database here; expected {JSON_WORKLOAD_FILE} and "
        f"{JSON_RECORD_FILE} (or the SQLite variant {SQLITE_WORKLOAD_FILE} and "
        f"{SQLITE_RECORD_FILE})"
    )


def database_files(src: Path, fmt: str) -> tuple[Path, Path]:
    """(workload file, record file) of a database directory in format ``fmt``."""
    if fmt == "sqlite":
        return src / SQLITE_WORKLOAD_FILE, src / SQLITE_RECORD_FILE
    return src / JSON_WORKLOAD_FILE, src / JSON_RECORD_FILE


def read_workload_rows(src: Path, fmt: str) -> Iterator[SourceRow]:
    if fmt == "sqlite":
        return read_sqlite_workloads(src)
    return read_json_lines(src / JSON_WORKLOAD_FILE)


def read_record_rows(src: Path, fmt: str) -> Iterator[SourceRow]:
    if fmt == "sqlite":
        return read_sqlite_records(src)
    return read_json_lines(src / JSON_RECORD_FILE)
