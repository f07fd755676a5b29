"""tunezoo.contribution without a Hub: what may leave the machine, and what a PR would add."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from make_records import make_dataset, tables

from tunezoo import contribution as contrib
from tunezoo.records import write_shards

SAFETENSORS_HEADER = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
GOOD_SAFETENSORS = len(SAFETENSORS_HEADER).to_bytes(8, "little") + SAFETENSORS_HEADER.encode()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("model.pkl", b"\x80\x04\x95", "'.pkl' files are not accepted"),
        ("run.sh", b"#!/bin/sh\n", "'.sh' files are not accepted"),
        ("info.json", b"\x80\x04\x95{}", "the content is a Python pickle"),
        ("notes.md", b"\x7fELF\x02\x01", "the content is an ELF executable"),
        ("data.parquet", b"PK\x03\x04zipped", "not a Parquet file (a zip archive"),
        ("data.parquet", b"PAR1 truncated", "not a Parquet file (no PAR1 magic"),
        ("info.json", b"{not json", "not valid JSON"),
        ("notes.md", b"text\x00with NUL", "contains NUL bytes"),
        ("notes.md", b"\xff\xfe latin", "not UTF-8 text"),
        ("model.safetensors", b"\x05" + b"\0" * 7 + b"{}", "not a safetensors file"),
    ],
)
def test_files_that_must_not_leave_the_machine(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    suffixes = (*contrib.CONTRIBUTION_SUFFIXES, ".safetensors")
    if name.endswith(".safetensors"):
        assert reason in contrib.check_file(path, suffixes=suffixes)
    else:
        message = contrib.check_file(path)
        assert message is not None and reason in message and name in message


def test_acceptable_files(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(GOOD_SAFETENSORS + b"\0\0\0\0")
    assert contrib.check_file(tmp_path / "m.safetensors", suffixes=(".safetensors",)) is None
    (tmp_path / "a.json").write_text('{"a": 1}')
    assert contrib.check_file(tmp_path / "a.json") is None
    (tmp_path / "link.json").symlink_to(tmp_path / "a.json")
    assert "not a regular file" in contrib.check_file(tmp_path / "link.json")
    assert "over the limit" in contrib.check_file(tmp_path / "a.json", max_bytes=3)
    data = make_dataset(tmp_path / "ds")
    for shard in data.rglob("*.parquet"):
        assert contrib.check_file(shard) is None


def test_size_limit_and_rejected_rows(tmp_path):
    data = make_dataset(tmp_path / "ds")
    (data / "rejected").mkdir()
    (data / "rejected" / "x.jsonl").write_text("{}\n")  # an import's refused rows: skipped
    (data / "records" / "rejected").mkdir()  # at any depth (<key>/rejected/ of an import)
    (data / "records" / "rejected" / "y.jsonl").write_text("{}\n")
    with pytest.raises(contrib.ContributionError, match="over the limit of 100"):
        contrib.check_contribution(
            data, "llvm-znver4", staging_dir=tmp_path / "s1", max_total_bytes=100
        )
    checked = contrib.check_contribution(data, "llvm-znver4", staging_dir=tmp_path / "s2")
    assert sorted(p.name for p in checked.skipped) == ["x.jsonl", "y.jsonl"]
    assert checked.records.num_rows == 24
    (tmp_path / "empty").mkdir()
    with pytest.raises(contrib.ContributionError, match=r"empty holds no record shards"):
        contrib.check_contribution(tmp_path / "empty", "llvm-znver4", staging_dir=tmp_path / "s3")


def test_loose_shards_are_sorted_by_their_metadata(tmp_path):
    data = make_dataset(tmp_path / "ds")
    files = sorted(data.rglob("*.parquet"))
    checked = contrib.check_contribution(files, "llvm-znver4", staging_dir=tmp_path / "s")
    assert checked.records.num_rows == 24 and checked.workloads.num_rows == 8


def test_plan_pools_duplicates_and_drops_what_the_hub_has(tmp_path):
    wl, rec = tables(first=0, per_workload=3)
    data = tmp_path / "ds"
    write_shards(data, wl, rec)
    write_shards(data, wl, rec.slice(0, 3), shard="again")  # the same 3 records twice
    checked = contrib.check_contribution(data, "llvm-znver4", staging_dir=tmp_path / "s")
    on_hub = set(rec.column("record_id").to_pylist()[3:9])
    plan = contrib.plan_contribution(
        checked, "llvm-znver4", on_hub, tmp_path / "new", base_revision="c" * 40, contributor="bob"
    )
    assert (plan.records_in, plan.pooled_in_contribution) == (27, 3)
    assert (plan.already_on_hub, plan.new_records) == (6, 18)
    assert sum(plan.splits.values()) == 18 and set(plan.failed) == {"build"}
    assert all(path.startswith("llvm-znver4/") for _, path in plan.uploads)
    written = pa.concat_tables([pq.read_table(f) for f, p in plan.uploads if "/records/" in p])
    assert set(written.column("contributor").to_pylist()) == {"bob"}
    assert not on_hub & set(written.column("record_id").to_pylist())
    text = plan.description()
    assert "| **new records** | **18** |" in text and "c" * 40 in text
    assert "failed measurements kept as records: build: 6" in text


def test_records_measured_on_other_hardware_are_refused_whatever_their_key(tmp_path):
    """An import given --target files every record under that key: the target dict is what
    they were measured on, and is what the check reads."""
    import pyarrow.compute as pc

    wl, rec = tables("cuda-a100")
    relabelled = rec.set_column(
        rec.schema.get_field_index("target_key"),
        "target_key",
        pc.cast(pa.array(["llvm-znver4"] * rec.num_rows), pa.string()),
    )
    write_shards(tmp_path / "ds", wl, relabelled)
    with pytest.raises(contrib.ContributionError, match="field 'target'") as err:
        contrib.check_contribution(tmp_path / "ds", "llvm-znver4", staging_dir=tmp_path / "s")
    assert "its target is cuda (cuda-sm80), not llvm-znver4" in str(err.value)
    # a device named at import is more specific than the dict, and fine
    wl, rec = tables("cuda-a100")
    checked = contrib.check_contribution(
        write_shards(tmp_path / "a100", wl, rec)[0].parents[1], "cuda-a100",
        staging_dir=tmp_path / "s2",
    )  # fmt: skip
    assert checked.records.num_rows == rec.num_rows


def test_the_public_contribute_is_the_function_whatever_was_imported():
    import tunezoo
    import tunezoo.contribution
    import tunezoo.hub

    assert tunezoo.contribute is tunezoo.hub.contribute and callable(tunezoo.contribute)


def test_workloads_whose_module_is_not_their_id_are_refused(tmp_path):
    """Every record of a workload is filed under its id: a module that hashes to another
    id (or is no module) would mislabel them all."""
    wl, rec = tables()
    rows = wl.to_pylist()
    texts = [r["mod_json"] for r in rows]
    for r, text in zip(rows, texts[1:] + texts[:1], strict=True):
        r["mod_json"] = text  # each workload gets its neighbour's module
    rows[0]["mod_json"] = "{}"
    write_shards(tmp_path / "ds", pa.Table.from_pylist(rows, schema=wl.schema), rec)
    with pytest.raises(contrib.ContributionError, match="module is not what their id") as err:
        contrib.check_contribution(tmp_path / "ds", "llvm-znver4", staging_dir=tmp_path / "s")
    message = str(err.value)
    assert "row 0, field 'mod_json': not a TVM module" in message
    assert "field 'workload_id'" in message
