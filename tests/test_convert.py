"""MetaSchedule JSON database <-> Parquet: lossless round trip and every bad-input case.

The database comes from really tuning two tiny workloads on this CPU (see conftest.py),
with some builds failing on purpose, so failure records are part of the round trip.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tunezoo import records
from tunezoo.cli import main as cli
from tunezoo.convert import (
    RECORD_FILE,
    WORKLOAD_FILE,
    DatabaseFormatError,
    export_database,
    import_database,
)

pytestmark = pytest.mark.tvm_measure


def _ms_records(db_dir: Path) -> list[tuple[str, str, list[float]]]:
    from tvm.s_tir import meta_schedule as ms

    from tunezoo.workloads import workload_id

    db = ms.database.JSONDatabase(work_dir=str(db_dir))
    return sorted(
        (workload_id(r.workload.mod), str(r.trace), [float(v) for v in r.run_secs])
        for r in db.get_all_tuning_records()
    )


def _copy_db(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in (WORKLOAD_FILE, RECORD_FILE):
        shutil.copy(src / name, dst / name)
    return dst


def _record_lines(db: Path) -> list[str]:
    return (db / RECORD_FILE).read_text().splitlines()


def test_round_trip_is_lossless(tuned_db, imported_dataset, tmp_path):
    original = _ms_records(tuned_db)
    assert any(secs == [1e10] for _, _, secs in original), "fixture should include failures"
    summary = records.info(imported_dataset)
    assert summary["records"] == len(original)
    assert summary["failed"] == {"failed-in-database": sum(s == [1e10] for *_, s in original)}
    assert records.validate(imported_dataset) == []

    export_database(imported_dataset, tmp_path / "exported")
    assert _ms_records(tmp_path / "exported") == original


def test_exported_database_compiles_to_the_same_best_schedule(tuned_db, imported_dataset, tmp_path):
    from make_tuning_db import cpu_target, matmul
    from tvm.s_tir import meta_schedule as ms

    export_database(imported_dataset, tmp_path / "exported")
    target = cpu_target()
    before = ms.tir_integration.compile_tir(
        ms.database.JSONDatabase(work_dir=str(tuned_db)), matmul(), target
    )
    after = ms.tir_integration.compile_tir(
        ms.database.JSONDatabase(work_dir=str(tmp_path / "exported")), matmul(), target
    )
    assert before is not None and after is not None
    assert str(before.trace) == str(after.trace)


def test_cli_import_info_export(tuned_db, tmp_path, capsys):
    out = tmp_path / "ds"
    assert (
        cli(["records", "import", str(tuned_db), "--target", "llvm-znver4", "--out", str(out)]) == 0
    )
    assert cli(["records", "info", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n}\n", 1)[1])
    assert shown["records"] == len(_record_lines(tuned_db))
    assert cli(["records", "validate", str(out)]) == 0
    assert cli(["records", "export", str(out), "--out", str(tmp_path / "db")]) == 0
    assert (
        cli(["records", "import", str(tuned_db), "--target", "llvm-znver4", "--out", str(out)]) == 2
    ), "re-import must not overwrite without --force"


def _import_broken(tuned_db: Path, tmp_path: Path, mutate) -> tuple:
    db = _copy_db(tuned_db, tmp_path / "broken")
    lines = _record_lines(db)
    lines = mutate(lines)
    (db / RECORD_FILE).write_text("\n".join(lines) + "\n")
    report = import_database(db, tmp_path / "out", target_key="llvm-znver4")
    return report, len(_record_lines(tuned_db))


def _set_body(line: str, index: int, value) -> str:
    obj = json.loads(line)
    obj[1][index] = value
    return json.dumps(obj)


@pytest.mark.parametrize(
    ("case", "mutate", "field", "reason"),
    [
        ("truncated line", lambda ls: [ls[0][: len(ls[0]) // 2], *ls[1:]], None, "malformed"),
        (
            "nan run time",
            lambda ls: [_set_body(ls[0], 1, [float("nan")]), *ls[1:]],
            "run_secs",
            "finite",
        ),
        (
            "negative run time",
            lambda ls: [_set_body(ls[0], 1, [-0.5]), *ls[1:]],
            "run_secs",
            "positive",
        ),
        (
            "unknown field",
            lambda ls: [
                json.dumps([json.loads(ls[0])[0], json.loads(ls[0])[1] + [{"x": 1}]]),
                *ls[1:],
            ],
            "record",
            "5 fields",
        ),
        (
            "bad workload index",
            lambda ls: [json.dumps([99, json.loads(ls[0])[1]]), *ls[1:]],
            "workload_index",
            "99",
        ),
        (
            "mismatched target",
            lambda ls: [ls[0], _set_body(ls[1], 2, {"kind": "cuda"}), *ls[2:]],
            "target",
            "differs",
        ),
        (
            "stale trace",
            lambda ls: [ls[0].replace('["C","main"]', '["nope","main"]', 1), *ls[1:]],
            "trace",
            "does not apply",
        ),
    ],
)
def test_bad_lines_are_refused_and_the_rest_kept(tuned_db, tmp_path, case, mutate, field, reason):
    report, total = _import_broken(tuned_db, tmp_path, mutate)
    assert len(report.rejected) == 1, case
    rejected = report.rejected[0]
    assert rejected["file"] == RECORD_FILE
    assert rejected["line"] in (1, 2)
    assert rejected["field"] == field
    assert reason in rejected["reason"]
    assert report.records == total - 1
    side = [json.loads(ln) for ln in Path(report.rejected_file).read_text().splitlines()]
    assert side[0]["reason"] == rejected["reason"]
    assert records.validate(tmp_path / "out") == []


def test_records_without_workload_file_get_a_clear_error(tuned_db, tmp_path):
    db = tmp_path / "only-records"
    db.mkdir()
    shutil.copy(tuned_db / RECORD_FILE, db / RECORD_FILE)
    with pytest.raises(DatabaseFormatError, match="no database_workload.json"):
        import_database(db, tmp_path / "out", target_key="llvm-znver4")


def test_corrupt_workload_line_costs_only_its_records(tuned_db, tmp_path):
    db = _copy_db(tuned_db, tmp_path / "db")
    wl_lines = (db / WORKLOAD_FILE).read_text().splitlines()
    wl_lines[1] = '["123", "bm90IGEgd29ya2xvYWQ="]'
    (db / WORKLOAD_FILE).write_text("\n".join(wl_lines) + "\n")
    report = import_database(db, tmp_path / "out", target_key="llvm-znver4")
    by_field = {r["field"] for r in report.rejected}
    assert by_field == {"workload", "workload_index"}
    assert report.records > 0
    assert report.records + len(report.rejected) - 1 == len(_record_lines(tuned_db))


def test_import_into_existing_dataset_keeps_previous_shards(tuned_db, imported_dataset, tmp_path):
    before = {p: p.read_bytes() for p in imported_dataset.rglob("*.parquet")}
    with pytest.raises(FileExistsError):
        import_database(tuned_db, imported_dataset, target_key="llvm-znver4")
    assert {p: p.read_bytes() for p in imported_dataset.rglob("*.parquet")} == before


def test_export_of_a_target_the_dataset_lacks_keeps_the_old_database(imported_dataset, tmp_path):
    out = tmp_path / "exported"
    export_database(imported_dataset, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DatabaseFormatError, match="no records for target 'metall'.*llvm-"):
        export_database(imported_dataset, out, force=True, target_key="metall")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing replaced
