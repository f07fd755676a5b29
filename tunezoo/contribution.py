"""Checking a contribution before it becomes a pull request on the Hub dataset.

A contribution is a directory of record shards (``records/``, ``workloads/``, as written by
:mod:`tunezoo.records` or by ``tunezoo.convert.import_database``) or a list of shard files.
Before anything leaves the machine it must pass, in order:

1. file checks: only ``.parquet``, ``.json`` and ``.md`` files, whose bytes are what the
   name says (Parquet magic, UTF-8 JSON, text), under the size limits. Executables,
   archives and pickles are refused by their magic bytes whatever they are called;
2. the schema validator (:func:`tunezoo.records.validate`): every file, row and field;
3. the target: every record must be for the target the contribution is filed under, by
   its key and by the TVM target dict it was measured with;
4. the workloads: each ``mod_json`` must be a TVM module whose structural hash is its id.

Then the records the Hub dataset already has (by record id) are dropped and the rest is
written as *new* shards (content-derived names), so a pull request only ever adds files.
This module does no network I/O; :func:`tunezoo.hub.contribute` does the upload.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tunezoo.records import (
    merge_record_rows,
    read_records,
    read_workloads,
    shard_files,
    validate,
    write_shards,
)
from tunezoo.schema import META_TABLE_KEY, RECORD_SCHEMA, SCHEMA_VERSION
from tunezoo.splits import SPLITS, split_of
from tunezoo.targets import KEY_PATTERN

CONTRIBUTION_SUFFIXES = (".parquet", ".json", ".md")
SKIPPED_DIRS = ("rejected",)  # an import's refused rows: kept locally, never uploaded
MAX_FILE_BYTES = 512 * 1024**2
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_LISTED = 30  # problems listed in one error message; the count says how many more

# Leading bytes of things that must never be uploaded, whatever the file is called.
_MAGIC = (
    (b"\x80\x02", "a Python pickle"),
    (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04", "a Python pickle"),
    (b"\x80\x05", "a Python pickle"),
    (b"\x7fELF", "an ELF executable"),
    (b"MZ", "a Windows executable"),
    (b"\xcf\xfa\xed\xfe", "a Mach-O executable"),
    (b"\xca\xfe\xba\xbe", "a Mach-O executable"),
    (b"#!", "a script"),
    (b"PK\x03\x04", "a zip archive (torch .pt files are zipped pickles)"),
    (b"\x1f\x8b", "a gzip archive"),
)


class ContributionError(ValueError):
    """A contribution that cannot be uploaded; the message names every file and reason."""


def sniff(head: bytes) -> str | None:
    """What a file's first bytes say it is, when it is something never to be uploaded."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    return None


def check_file(
    path: str | Path,
    *,
    suffixes: tuple[str, ...] = CONTRIBUTION_SUFFIXES,
    max_bytes: int = MAX_FILE_BYTES,
) -> str | None:
    """Why ``path`` may not be uploaded (a sentence naming it), or None when it may.

    The suffix must be allowed *and* the content must match it: a pickle renamed to
    ``.parquet`` is refused by its bytes.
    """
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return f"{p}: not a regular file (links and special files are not uploaded)"
    if p.suffix not in suffixes:
        return (
            f"{p}: '{p.suffix or p.name}' files are not accepted; only {', '.join(suffixes)} "
            "(no code, no archives, no pickles)"
        )
    size = p.stat().st_size
    if size > max_bytes:
        return f"{p}: {size} bytes, over the limit of {max_bytes} bytes per file; split it"
    with open(p, "rb") as fh:
        head = fh.read(16)
        fh.seek(max(size - 4, 0))
        tail = fh.read(4)
    what = sniff(head)
    if p.suffix == ".parquet":
        if head[:4] != b"PAR1" or tail != b"PAR1":
            return f"{p}: not a Parquet file ({what or 'no PAR1 magic at both ends'})"
        return None
    if what is not None:
        return f"{p}: the content is {what}, not {p.suffix}"
    if p.suffix == ".safetensors":
        return _check_safetensors(p, head, size)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})"
    if "\0" in text:
        return f"{p}: contains NUL bytes; expected text"
    if p.suffix == ".json":
        try:
            json.loads(text)
        except ValueError as exc:
            return f"{p}: not valid JSON ({exc})"
    return None


def _check_safetensors(p: Path, head: bytes, size: int) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header, then raw tensor bytes."""
    n = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if n <= 1 or n > size - 8 or head[8:9] != b"{":
        return f"{p}: not a safetensors file (bad header length or no JSON header)"
    with open(p, "rb") as fh:
        fh.seek(8)
        try:
            json.loads(fh.read(n))
        except ValueError as exc:
            return f"{p}: safetensors header is not valid JSON ({exc})"
    return None


def _listed(problems: list[str]) -> str:
    shown = "\n".join(f"- {p}" for p in problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    return shown + (f"\n- ... and {more} more" if more > 0 else "")


# ------------------------------------------------------------------------------ checking


@dataclass
class CheckedContribution:
    """A contribution that passed every check, ready to be deduplicated and sharded."""

    dataset_dir: Path
    files: list[Path]
    skipped: list[Path]
    total_bytes: int
    records: pa.Table
    workloads: pa.Table


def collect_files(source: str | Path | list[str | Path]) -> tuple[list[Path], list[Path]]:
    """The files of a contribution, and those deliberately left out (``rejected/``)."""
    if isinstance(source, list | tuple):
        return [Path(s) for s in source], []
    root = Path(source)
    if root.is_file():
        return [root], []
    if not root.is_dir():
        raise ContributionError(f"{root}: no such directory or file")
    files, skipped = [], []
    for p in sorted(root.rglob("*")):
        if p.is_dir() and not p.is_symlink():
            continue
        rel = p.relative_to(root)
        # at any depth: an import without --target writes <key>/rejected/
        (skipped if any(d in SKIPPED_DIRS for d in rel.parts[:-1]) else files).append(p)
    return files, skipped


def stage(files: list[Path], staging_dir: Path) -> dict[str, Path]:
    """Make ``staging_dir`` a dataset directory of the Parquet ``files`` (links, no copies);
    return each staged path (as the validator names it) -> the user's file.

    A shard in a ``records/`` or ``workloads/`` folder keeps that kind (the validator then
    checks it is one); a loose shard is sorted by the table kind in its metadata.
    """
    staged: dict[str, Path] = {}
    for f in files:
        if f.suffix != ".parquet":
            continue
        kind = f.parent.name
        if kind not in ("records", "workloads"):
            try:
                kind = (pq.read_schema(f).metadata or {}).get(META_TABLE_KEY, b"").decode()
            except (pa.ArrowInvalid, OSError) as exc:
                raise ContributionError(f"{f}: not a readable Parquet file ({exc})") from exc
            if kind not in ("records", "workloads"):
                raise ContributionError(
                    f"{f}: no tunezoo table kind in its metadata; is it a tunezoo shard? "
                    "(put it in a records/ or workloads/ folder to have it validated)"
                )
        dest = staging_dir / kind / f.name
        if dest.exists():
            raise ContributionError(f"{f}: two {kind} shards are called {f.name}; rename one")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(f.resolve(), dest)
        staged[str(dest)] = f
    return staged


def check_contribution(
    source: str | Path | list[str | Path],
    target_key: str,
    *,
    staging_dir: str | Path,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    label: str = "Contribution",
) -> CheckedContribution:
    """Run every check on a contribution; raise one ContributionError listing all problems.

    ``label`` names the operation in the messages (a maintainer's publication runs the
    same checks).
    """
    if not KEY_PATTERN.match(target_key or ""):
        raise ContributionError(f"target key {target_key!r} is not lowercase letters, digits, '-'")
    files, skipped = collect_files(source)
    problems = [r for f in files if (r := check_file(f, max_bytes=max_file_bytes)) is not None]
    total = sum(f.stat().st_size for f in files if f.is_file())
    if total > max_total_bytes:
        problems.append(
            f"the contribution is {total} bytes, over the limit of {max_total_bytes}; "
            "send it as several smaller contributions"
        )
    if problems:
        raise ContributionError(f"{label} refused, no file was uploaded:\n" + _listed(problems))
    if not any(f.suffix == ".parquet" for f in files):
        raise ContributionError(
            f"{label} refused: {source} holds no record shards (.parquet); give the folder "
            "`tunezoo records import` wrote, or a MetaSchedule work_dir"
        )
    dataset_dir = Path(staging_dir)
    staged = stage(files, dataset_dir)
    found = [str(replace(p, file=str(staged.get(p.file, p.file)))) for p in validate(dataset_dir)]
    if found:
        raise ContributionError(
            f"{label} refused: the schema validator (v{SCHEMA_VERSION}) found "
            f"{len(found)} problem(s); fix them and try again:\n" + _listed(found)
        )
    wrong: list[str] = []
    mismatch: dict[str, str | None] = {}  # target JSON -> why it is not target_key's
    for f in shard_files(dataset_dir, "records"):
        table = pq.read_table(f, columns=["target_key", "target"])
        keys, targets = table[0].to_pylist(), table[1].to_pylist()
        for row, (key, target) in enumerate(zip(keys, targets, strict=True)):
            if key != target_key:
                where = f"{staged.get(str(f), f)}, row {row}, field 'target_key'"
                wrong.append(f"{where}: {key!r}, not {target_key!r}")
                continue
            # the key column is whatever the importer was told: the target dict is what
            # the records were measured on
            if target not in mismatch:
                mismatch[target] = _target_problem(target, target_key)
            if mismatch[target] is not None:
                where = f"{staged.get(str(f), f)}, row {row}, field 'target'"
                wrong.append(f"{where}: {mismatch[target]}")
    if wrong:
        raise ContributionError(
            f"{label} refused: records for another target than {target_key!r}; "
            "contribute each target separately:\n" + _listed(wrong)
        )
    unhashed = _workload_problems(dataset_dir, staged)
    if unhashed:
        raise ContributionError(
            f"{label} refused: workloads whose module is not what their id says (the id is "
            "MetaSchedule's structural hash of mod_json; write them with tunezoo records "
            "import or tunezoo collect):\n" + _listed(unhashed)
        )
    records = read_records(dataset_dir)
    if records.num_rows == 0:
        raise ContributionError(f"{label} refused: no records in {source}")
    return CheckedContribution(
        dataset_dir, files, skipped, total, records, read_workloads(dataset_dir)
    )


def _workload_problems(dataset_dir: Path, staged: dict[str, Path]) -> list[str]:
    """Workload rows whose ``mod_json`` is not a TVM module hashing to their id: every
    record of a workload is filed under that id, so a wrong module would mislabel them."""
    from tunezoo.workloads import load_workload, workload_id  # noqa: PLC0415 - imports TVM

    problems = []
    for f in shard_files(dataset_dir, "workloads"):
        table = pq.read_table(f, columns=["workload_id", "mod_json"])
        for row, (wid, text) in enumerate(zip(table[0].to_pylist(), table[1].to_pylist(),
                                              strict=True)):  # fmt: skip
            where = f"{staged.get(str(f), f)}, row {row}"
            try:
                actual = workload_id(load_workload(text))
            except Exception as exc:  # noqa: BLE001 - any parse failure is the row's fault
                first = str(exc).strip().splitlines()[-1:] or [type(exc).__name__]
                problems.append(f"{where}, field 'mod_json': not a TVM module ({first[0][:200]})")
                continue
            if actual != wid:
                problems.append(f"{where}, field 'workload_id': {wid}, its module is {actual}")
    return problems


def _target_problem(target_json: str, target_key: str) -> str | None:
    from tunezoo.target_keys import target_mismatch  # noqa: PLC0415

    try:
        target = json.loads(target_json)
    except ValueError as exc:
        return f"not JSON ({exc})"
    return target_mismatch(target, target_key)


# ------------------------------------------------------------------------------ planning


@dataclass
class ContributionPlan:
    """What a pull request will add, and the counts its description reports."""

    target_key: str
    base_revision: str
    records_in: int
    pooled_in_contribution: int
    already_on_hub: int
    new_records: int
    new_workloads: int
    splits: dict[str, int]
    failed: dict[str, int]
    files_checked: int
    skipped: list[str]
    uploads: list[tuple[Path, str]] = field(default_factory=list)  # (local file, path in repo)

    def summary(self) -> str:
        if not self.new_records:
            return (
                f"Nothing to contribute: all {self.records_in} record(s) for {self.target_key} "
                f"are already in the Hub dataset (main at {self.base_revision[:12]})."
            )
        return (
            f"{self.new_records} new record(s) for {self.target_key} in {len(self.uploads)} "
            f"new file(s); {self.already_on_hub} already on the Hub were left out."
        )

    def description(self) -> str:
        """The pull request's description: counts and the validator's findings."""
        lines = [
            f"Contribution of tuning records for target `{self.target_key}` "
            f"(opened with tunezoo; base: main at `{self.base_revision}`).",
            "",
            "| | count |",
            "|---|---|",
            f"| records in the contribution | {self.records_in} |",
            f"| duplicates inside it (run times pooled) | {self.pooled_in_contribution} |",
            f"| already in the Hub dataset (left out) | {self.already_on_hub} |",
            f"| **new records** | **{self.new_records}** |",
            f"| workloads of the new records | {self.new_workloads} |",
        ]
        lines += [f"| new records in `{s}` | {self.splits.get(s, 0)} |" for s in SPLITS]
        lines += [
            "",
            "Validator findings:",
            f"- schema v{SCHEMA_VERSION}: no problems in {self.files_checked} file(s)",
            f"- every record is for target `{self.target_key}`",
        ]
        failed = ", ".join(f"{k}: {v}" for k, v in sorted(self.failed.items()))
        lines.append(f"- failed measurements kept as records: {failed or 'none'}")
        if self.skipped:
            lines.append(f"- not uploaded (refused rows of the import): {', '.join(self.skipped)}")
        lines += ["", "New files (no existing file is changed):"]
        lines += [f"- `{path}`" for _, path in self.uploads]
        return "\n".join(lines) + "\n"


def plan_contribution(
    checked: CheckedContribution,
    target_key: str,
    existing_ids: set[str],
    out_dir: str | Path,
    *,
    base_revision: str,
    contributor: str | None = None,
) -> ContributionPlan:
    """Drop the records the Hub has, pool duplicates, write the rest as new shards."""
    by_id: dict[str, list[dict]] = {}
    for row in checked.records.to_pylist():
        by_id.setdefault(row["record_id"], []).append(row)
    new_rows = []
    for rid, rows in by_id.items():
        if rid in existing_ids:
            continue
        row = merge_record_rows(rows)
        if contributor and not row.get("contributor"):
            row["contributor"] = contributor
        new_rows.append(row)
    on_hub = sum(1 for rid in by_id if rid in existing_ids)
    wanted = {r["workload_id"] for r in new_rows}
    workloads = checked.workloads.filter(
        pa.array([w in wanted for w in checked.workloads.column("workload_id").to_pylist()])
    )
    uploads: list[tuple[Path, str]] = []
    if new_rows:
        out = Path(out_dir)
        table = pa.Table.from_pylist(new_rows, schema=RECORD_SCHEMA)
        for f in write_shards(out, workloads, table):
            uploads.append((f, f"{target_key}/{f.relative_to(out).as_posix()}"))
    return ContributionPlan(
        target_key=target_key,
        base_revision=base_revision,
        records_in=checked.records.num_rows,
        pooled_in_contribution=checked.records.num_rows - len(by_id),
        already_on_hub=on_hub,
        new_records=len(new_rows),
        new_workloads=workloads.num_rows,
        splits=dict(Counter(split_of(r["workload_id"]) for r in new_rows)),
        failed=dict(Counter(r["error_kind"] for r in new_rows if r["error_kind"])),
        files_checked=len(checked.files),
        skipped=[str(p) for p in checked.skipped],
        uploads=uploads,
    )


def import_if_database(source: str | Path, target_key: str, out_dir: Path, **kwargs) -> Path:
    """A MetaSchedule work_dir (any TVM era, JSON or SQLite) is converted to shards first
    (needs TVM), through the same importer as ``tunezoo records import``; shards pass as is."""
    src = Path(source)
    names = ("database_tuning_record.json", "database_tuning_record.sqlite")
    if src.is_dir() and any((src / n).exists() for n in names):
        from tunezoo.importer import import_any  # noqa: PLC0415 - imports TVM

        import_any(src, out_dir, target_key=target_key, **kwargs)
        return out_dir
    return src


__all__ = [
    "CheckedContribution",
    "ContributionError",
    "ContributionPlan",
    "check_contribution",
    "check_file",
    "plan_contribution",
    "sniff",
]
