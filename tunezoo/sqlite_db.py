"""Read the SQLite variant of the MetaSchedule database (github:mshr-h/metaschedule_sqlitedatabase).

That project stores the two JSON database files as two SQLite files with one table each::

    database_workload.sqlite       workload(shash text, mod text)
    database_tuning_record.sqlite  tuning_record(workload_index int, trace text,
                                                 run_secs text, target text, args_info text)

``mod`` is the same base64 text as the JSON database's workload line, ``workload_index``
is the 0-based position of the workload in table order (its reader loads ``SELECT *`` in
insertion order), and the record columns are the four parts of a JSON record, each as
text. Its writer formatted some of them with Python's ``str()`` rather than JSON (single
quotes, ``None``), so such text is read with :func:`ast.literal_eval`, which evaluates
literals only. The files are opened read-only.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKLOAD_FILE = "database_workload.sqlite"
RECORD_FILE = "database_tuning_record.sqlite"


@dataclass(frozen=True)
class SourceRow:
    """One input row: where it came from, and its JSON value or why it cannot be read.

    ``line`` is the 1-based line of a JSON file or the rowid of an SQLite table row.
    """

    file: str
    line: int
    value: Any = None
    error: str | None = None


def is_sqlite_database(path: str | Path) -> bool:
    """Whether a directory holds the SQLite variant (at least its record file)."""
    p = Path(path)
    return (p / RECORD_FILE).is_file() or (p / WORKLOAD_FILE).is_file()


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _not_readable(path: Path, table: str, columns: str, exc: sqlite3.Error) -> Exception:
    """sqlite3's error, with the file and what a MetaSchedule SQLite database holds."""
    from tunezoo.convert import DatabaseFormatError  # noqa: PLC0415 - convert imports us

    return DatabaseFormatError(
        f"{path}: not a MetaSchedule SQLite database ({exc}); expected a table '{table}' "
        f"with columns {columns}"
    )


def _parse_text(text: Any, column: str) -> Any:
    """A column holding JSON, or a Python literal where the writer used ``str()``."""
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"column '{column}' is neither JSON nor a Python literal ({exc})") from exc


def read_sqlite_workloads(db_dir: str | Path) -> Iterator[SourceRow]:
    """Workload rows as JSON-database lines ``[shash, base64]``, in table order."""
    path = Path(db_dir) / WORKLOAD_FILE
    con = _connect(path)
    try:
        for rowid, shash, mod in con.execute(
            "SELECT rowid, shash, mod FROM workload ORDER BY rowid"
        ):
            if not isinstance(mod, str):
                yield SourceRow(str(path), rowid, error="column 'mod' is not text")
            else:
                yield SourceRow(str(path), rowid, [str(shash), mod])
    except sqlite3.Error as exc:
        raise _not_readable(path, "workload", "(shash, mod)", exc) from exc
    finally:
        con.close()


def read_sqlite_records(db_dir: str | Path) -> Iterator[SourceRow]:
    """Tuning-record rows as JSON-database lines ``[workload_index, [trace, run_secs,
    target, args_info]]``, in table order."""
    path = Path(db_dir) / RECORD_FILE
    con = _connect(path)
    try:
        rows = con.execute(
            "SELECT rowid, workload_index, trace, run_secs, target, args_info "
            "FROM tuning_record ORDER BY rowid"
        )
        for rowid, index, trace, run_secs, target, args_info in rows:
            try:
                value = [
                    int(index),
                    [
                        _parse_text(trace, "trace"),
                        _parse_text(run_secs, "run_secs"),
                        _parse_text(target, "target"),
                        _parse_text(args_info, "args_info"),
                    ],
                ]
            except (TypeError, ValueError) as exc:
                yield SourceRow(str(path), rowid, error=str(exc))
                continue
            yield SourceRow(str(path), rowid, value)
    except sqlite3.Error as exc:
        columns = "(workload_index, trace, run_secs, target, args_info)"
        raise _not_readable(path, "tuning_record", columns, exc) from exc
    finally:
        con.close()


__all__ = [
    "RECORD_FILE",
    "WORKLOAD_FILE",
    "SourceRow",
    "is_sqlite_database",
    "read_sqlite_records",
    "read_sqlite_workloads",
]
