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
    assert import_any(copy, tmp_path / "out2", target_key="llvm-znver4").reports
