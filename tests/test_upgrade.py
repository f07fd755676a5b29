"""Tests of the database upgrader on the real databases in the shared external-dbs folder.

They read the files in place (never copied into the repo); broken inputs are made here
from slices of them. Default tests sample a few records per database; the full run is
marked slow (``pytest -m slow``).
"""

from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path

import pytest

from tunezoo.sqlite_db import read_sqlite_records, read_sqlite_workloads
from tunezoo.target_keys import TargetKeyError, derive_target_key, validate_key
from tunezoo.upgrade import (
    ERAS,
    Graph,
    RecordChecker,
    detect_era,
    provenance_for,
    upgrade_database,
    upgrade_trace,
)
from tunezoo.upgrade.provenance import parse_readme

EXTERNAL = Path(
    os.environ.get(
        "TUNEZOO_EXTERNAL_DBS", Path(__file__).resolve().parents[2] / "shared" / "external-dbs"
    )
)
SAMPLE = 3  # records per database in the default run

WITH_WORKLOADS = [
    "yelite__mlc-llm/work",
    "mlc-ai__mlc-llm/log_db/vicuna-v1-7b",
    "mlc-ai__mlc-llm/log_db/RedPajama-INCITE-Chat-3B-v1",
    "mlc-ai__web-llm/log_db",
    "LeoBrasileo__TVM-RVV_optimized_operators/examples/tuning_logs",
    "mshr-h__metaschedule_sqlitedatabase/log-resnet18",
    "happyme531__RK3588-stable-diffusion-GPU/log_db_my_unet_softmax2",
]
RECORDS_ONLY = [
    "mlc-ai__web-stable-diffusion/log_db",
    "happyme531__RK3588-stable-diffusion-GPU/log_db_my_vae",
]


def _db(rel: str) -> Path:
    if not EXTERNAL.is_dir():
        pytest.skip(f"{EXTERNAL} is absent (set TUNEZOO_EXTERNAL_DBS to the external-dbs folder)")
    path = EXTERNAL / rel
    if not path.is_dir():
        pytest.skip(f"{path} is absent from the external-dbs folder")
    return path


def _require_slow(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("slow: run with -m slow")


@pytest.fixture(scope="module")
def checker() -> RecordChecker:
    """One checker for the module: targets and tune contexts are cached across tests."""
    return RecordChecker()


def _lines(path: Path, n: int | None = None) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        lines = [ln for ln in fh if ln.strip()]
    return lines if n is None else lines[:n]


def _graph(db: Path) -> dict:
    line = json.loads(_lines(db / "database_workload.json", 1)[0])
    return json.loads(base64.b64decode(line[1])[8:])


# --------------------------------------------------------------------------- real data


@pytest.mark.parametrize("rel", WITH_WORKLOADS)
def test_sample_upgrades_and_loads(rel: str, tmp_path: Path, checker: RecordChecker) -> None:
    src = _db(rel)
    report = upgrade_database(src, tmp_path / "out", max_records=SAMPLE, checker=checker)
    assert report.records_total == min(SAMPLE, report.records_total) > 0
    assert report.records_upgraded == report.records_total, report.rejected
    assert report.verified_load is True
    assert report.era in ERAS and report.era != "current"
    # provenance from the README table and the graph
    assert report.source and report.source.startswith("github:") and "@" in report.source
    assert report.license == "Apache-2.0"
    assert report.tvm_version and report.tvm_version[0].isdigit()
    assert len(report.record_target_keys) == report.records_upgraded
    for key in report.record_target_keys:
        validate_key(key)
    # the output is a current-format database whose hashes are the mapped ones
    out_lines = [json.loads(x) for x in _lines(tmp_path / "out" / "database_workload.json")]
    assert {h for h, _ in out_lines} <= set(report.hash_map.values())
    graph = json.loads(base64.b64decode(out_lines[0][1])[8:])
    assert detect_era(graph) == "current"
    records = [json.loads(x) for x in _lines(tmp_path / "out" / "database_tuning_record.json")]
    assert all(inst[0] != "GetBlock" for r in records for inst in r[1][0][0])


def test_hash_mapping_and_original_target_kept(tmp_path: Path, checker: RecordChecker) -> None:
    src = _db("yelite__mlc-llm/work")
    report = upgrade_database(src, tmp_path / "out", max_records=2, checker=checker)
    original = json.loads(_lines(src / "database_workload.json", 1)[0])[0]
    assert original in report.hash_map and report.hash_map[original] != original
    import tvm
    from tvm.s_tir import meta_schedule as ms

    line = json.loads(_lines(tmp_path / "out" / "database_workload.json", 1)[0])
    mod = tvm.ir.load_json(base64.b64decode(line[1])[8:].decode())
    assert str(ms.database.Workload(mod).as_json()[0]) == report.hash_map[original]
    first_in = json.loads(_lines(src / "database_tuning_record.json", 1)[0])
    first_out = json.loads(_lines(tmp_path / "out" / "database_tuning_record.json", 1)[0])
    assert first_out[1][2] == first_in[1][2]  # target dict unchanged
    assert first_out[1][1] == first_in[1][1]  # run times unchanged
    assert report.record_target_keys[0] == "cuda-sm86"


def test_device_name_gives_named_key(tmp_path: Path, checker: RecordChecker) -> None:
    src = _db("yelite__mlc-llm/work")
    report = upgrade_database(src, None, device="rtx3070", max_records=1, checker=checker)
    assert report.record_target_keys == ["cuda-rtx3070"]


def test_upgrading_twice_is_identity(tmp_path: Path, checker: RecordChecker) -> None:
    src = _db("mlc-ai__web-llm/log_db")
    first = upgrade_database(src, tmp_path / "a", max_records=2, checker=checker)
    second = upgrade_database(tmp_path / "a", tmp_path / "b", checker=checker, tvm_version="0.27")
    assert second.era == "current"
    assert second.records_upgraded == first.records_upgraded
    assert set(second.hash_map.values()) == set(second.hash_map)  # hashes unchanged


def test_sqlite_reader_matches_table_order() -> None:
    src = _db("mshr-h__metaschedule_sqlitedatabase/log-resnet18")
    workloads = list(read_sqlite_workloads(src))
    records = list(read_sqlite_records(src))
    assert len(workloads) == 30 and len(records) == 506
    assert all(r.error is None for r in records)
    index, (trace, run_secs, target, args_info) = records[0].value
    assert 0 <= index < len(workloads)
    assert trace[0][0][0] == "GetBlock" and isinstance(run_secs, list)
    assert target["mcpu"] == "core-avx2" and args_info[0][0] == "TENSOR"


@pytest.mark.parametrize("rel", RECORDS_ONLY)
def test_records_only_directory_is_reported(rel: str, tmp_path: Path) -> None:
    src = _db(rel)
    report = upgrade_database(src, tmp_path / "out")
    assert report.missing is not None and "database_workload.json is missing" in report.missing
    assert report.records_total > 0 and report.records_upgraded == 0
    assert len(report.rejected) == report.records_total  # every record accounted for
    assert {r.stage for r in report.rejected} == {"missing-workload"}
    assert not (tmp_path / "out").exists()


def test_provenance_from_readme() -> None:
    src = _db("mlc-ai__mlc-llm/log_db/RedPajama-INCITE-Chat-3B-v1")
    prov = provenance_for(src)
    assert prov.repo == "mlc-ai/mlc-llm"
    assert prov.commit == "9f71e2d3c96bfff26bb524c7fc6ef4454e2122f6"  # its own commit
    assert prov.source == (
        "github:mlc-ai/mlc-llm@9f71e2d3c96bfff26bb524c7fc6ef4454e2122f6:"
        "log_db/RedPajama-INCITE-Chat-3B-v1"
    )
    other = provenance_for(src.parent / "dolly-v2-3b")
    assert other.commit == "66135d63eddd35c5b02bad86415a48e5c116b894"
    explicit = provenance_for(src, repo="me/fork", commit="abc", license="MIT")
    assert explicit.source == "github:me/fork@abc" and explicit.license == "MIT"
    # another repository than the README lists: nothing of the listed one is mixed in
    fork = provenance_for(src, repo="me/fork")
    assert fork.source == "github:me/fork" and fork.license is None
    rows, lic = parse_readme((EXTERNAL / "README.md").read_text())
    assert lic == "Apache-2.0" and len(rows) >= 8


def test_eras_detected() -> None:
    legacy = _graph(_db("yelite__mlc-llm/work"))
    tir = _graph(_db("LeoBrasileo__TVM-RVV_optimized_operators/workdir"))
    assert detect_era(legacy) == "legacy"
    assert detect_era(tir) == "tir"
    assert Graph.from_json(json.dumps(legacy)).tvm_version == "0.13.dev0"
    assert Graph.from_json(json.dumps(tir)).tvm_version == "0.23.0"


# --------------------------------------------------------------------- hand-made breakage


def _partial_db(src: Path, dst: Path, records: list[str], *, workloads: bool = True) -> Path:
    dst.mkdir(parents=True)
    if workloads:
        (dst / "database_workload.json").write_text("".join(_lines(src / "database_workload.json")))
    (dst / "database_tuning_record.json").write_text("".join(records))
    return dst


def test_broken_records_are_set_aside_with_reasons(tmp_path: Path, checker: RecordChecker) -> None:
    src = _db("yelite__mlc-llm/work")
    good = _lines(src / "database_tuning_record.json", 1)[0]
    truncated = good[: len(good) // 2] + "\n"
    bad_block = json.loads(good)
    for inst in bad_block[1][0][0]:
        if inst[0] == "GetBlock":
            inst[2][0] = "no_such_block"
            break
    bad_index = json.loads(good)
    bad_index[0] = 999
    records = [good, truncated, json.dumps(bad_block) + "\n", json.dumps(bad_index) + "\n"]
    db = _partial_db(src, tmp_path / "db", records)
    report = upgrade_database(db, tmp_path / "out", checker=checker)
    assert report.records_total == 4 and report.records_upgraded == 1
    by_line = {r.line: r for r in report.rejected}
    assert by_line[2].stage == "read" and "not valid JSON" in by_line[2].reason
    assert by_line[3].stage in ("replay", "trace-parse")
    assert "no_such_block" in by_line[3].reason
    assert by_line[4].stage == "workload" and "out of range" in by_line[4].reason
    assert all(r.file.endswith("database_tuning_record.json") for r in report.rejected)
    assert report.top_reasons()  # counted by kind


def test_malformed_records_cost_their_line_not_the_upgrade(
    tmp_path: Path, checker: RecordChecker
) -> None:
    """A bad byte, a trace or target of the wrong shape, run times the importer would
    refuse: each is set aside with its line, and the good record still upgrades."""
    src = _db("yelite__mlc-llm/work")
    good = _lines(src / "database_tuning_record.json", 1)[0]
    record = json.loads(good)
    no_times = [record[0], [record[1][0], None, record[1][2], record[1][3]]]
    llvm = {"kind": "llvm", "mcpu": "znver4", "mattr": 5, "keys": ["cpu"]}
    odd_target = [record[0], [record[1][0], record[1][1], llvm, record[1][3]]]
    odd_trace = [record[0], [[[["Tensorize", [], {"intrin": "x"}, []]], []], *record[1][1:]]]
    odd = [json.dumps(r) + "\n" for r in (no_times, odd_target, odd_trace)]
    db = _partial_db(src, tmp_path / "db", [good, good, *odd])
    file = db / "database_tuning_record.json"
    lines = file.read_bytes().split(b"\n")
    lines[1] = b"\xff" + lines[1]  # not UTF-8
    file.write_bytes(b"\n".join(lines))
    report = upgrade_database(db, tmp_path / "out", checker=checker)
    assert report.records_total == 5 and report.records_upgraded == 1
    by_line = {r.line: r for r in report.rejected}
    assert "not UTF-8" in by_line[2].reason
    assert "run_secs" in by_line[3].reason
    assert by_line[4].stage == "target-key" and "malformed target" in by_line[4].reason
    assert by_line[5].stage == "trace-parse" and "malformed trace" in by_line[5].reason


def test_an_import_where_nothing_upgrades_lists_every_row(tmp_path: Path) -> None:
    from tunezoo.convert import DatabaseFormatError  # noqa: PLC0415
    from tunezoo.importer import import_any  # noqa: PLC0415

    src = _db("yelite__mlc-llm/work")
    record = json.loads(_lines(src / "database_tuning_record.json", 1)[0])
    record[1][1] = None  # no run times
    db = _partial_db(src, tmp_path / "db", [json.dumps(record) + "\n"])
    with pytest.raises(DatabaseFormatError, match="every row and why: .*upgrade-db.jsonl"):
        import_any(db, tmp_path / "out")
    (row,) = [json.loads(x) for x in (tmp_path / "out/rejected/upgrade-db.jsonl").open()]
    assert row["line"] == 1 and "run_secs" in row["reason"]


def test_broken_workload_rejects_its_records(tmp_path: Path, checker: RecordChecker) -> None:
    src = _db("mlc-ai__web-llm/log_db")
    db = tmp_path / "db"
    db.mkdir()
    h, b64 = json.loads(_lines(src / "database_workload.json", 1)[0])
    body = base64.b64decode(b64)[8:].replace(b'"tir.For"', b'"tir.Wibble"')
    broken = base64.b64encode(struct.pack("<Q", len(body)) + body).decode()
    (db / "database_workload.json").write_text(json.dumps([h, broken]) + "\n")
    record = json.loads(_lines(src / "database_tuning_record.json", 1)[0])
    record[0] = 0
    (db / "database_tuning_record.json").write_text(json.dumps(record) + "\n")
    report = upgrade_database(db, None, checker=checker)
    assert report.records_upgraded == 0
    assert report.rejected_workloads and "tir.Wibble" in report.rejected_workloads[0].reason
    assert report.rejected[0].stage == "workload" and "line 1" in report.rejected[0].reason


def test_records_only_made_by_hand(tmp_path: Path) -> None:
    src = _db("yelite__mlc-llm/work")
    db = _partial_db(
        src, tmp_path / "db", _lines(src / "database_tuning_record.json", 3), workloads=False
    )
    report = upgrade_database(db, tmp_path / "out")
    assert report.records_total == 3 and "database_workload.json is missing" in report.missing
    assert [r.line for r in report.rejected] == [1, 2, 3]


def test_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="database_workload.json"):
        upgrade_database(tmp_path, None)


def test_existing_output_is_not_overwritten(tmp_path: Path, checker: RecordChecker) -> None:
    src = _db("mlc-ai__web-llm/log_db")
    out = tmp_path / "out"
    out.mkdir()
    (out / "database_workload.json").write_text("")
    with pytest.raises(FileExistsError, match="overwrite"):
        upgrade_database(src, out, max_records=1, checker=checker)


# ----------------------------------------------------------------------------- units


def test_trace_rewrite() -> None:
    trace = [
        [["GetBlock", [], ["C", "main"], ["b0"]], ["Split", ["l1", "None", 4], [1], ["a"]]],
        [],
    ]
    new, changes = upgrade_trace(trace)
    assert new[0][0][0] == "GetSBlock" and new[0][1][2] == [1, 0]
    assert trace[0][0][0] == "GetBlock"  # input untouched
    assert changes == ["GetBlock->GetSBlock", "Split+attrs[0]"]
    current = [[["Split", ["l1", "None", 4], [1, 0], ["a"]]], []]
    assert upgrade_trace(current) == (current, [])


@pytest.mark.parametrize(
    ("target", "device", "key"),
    [
        ({"kind": "cuda", "arch": "sm_86", "tag": ""}, None, "cuda-sm86"),
        ({"kind": "cuda", "arch": "sm_86"}, "rtx3070", "cuda-rtx3070"),
        ({"kind": "cuda", "arch": "sm_86"}, "GeForce RTX 3070", "cuda-rtx3070"),
        ({"kind": "cuda", "tag": "nvidia/nvidia-a100"}, None, "cuda-a100"),
        ({"kind": "metal", "tag": "", "host": {"kind": "llvm"}}, None, "metal"),
        ({"kind": "metal", "tag": "apple/m1-gpu"}, None, "metal-apple-m1"),
        ({"kind": "metal"}, "Apple M2", "metal-apple-m2"),
        (
            {"kind": "opencl", "device": "mali", "keys": ["mali", "opencl", "gpu"]},
            None,
            "opencl-mali",
        ),
        ({"kind": "opencl", "host": {"mtriple": "arm64-linux-android"}}, None, "opencl"),
        ({"kind": "llvm", "mcpu": "core-avx2", "num-cores": 4}, None, "llvm-core-avx2"),
        (
            {
                "kind": "llvm",
                "mtriple": "riscv64-linux-gnu",
                "mcpu": "generic-rv64",
                "mattr": ["+64bit", "+m", "+v"],
            },
            None,
            "llvm-riscv64-rvv",
        ),
        (
            {"kind": "llvm", "mtriple": "riscv64-unknown-linux-gnu", "mattr": ["+m"]},
            None,
            "llvm-riscv64",
        ),
        ({"kind": "llvm", "mtriple": "aarch64-linux-gnu"}, None, "llvm-aarch64"),
    ],
)
def test_target_keys(target: dict, device: str | None, key: str) -> None:
    assert derive_target_key(target, device=device) == key


def test_target_key_errors() -> None:
    with pytest.raises(TargetKeyError, match="kind"):
        derive_target_key({"arch": "sm_86"})
    with pytest.raises(TargetKeyError, match="no letters"):
        derive_target_key({"kind": "cuda"}, device="!!!")
    with pytest.raises(TargetKeyError, match="invalid"):
        validate_key("Cuda_A100")


# ------------------------------------------------------------------------------ slow


@pytest.mark.slow
def test_tensorize_traces_replay(
    request: pytest.FixtureRequest, tmp_path: Path, checker: RecordChecker
) -> None:
    """RISC-V traces with Tensorize parse and replay once the RVV intrinsics are registered
    (this imports all tensor intrinsics once). TVM 0.27's feature extractor then fails on
    the scalable vectors of those intrinsics: the records are set aside saying exactly so.
    """
    _require_slow(request)
    src = _db("LeoBrasileo__TVM-RVV_optimized_operators/workdir")
    report = upgrade_database(src, None, max_records=2, checker=checker)
    assert report.records_total == 2
    for rejected in report.rejected:
        assert rejected.stage == "features", rejected
        assert "scalable vectors" in rejected.reason


@pytest.mark.slow
def test_full_run_meets_the_bar(request: pytest.FixtureRequest, checker: RecordChecker) -> None:
    """At least 90% of the records that have workloads upgrade and pass every check."""
    _require_slow(request)
    if not EXTERNAL.is_dir():
        pytest.skip(f"{EXTERNAL} is absent")
    total = upgraded = 0
    dbs = sorted({p.parent for p in EXTERNAL.rglob("database_workload.*")})
    assert len(dbs) >= 12
    for db in dbs:
        report = upgrade_database(db, None, checker=checker)
        total += report.records_total
        upgraded += report.records_upgraded
        assert report.records_total == report.records_upgraded + len(report.rejected)
    assert upgraded >= 0.9 * total
