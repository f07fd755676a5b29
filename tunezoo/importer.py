"""Import any MetaSchedule database, whatever TVM wrote it: the one entry point the CLI uses.

A current-format JSON database goes straight to :func:`tunezoo.convert.import_database`.
Anything older (TVM 0.12-0.23 graphs, ``GetBlock`` traces) or the SQLite variant first
goes through :func:`tunezoo.upgrade.upgrade_database`, which writes a checked, current
database; its records are then imported with their provenance (source repository and
commit, licence, original TVM version), the original workload hash next to the new one,
and a target key derived from each record's own target dict.

Output: with ``target_key`` given, every record is filed under it in ``out_dir``; without
one, the key is derived per record and each target gets ``out_dir/<key>/``.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tunezoo.convert import (
    RECORD_FILE,
    WORKLOAD_FILE,
    DatabaseFormatError,
    ImportReport,
    import_database,
    read_lines,
)
from tunezoo.records import write_rejected


@dataclass
class ImportResult:
    """What one import produced: one report per target, plus the upgrade's findings."""

    reports: dict[str, ImportReport] = field(default_factory=dict)
    upgraded: bool = False
    upgrade: dict | None = None
    set_aside: int = 0
    set_aside_file: str | None = None  # the upgrade's refused rows, with their reasons

    def rejected_files(self) -> list[str]:
        """Every file listing refused rows, the upgrade's and each target's import's."""
        files = [self.set_aside_file] + [r.rejected_file for r in self.reports.values()]
        return [f for f in files if f]

    def summary(self) -> dict:
        return {
            "upgraded_from_older_tvm": self.upgraded,
            "targets": {k: r.summary() for k, r in self.reports.items()},
            "set_aside_by_upgrade": self.set_aside,
            "upgrade": self.upgrade,
        }


SNIFF_LINES = 50  # lines read to tell an old database from a current one


def needs_upgrade(db_dir: str | Path) -> bool:
    """Whether TVM 0.27 cannot read the database as it is (older era, or SQLite).

    Decided by the first workload line that can be read (a corrupt line is the importer's
    to report, one line at a time, not a reason to take the wrong path for all) and by
    any ``GetBlock`` among the first record lines.
    """
    from tunezoo.upgrade.graph import ERA_CURRENT, decode_workload_b64, detect_era  # noqa: PLC0415
    from tunezoo.upgrade.sources import input_format  # noqa: PLC0415

    db = Path(db_dir)
    if input_format(db) == "sqlite":
        return True
    for _, line in _sniff(db / WORKLOAD_FILE):
        try:
            graph = json.loads(decode_workload_b64(json.loads(line)[1]))
        except Exception:  # noqa: BLE001 - unreadable here: try the next line
            continue
        if detect_era(graph) != ERA_CURRENT:
            return True
        break
    return any('["GetBlock"' in line for _, line in _sniff(db / RECORD_FILE))


def _sniff(path: Path) -> list[tuple[int, str]]:
    """The first :data:`SNIFF_LINES` non-blank lines of a database file (none if absent)."""
    return read_lines(path, SNIFF_LINES) if path.exists() else []


DEVICE_OR_TARGET = (
    "--target files every record under one key and --device names the hardware to derive "
    "each record's key from: give one of them, not both"
)


def import_any(
    db_dir: str | Path,
    out_dir: str | Path,
    *,
    target_key: str | None = None,
    device: str | None = None,
    source: str | None = None,
    contributor: str | None = None,
    license: str | None = None,  # noqa: A002
    repo: str | None = None,
    commit: str | None = None,
    tvm_version: str | None = None,
    check_traces: bool = True,
    force: bool = False,
) -> ImportResult:
    """Import a MetaSchedule database of any era into Parquet shards (see module doc)."""
    if target_key is not None and device is not None:
        raise ValueError(DEVICE_OR_TARGET)
    db, out = Path(db_dir), Path(out_dir)
    if not needs_upgrade(db):
        if target_key is None:
            target_key = _single_derived_key(db, device)
        report = import_database(
            db,
            out,
            target_key=target_key,
            source=source,
            contributor=contributor,
            license=license,
            tvm_version=tvm_version,
            check_traces=check_traces,
            force=force,
        )
        return ImportResult(reports={target_key: report})

    from tunezoo.upgrade import upgrade_database  # noqa: PLC0415

    result = ImportResult(upgraded=True)
    with tempfile.TemporaryDirectory(prefix="tunezoo-upgrade-") as tmp:
        upgraded = Path(tmp) / "upgraded"
        rep = upgrade_database(
            db,
            upgraded,
            device=device,
            repo=repo,
            commit=commit,
            license=license,
            tvm_version=tvm_version,
        )
        result.upgrade = {
            k: v
            for k, v in rep.to_dict().items()
            if k not in ("rejected", "rejected_workloads", "hash_map")
        }
        result.set_aside = len(rep.rejected)
        rejected = [r.to_dict() for r in rep.rejected + rep.rejected_workloads]
        written = write_rejected(out, f"upgrade-{db.resolve().name}", rejected)
        result.set_aside_file = str(written) if written else None
        if rep.records_upgraded == 0:
            where = f"; every row and why: {written}" if written else ""
            raise DatabaseFormatError(
                rep.missing
                or f"{db}: no record could be upgraded to TVM 0.27; reasons: "
                f"{rep.top_reasons(3)}{where}"
            )
        if device and target_key is None:
            _one_kind_for_device(db, device, rep.record_target_keys)
        old_hash = {}
        for old, new in rep.hash_map.items():
            old_hash.setdefault(new, old)
        lines = (upgraded / RECORD_FILE).read_text().splitlines()
        by_key: dict[str, list[str]] = defaultdict(list)
        origins: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for i, line in enumerate(lines):
            key = target_key or rep.record_target_keys[i]
            by_key[key].append(line)
            origins[key].append(rep.record_origins[i])
        for key, key_lines in sorted(by_key.items()):
            part = Path(tmp) / key
            part.mkdir()
            (part / WORKLOAD_FILE).write_text((upgraded / WORKLOAD_FILE).read_text())
            (part / RECORD_FILE).write_text("\n".join(key_lines) + "\n")
            dest = out if target_key else out / key
            result.reports[key] = import_database(
                part,
                dest,
                target_key=key,
                sampling="imported",
                source=source or rep.source,
                contributor=contributor,
                license=license or rep.license,
                tvm_version=rep.tvm_version,
                source_hashes=old_hash,
                check_traces=False,  # the upgrader replayed each one
                force=force,
                record_origins=origins[key],  # refusals name the user's own lines
            )
    return result


def _one_kind_for_device(db: Path, device: str, keys: list[str]) -> None:
    """Refuse ``--device`` on a database of several kinds of hardware: it names one device,
    and would otherwise give the CPU records of a mixed database a GPU's name."""
    kinds = Counter(key.split("-")[0] for key in keys)
    if len(kinds) > 1:
        counts = ", ".join(f"{kind}: {n}" for kind, n in sorted(kinds.items()))
        raise DatabaseFormatError(
            f"{db}: --device {device!r} names one device, but the database holds records "
            f"for {len(kinds)} kinds of hardware ({counts} records); import it without "
            "--device (each record's key is derived from its target) or with --target KEY"
        )


def _single_derived_key(db: Path, device: str | None) -> str:
    """The target key of a current-format database, from the first record whose target
    can be read (a bad line costs that line at import, not the whole import)."""
    from tunezoo.target_keys import TargetKeyError, derive_target_key  # noqa: PLC0415

    lines = _sniff(db / RECORD_FILE)
    if not lines:
        raise DatabaseFormatError(f"{db / RECORD_FILE}: no records")
    problems = []
    for lineno, line in lines:
        try:
            target = json.loads(line)[1][2]
            return derive_target_key(target, device=device)
        except (ValueError, IndexError, TypeError, KeyError, TargetKeyError) as exc:
            problems.append(f"line {lineno}: {exc}")
    raise DatabaseFormatError(
        f"{db / RECORD_FILE}: no target key can be derived from the first {len(lines)} "
        f"records ({problems[0]}); pass --target KEY"
    )
