"""Upgrade every database in the shared external-dbs folder and report per database.

Prints a table (records, upgraded, set aside, top reasons) and writes the full reports,
with every set-aside record's file, line and reason, to scripts/results/upgrade_report.json.

    taskset -c 0 python scripts/upgrade_report.py [--root DIR] [--out DIR] [--max-records N]

The upgraded databases go to --out (default: a temporary folder, removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = Path(os.environ.get("TUNEZOO_EXTERNAL_DBS", REPO.parent / "shared" / "external-dbs"))
RESULTS = REPO / "scripts" / "results" / "upgrade_report.json"
RECORD_FILES = ("database_tuning_record.json", "database_tuning_record.sqlite")


def find_databases(root: Path) -> list[Path]:
    """Every directory under ``root`` holding a tuning-record file, sorted."""
    found = {p.parent for name in RECORD_FILES for p in root.rglob(name)}
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--out", type=Path, default=None, help="keep upgraded databases here")
    parser.add_argument("--max-records", type=int, default=None)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"{args.root}: no such folder (set TUNEZOO_EXTERNAL_DBS)", file=sys.stderr)
        return 2

    from tunezoo.upgrade import RecordChecker, upgrade_database  # noqa: PLC0415

    checker = RecordChecker()
    reports = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tunezoo-upgrade-") as tmp:
        out_root = args.out or Path(tmp)
        for db in find_databases(args.root):
            rel = db.relative_to(args.root).as_posix()
            report = upgrade_database(
                db,
                out_root / rel,
                max_records=args.max_records,
                overwrite=True,
                checker=checker,
            )
            reports.append((rel, report))
            print(
                f"  {rel}: {report.records_upgraded}/{report.records_total} "
                f"({report.elapsed_s:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    elapsed = time.monotonic() - start
    if not reports:
        raise SystemExit(
            f"{args.root}: no MetaSchedule database below it (folders holding "
            "database_workload.json / database_tuning_record.json or their .sqlite variant)"
        )

    header = ("database", "fmt", "era", "TVM", "records", "upgraded", "set aside", "top reasons")
    rows = []
    for rel, r in reports:
        reasons = "; ".join(f"{k} ({n})" for k, n in r.top_reasons(3)) or "-"
        rows.append(
            (
                rel,
                r.input_format or "-",
                r.era or "-",
                r.tvm_version or "-",
                str(r.records_total),
                str(r.records_upgraded),
                str(len(r.rejected)),
                reasons,
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header[:-1])]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + " | top reasons"
    print(line)
    print("-" * len(line))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + " | " + row[-1])

    with_wl = [r for _, r in reports if r.missing is None]
    total_with = sum(r.records_total for r in with_wl)
    ok_with = sum(r.records_upgraded for r in with_wl)
    records_only = sum(r.records_total for _, r in reports if r.missing is not None)
    share = ok_with / total_with if total_with else 0.0
    print(
        f"\nrecords with workloads: {ok_with}/{total_with} upgraded ({share:.1%}); "
        f"records-only (no workload file): {records_only}; {elapsed:.0f} s"
    )
    summary = {
        "root": str(args.root),
        "records_with_workloads": total_with,
        "upgraded": ok_with,
        "upgraded_share": share,
        "records_only": records_only,
        "elapsed_s": round(elapsed, 1),
        "databases": {rel: r.to_dict() for rel, r in reports},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
