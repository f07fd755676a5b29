"""`tunezoo records import` on databases of any era: upgrade, split by target, provenance."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tunezoo.cli import main as cli
from tunezoo.importer import import_any, needs_upgrade
from tunezoo.records import read_records, read_workloads, validate
from tunezoo.targets import detect_target

EXTERNAL = Path(
    os.environ.get(
        "TUNEZOO_EXTERNAL_DBS", Path(__file__).resolve().parents[2] / "shared" / "external-dbs"
    )
)


def _external(rel: str) -> Path:
    if not EXTERNAL.is_dir():
        pytest.skip(f"{EXTERNAL} is absent (set TUNEZOO_EXTERNAL_DBS to the external-dbs folder)")
    return EXTERNAL / rel


def test_old_metal_database_imports_with_provenance(tmp_path, capsys):
    src = _external("mlc-ai__web-llm/log_db")
    assert needs_upgrade(src)
    assert cli(["records", "import", str(src), "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["upgraded_from_older_tvm"] is True
    (key,) = summary["targets"]
    assert key.startswith("metal")
    out = tmp_path / key
    assert validate(out) == []
    records = read_records(out).to_pylist()
    assert len(records) == summary["targets"][key]["records"] == 19
    first = records[0]
    assert first["source"].startswith("github:mlc-ai/web-llm@89bbaa4c")
    assert first["license"] == "Apache-2.0"
    assert first["tvm_version"].startswith("0.12")
    assert json.loads(first["target"])["kind"] == "metal"
    workloads = read_workloads(out).to_pylist()
    assert all(w["source_hash"] and w["source_hash"] != w["workload_id"] for w in workloads)


def test_records_only_folder_says_what_is_missing(tmp_path):
    src = _external("mlc-ai__web-stable-diffusion/log_db")
    assert cli(["records", "import", str(src), "--out", str(tmp_path)]) == 2
    with pytest.raises(Exception, match="database_workload.json is missing"):
        import_any(src, tmp_path)


def test_current_database_key_is_derived_from_its_target(tuned_db, tmp_path):
    assert not needs_upgrade(tuned_db)
    result = import_any(tuned_db, tmp_path / "out")
    # tuned for this machine's CPU (-mcpu of the host), so its key is this machine's
    assert list(result.reports) == [detect_target(prefer_gpu=False)]
    assert result.upgraded is False
    copy = tmp_path / "copy"
    shutil.copytree(tuned_db, copy)
    # a local import may file a CPU's records under the key its user names
    assert import_any(copy, tmp_path / "out3", target_key="llvm-znver4").reports
    # a key more specific than the target dict (the machine's own name) is honoured
    named = import_any(copy, tmp_path / "out2", target_key="llvm-lab-box-7")
    assert named.reports["llvm-lab-box-7"].records == result.reports[detect_target()].records


def test_records_are_not_filed_under_another_kind_of_hardware(tuned_db, tmp_path, capsys):
    """--target names where records go, but CPU records filed under a GPU key would teach
    that target's predictor the wrong hardware: each is refused, named."""
    out = tmp_path / "out"
    code = cli(["records", "import", str(tuned_db), "--out", str(out), "--target", "cuda-a100"])
    assert code == 1
    err = capsys.readouterr().err
    assert "nothing imported" in err
    (rejected,) = (out / "rejected").glob("*.jsonl")
    rows = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert rows and all(r["field"] == "target" for r in rows)
    assert "its target is llvm" in rows[0]["reason"] and "without --target" in rows[0]["reason"]
    assert not list(out.glob("records/*.parquet"))


def test_device_is_refused_for_a_database_of_two_kinds_of_hardware(tmp_path):
    """The vicuna database holds Metal and OpenCL records: one --device cannot name both,
    and nothing is written when it is refused."""
    from tunezoo.convert import DatabaseFormatError  # noqa: PLC0415

    out = tmp_path / "out"
    src = _external("mlc-ai__mlc-llm/log_db/vicuna-v1-7b")
    with pytest.raises(DatabaseFormatError, match=r"names one device.*metal: \d+, opencl: \d+"):
        import_any(src, out, device="m2-max")
    assert not out.exists() or not any(out.rglob("*.parquet"))
    result = import_any(src, out)  # without it, each record's key comes from its target
    assert sorted(k.split("-")[0] for k in result.reports) == ["metal", "opencl"]


def test_target_and_device_together_are_refused_in_one_line(tmp_path, capsys):
    src = _external("mlc-ai__mlc-llm/log_db/vicuna-v1-7b")
    args = ["records", "import", str(src), "--out", str(tmp_path / "out")]
    assert cli([*args, "--target", "metal", "--device", "m2-max"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunezoo: error: --target files every record") and "not both" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="not both"):
        import_any(src, tmp_path / "out", target_key="metal", device="m2-max")


def test_a_corrupt_first_workload_line_of_an_old_database_costs_that_line_only(tmp_path):
    """The era is told from the first workload line that can be read: one bad line must
    not send a TVM 0.12 database down the current-format path, where every record fails."""
    db = tmp_path / "db"
    shutil.copytree(_external("mlc-ai__web-llm/log_db"), db)
    workloads = db / "database_workload.json"
    lines = workloads.read_text().splitlines()
    lines[0] = lines[0][: len(lines[0]) // 2]  # truncated mid-line
    workloads.write_text("\n".join(lines) + "\n")
    assert needs_upgrade(db)
    result = import_any(db, tmp_path / "out")
    assert result.upgraded and sum(r.records for r in result.reports.values()) >= 15


def test_bad_first_lines_of_a_current_database_cost_those_lines_only(tuned_db, tmp_path, capsys):
    """A bad byte in the first workload line, a record of the wrong shape first: the key
    comes from the next readable record, each bad line is refused, and the CLI names the
    files that say why."""
    db = tmp_path / "db"
    db.mkdir()
    for name in ("database_workload.json", "database_tuning_record.json"):
        shutil.copy(tuned_db / name, db / name)
    workloads = db / "database_workload.json"
    workloads.write_bytes(b"\xff" + workloads.read_bytes())
    record_file = db / "database_tuning_record.json"
    record_file.write_text('[0, {"trace": 1}]\n' + record_file.read_text())
    out = tmp_path / "out"
    assert cli(["records", "import", str(db), "--out", str(out), "--no-check"]) == 0
    err = capsys.readouterr().err
    (rejected,) = (out / "rejected").glob("*.jsonl")
    assert f"reasons in {rejected}" in err
    rows = [json.loads(line) for line in rejected.read_text().splitlines()]
    refused = {(r["file"], r["line"]) for r in rows}
    assert ("database_tuning_record.json", 1) in refused
    assert ("database_workload.json", 1) in refused
    assert read_records(out).num_rows > 0


def test_a_file_that_is_not_sqlite_is_named(tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    for name in ("database_workload.sqlite", "database_tuning_record.sqlite"):
        (db / name).write_text("not a database")
    from tunezoo.convert import DatabaseFormatError  # noqa: PLC0415

    with pytest.raises(DatabaseFormatError, match="database_workload.sqlite: not a MetaSchedule"):
        import_any(db, tmp_path / "out")


def test_rows_refused_after_the_upgrade_name_the_users_own_line(tmp_path):
    """With --target, the upgraded records are imported from a temporary, filtered file;
    a refusal there (the OpenCL record of a Metal database) must still name the line of
    the file the user gave."""
    db = tmp_path / "vicuna"
    shutil.copytree(_external("mlc-ai__mlc-llm/log_db/vicuna-v1-7b"), db)
    records = db / "database_tuning_record.json"
    lines = records.read_text().splitlines()
    lines[0] = lines[1] = "not json"  # set aside by the upgrade: the rest move up
    records.write_text("\n".join(lines) + "\n")
    result = import_any(db, tmp_path / "out", target_key="metal")
    (report,) = result.reports.values()
    (refused,) = [r for r in report.rejected if r["field"] == "target"]
    assert refused["file"].endswith("database_tuning_record.json")
    assert refused["line"] == 14  # the OpenCL record, in the user's file
    assert "line 3's is metal" in refused["reason"]
