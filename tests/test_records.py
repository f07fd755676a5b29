"""The Parquet layer: shards, schema versions, validation, merge and third-party readers."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from script_loader import loaded_script
from synthetic_records import make_rows, tables, workload_rows

from tunezoo import records
from tunezoo.schema import META_VERSION_KEY, RECORD_SCHEMA, WORKLOAD_SCHEMA
from tunezoo.splits import split_of

IDS = [str(1000 + i) for i in range(12)]


@pytest.fixture
def dataset(tmp_path):
    wl, rec = tables(IDS)
    records.write_shards(tmp_path / "ds", wl, rec)
    return tmp_path / "ds"


def test_shards_are_split_by_workload_and_zstd(dataset):
    files = sorted((dataset / "records").glob("*.parquet"))
    assert files, "no record shards written"
    for f in files:
        split = f.name.split("-")[0]
        table = pq.read_table(f)
        assert {split_of(w) for w in table.column("workload_id").to_pylist()} == {split}
        meta = pq.ParquetFile(f).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert pq.read_schema(f).metadata[META_VERSION_KEY] == b"1"
    assert records.read_records(dataset).num_rows == len(IDS) * 5


def test_split_is_deterministic_and_roughly_80_10_10():
    ids = [str(i * 7919) for i in range(5000)]
    counts = {s: sum(split_of(i) == s for i in ids) for s in ("train", "validation", "test")}
    assert [split_of(i) for i in ids[:50]] == [split_of(i) for i in ids[:50]]
    assert 0.77 < counts["train"] / 5000 < 0.83
    assert 0.08 < counts["validation"] / 5000 < 0.12


def test_same_files_read_in_pyarrow_datasets_and_duckdb(dataset):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is a dev dependency")
    import datasets

    glob = str(dataset / "records" / "*.parquet")
    con = duckdb.connect()
    n_duck = con.execute(f"select count(*) from read_parquet('{glob}')").fetchall()[0][0]
    best = con.execute(
        f"select workload_id, min(latency_s) from read_parquet('{glob}') group by 1"
    ).fetchall()
    hf = datasets.load_dataset(
        "parquet", data_files={"train": glob}, split="train", cache_dir=str(dataset / ".hf-cache")
    )
    assert n_duck == len(hf) == len(IDS) * 5
    assert len(best) == len(IDS)
    assert set(hf.column_names) == set(RECORD_SCHEMA.names)
    assert hf[0]["run_secs"] and isinstance(hf[0]["run_secs"][0], float)


def test_existing_shards_are_never_overwritten_without_force(dataset):
    wl, rec = tables(IDS)
    with pytest.raises(FileExistsError, match="--force"):
        records.write_shards(dataset, wl, rec)
    assert records.read_records(dataset).num_rows == len(IDS) * 5


def test_failed_write_leaves_previous_shard_intact(dataset, monkeypatch):
    shard = sorted((dataset / "records").glob("*.parquet"))[0]
    before = shard.read_bytes()

    def broken_write(table, where, **kwargs):
        with open(where, "wb") as fh:  # a partial file, then the "kill"
            fh.write(b"PAR1 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(records.pq, "write_table", broken_write)
    wl, rec = tables(IDS)
    with pytest.raises(KeyboardInterrupt):
        records.write_shards(dataset, wl, rec, shard=shard.stem.split("-", 1)[1], force=True)
    assert shard.read_bytes() == before
    assert not [p for p in (dataset / "records").iterdir() if p.name.endswith(".tmp")]


def test_unknown_schema_version_is_refused_with_the_file_name(tmp_path):
    _, rec = tables(IDS[:1])
    future = rec.replace_schema_metadata(
        {b"tunezoo.schema_version": b"99", b"tunezoo.table": b"records"}
    )
    (tmp_path / "records").mkdir()
    path = tmp_path / "records" / "train-x.parquet"
    pq.write_table(future, path)
    with pytest.raises(records.RecordsError, match=r"train-x\.parquet.*version '99'"):
        records.read_records(tmp_path)


def test_unknown_fields_are_refused(tmp_path):
    _, rec = tables(IDS[:1])
    extra = rec.append_column("gpu_temperature", pa.array([1.0] * rec.num_rows))
    (tmp_path / "records").mkdir()
    pq.write_table(
        extra.replace_schema_metadata(RECORD_SCHEMA.metadata),
        tmp_path / "records" / "train-x.parquet",
    )
    with pytest.raises(records.RecordsError, match="unknown fields.*gpu_temperature"):
        records.read_records(tmp_path)
    problems = records.validate(tmp_path)
    assert any("gpu_temperature" in p.message for p in problems)


def test_missing_fields_are_refused(tmp_path):
    """pyarrow would read a missing column as nulls: a record without run times."""
    _, rec = tables(IDS[:1])
    (tmp_path / "records").mkdir()
    pq.write_table(
        rec.drop_columns(["run_secs"]).replace_schema_metadata(RECORD_SCHEMA.metadata),
        tmp_path / "records" / "train-x.parquet",
    )
    with pytest.raises(records.RecordsError, match=r"train-x\.parquet.*\['run_secs'\]"):
        records.read_records(tmp_path)
    assert any("run_secs" in p.message for p in records.validate(tmp_path))


def test_a_damaged_shard_is_named_by_read_and_validate(dataset):
    """A sound footer over damaged pages: the schema check passes, reading does not."""
    shard = sorted((dataset / "records").glob("*.parquet"))[0]
    meta = pq.ParquetFile(shard).metadata.row_group(0).column(0)
    data = bytearray(shard.read_bytes())
    start = meta.data_page_offset
    for i in range(start, start + meta.total_compressed_size):
        data[i] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(records.RecordsError, match=shard.name):
        records.read_records(dataset)
    problems = records.validate(dataset)
    assert [p.file for p in problems if "unreadable" in p.message] == [str(shard)]


def test_rejected_rows_of_two_imports_into_one_folder_are_both_kept(tmp_path):
    first = records.write_rejected(tmp_path, "import-x", [{"line": 1, "reason": "a"}])
    second = records.write_rejected(tmp_path, "import-x", [{"line": 7, "reason": "b"}])
    assert first != second and first.name == "import-x.jsonl"
    assert json.loads(first.read_text())["reason"] == "a"
    assert json.loads(second.read_text())["reason"] == "b"
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == [
        "import-x-2.jsonl",
        "import-x.jsonl",
    ]  # and no temporary file left behind


def test_validate_reports_every_problem_with_row_and_field(tmp_path):
    rows = make_rows(IDS[0], 5)
    rows[1]["run_secs"] = [float("nan"), 1e-3]
    rows[2]["run_secs"] = [-1e-3]
    rows[3]["trace"] = '[["GetSBlock"'  # truncated JSON
    rows[4]["error_kind"] = "exploded"
    wl = pa.Table.from_pylist(workload_rows([IDS[0]]), schema=WORKLOAD_SCHEMA)
    rec = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    records.write_shards(tmp_path, wl, rec)
    found = {(p.row, p.field) for p in records.validate(tmp_path)}
    assert (1, "run_secs") in found
    assert (2, "run_secs") in found
    assert (3, "trace") in found
    assert (4, "error_kind") in found
    assert (0, "run_secs") not in found
    text = [str(p) for p in records.validate(tmp_path)]
    assert any("row 1, field 'run_secs'" in t and "nan" in t for t in text)


def test_validate_flags_records_without_workload(tmp_path):
    wl, rec = tables(IDS[:2])
    records.write_shards(tmp_path, wl.slice(0, 1), rec)
    problems = records.validate(tmp_path)
    assert problems and all(p.field == "workload_id" for p in problems)
    assert len(problems) == 5


def test_merge_pools_run_times_and_drops_exact_duplicates(tmp_path, dataset):
    wl, rec = tables(IDS[:1])
    rows = rec.to_pylist()
    remeasured = [
        dict(
            r, run_secs=[v * 2 for v in r["run_secs"]], created_at=r["created_at"].replace(hour=13)
        )
        for r in rows
    ]
    records.write_shards(
        tmp_path / "again", wl, pa.Table.from_pylist(remeasured, schema=RECORD_SCHEMA)
    )
    result = records.merge([dataset, dataset, tmp_path / "again"], tmp_path / "merged")
    merged = records.read_records(tmp_path / "merged")
    assert result["output_records"] == len(IDS) * 5
    assert merged.num_rows == len(set(merged.column("record_id").to_pylist()))
    by_id = {r["record_id"]: r for r in merged.to_pylist()}
    for original, again in zip(rows, remeasured, strict=True):
        pooled = by_id[original["record_id"]]["run_secs"]
        assert sorted(pooled) == sorted(original["run_secs"] + again["run_secs"])
        expected = sum(pooled) / len(pooled)
        assert math.isclose(by_id[original["record_id"]]["latency_s"], expected)


def test_imported_rows_are_one_measurement_whenever_they_were_imported(tmp_path):
    """An import stamps rows with the import time: importing a grown work_dir again must
    not count its old records twice when the datasets are merged."""
    wl, rec = tables(IDS[:1])
    imported = [dict(r, sampling="imported") for r in rec.to_pylist()]
    later = [dict(r, created_at=r["created_at"].replace(hour=23)) for r in imported]
    for name, rows in (("first", imported), ("again", later)):
        records.write_shards(tmp_path / name, wl, pa.Table.from_pylist(rows, schema=RECORD_SCHEMA))
    records.merge([tmp_path / "first", tmp_path / "again"], tmp_path / "merged")
    merged = {r["record_id"]: r for r in records.read_records(tmp_path / "merged").to_pylist()}
    for row in imported:
        assert merged[row["record_id"]]["run_secs"] == row["run_secs"]


def test_info_counts(dataset):
    summary = records.info(dataset)
    assert summary["records"] == len(IDS) * 5
    assert summary["workloads"] == len(IDS)
    assert summary["models"] == {"testnet": len(IDS) * 5}
    assert sum(summary["splits"].values()) == len(IDS) * 5
    assert summary["duplicate_record_ids"] == 0
    depth = summary["workloads_by_candidates"]  # 5 distinct candidates each: none is rich
    assert sum(sum(c.values()) for c in depth.values()) == len(IDS)
    assert all(set(c) <= {"partial"} for c in depth.values())


def test_candidate_depth_separates_rich_partial_and_single_schedule_workloads(dataset):
    table = records.read_records(dataset)
    rows = table.to_pylist()
    single, failing = IDS[0], IDS[1]
    marked = False
    for row in rows:
        if row["workload_id"] == single:  # a design space of one schedule, sampled 5 times
            row["record_id"] = f"only-{single}"
        if row["workload_id"] == failing and not marked:
            row["error_kind"], marked = "timeout", True  # a failure is no candidate to rank
    changed = pa.Table.from_pylist(rows, schema=table.schema)

    def kind(wid: str) -> str:
        alone = changed.filter(pc.field("workload_id") == wid)
        (found,) = [
            k for k, n in records.candidate_depth(alone, rich=5)[split_of(wid)].items() if n
        ]
        return found

    assert kind(single) == "single_schedule"
    assert kind(failing) == "partial"  # 4 successful distinct candidates of 5
    assert all(kind(w) == "rich" for w in IDS[2:])
    depth = records.candidate_depth(changed, rich=5)
    assert sum(sum(c.values()) for c in depth.values()) == len(IDS)


def test_record_id_ignores_json_spelling():
    a = records.make_record_id("1", "[[1, 2], []]", '{"kind": "llvm", "mcpu": "znver4"}')
    b = records.make_record_id("1", "[[1,2],[]]", '{"mcpu":"znver4","kind":"llvm"}')
    c = records.make_record_id("2", "[[1,2],[]]", '{"mcpu":"znver4","kind":"llvm"}')
    assert a == b != c
    assert json.loads(records.canonical_json('{"b":1,"a":2}')) == {"a": 2, "b": 1}


@pytest.fixture(scope="module")
def datasheet():
    with loaded_script("datasheet") as module:
        yield module


def test_datasheet_says_why_a_workload_has_few_schedules(datasheet, tmp_path):
    """The datasheet tells a design space that ran out from lost candidates, from the data."""
    from make_records import tables

    wl, rec = tables(per_workload=2)  # two distinct successful schedules: all there is
    records.write_shards(tmp_path / "exhausted", wl, rec)
    assert {w["why"] for w in datasheet.partial_workloads(tmp_path / "exhausted")} == {
        "design space fully measured (sampling without replacement ran out)"
    }
    records.write_shards(tmp_path / "repeats", wl, rec)
    records.write_shards(tmp_path / "repeats", wl, rec.slice(0, 1), shard="again")
    by_id = {w["workload_id"]: w for w in datasheet.partial_workloads(tmp_path / "repeats")}
    repeated = by_id[rec["workload_id"][0].as_py()]
    assert (repeated["records"], repeated["distinct"]) == (3, 2)
    assert repeated["why"] == "1 repeated in the random phase (sampled with replacement)"
    wl4, rec4 = tables(per_workload=4)  # the first candidate of each workload failed to build
    records.write_shards(tmp_path / "failed", wl4, rec4)
    partial = datasheet.partial_workloads(tmp_path / "failed")
    assert partial and all(w["distinct"] == 3 and w["why"] == "failed: 1 build" for w in partial)


def test_the_committed_sample_is_rebuilt_from_the_grown_dataset(tmp_path, monkeypatch):
    """scripts/make_sample.py --until gives back the sample in the package, record for
    record, though the dataset has grown since."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    argv = ["make_sample.py", "--dataset", str(root / "data/llvm-znver4"), "--out",
            str(tmp_path / "sample"), "--until", "2026-11-24T12:54:00+00:00"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with loaded_script("make_sample") as script:
        script.main()
    ids = records.read_records(tmp_path / "sample").column("record_id").to_pylist()
    committed = records.read_records(root / "tunezoo/samples/llvm-znver4")
    assert sorted(ids) == sorted(committed.column("record_id").to_pylist())
