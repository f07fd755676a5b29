"""The catalog: the shipped table's metadata schema, names, lookups and updates."""

from __future__ import annotations

import copy
import json

import pytest

from tunezoo import catalog as cat
from tunezoo.targets import KEY_PATTERN

SHA = "ab" * 32
REV = "12" * 20
GOOD = {
    "name": "segsum-mlp.cuda-a100",
    "kind": "predictor",
    "repo": "tunezoo/segsum-mlp.cuda-a100",
    "revision": REV,
    "files": {
        "config.json": {"sha256": SHA, "size": 10},
        "model.safetensors": {"sha256": SHA, "size": 99},
    },
    "target": "cuda-a100",
    "feature_version": 1,
    "metrics": {
        "test": {"top1_score": 0.9, "kendall_tau": 0.5},
        "baselines": {"xgb": {"top1_score": 0.8}},
    },
}
META = {
    **GOOD,
    "name": "segsum-mlp.meta-cuda",
    "kind": "meta-init",
    "repo": "tunezoo/segsum-mlp.meta-cuda",
    "target": None,
    "family": "cuda",
}
DATASET = {
    "name": "tvm-tuning-records.cuda-a100",
    "kind": "dataset",
    "repo": "tunezoo/tvm-tuning-records",
    "revision": REV,
    "files": {
        "README.md": {"sha256": SHA, "size": 5},
        "cuda-a100/records/train-0.parquet": {"sha256": SHA, "size": 5},
    },
    "target": "cuda-a100",
    "schema_version": "1",
    "metrics": {"records": 10, "workloads": 2, "splits": {"train": 10}},
}


def test_shipped_catalog_entries_follow_the_schema():
    """Every entry of tunezoo/catalog.json: fields, pins, names (torchvision's meta test)."""
    raw = json.loads(cat.PACKAGE_CATALOG.read_text())
    assert raw["format"] == cat.CATALOG_FORMAT
    for entry in raw["artifacts"]:
        assert cat.validate_entry(entry) == [], entry["name"]
        assert entry["target"] is None or KEY_PATTERN.match(entry["target"])
    names = [e["name"] for e in raw["artifacts"]]
    assert names == sorted(set(names)), "names must be unique and sorted"
    loaded = cat.load_catalog(cat.PACKAGE_CATALOG)
    assert loaded.names() == names


@pytest.mark.parametrize("entry", [GOOD, META, DATASET], ids=["predictor", "meta", "dataset"])
def test_good_entries_round_trip(entry):
    artifact = cat.Artifact.from_dict(entry)
    assert cat.validate_entry(artifact.to_dict()) == []
    assert cat.Artifact.from_dict(artifact.to_dict()) == artifact
    assert artifact.repo_type == ("dataset" if entry["kind"] == "dataset" else "model")


def _broken(base: dict, path: tuple[str, ...], value) -> dict:
    """A copy of ``base`` with the field at ``path`` (a key sequence) set or deleted."""
    entry = copy.deepcopy(base)
    *parents, last = path
    node = entry
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return entry


PIN = {"sha256": SHA, "size": 1}


@pytest.mark.parametrize(
    ("base", "path", "value", "expected"),
    [
        (GOOD, ("revision",), "main", "40-hex commit"),
        (GOOD, ("revision",), KeyError, "missing field 'revision'"),
        (GOOD, ("kind",), "dataset", "the name says 'predictor'"),
        (GOOD, ("target",), "cuda-h100", "the name says 'cuda-a100'"),
        (GOOD, ("repo",), "tunezoo/other", "does not match the name"),
        (GOOD, ("files", "config.json", "sha256"), "abc", "pin must be"),
        (GOOD, ("files", "model.safetensors"), KeyError, "lack 'model.safetensors'"),
        (GOOD, ("files", "weights.pkl"), PIN, "only ["),
        (GOOD, ("files", "../x.json"), PIN, "plain relative path"),
        (GOOD, ("feature_version",), None, "feature_version must be set"),
        (GOOD, ("metrics", "test", "top1_score"), "high", "expected a number"),
        (GOOD, ("metrics", "test", "accuracy"), 0.5, "unknown metric 'accuracy'"),
        (GOOD, ("extra",), 1, "unknown fields ['extra']"),
        (GOOD, ("history",), [{"revision": "x", "files": {}}], "history[0] revision"),
        (META, ("family",), "llvm-x86", "the name says 'cuda'"),
        (DATASET, ("files", "other/x.parquet"), PIN, "outside the config"),
        (DATASET, ("schema_version",), None, "schema_version must be set"),
        (DATASET, ("feature_version",), 1, "must be null for a dataset"),
    ],
    ids=lambda v: "/".join(v) if isinstance(v, tuple) else None,
)
def test_broken_entries_are_named(base, path, value, expected):
    problems = cat.validate_entry(_broken(base, path, value))
    assert any(expected in p for p in problems), problems
    with pytest.raises(cat.CatalogError, match=base["name"].replace(".", r"\.")):
        cat.Artifact.from_dict(_broken(base, path, value))


@pytest.mark.parametrize(
    ("name", "kind", "target", "family"),
    [
        ("segsum-mlp.cuda-a100", "predictor", "cuda-a100", None),
        ("mlp.llvm-znver4", "predictor", "llvm-znver4", None),
        ("segsum-mlp.meta-llvm-x86", "meta-init", None, "llvm-x86"),
        ("tvm-tuning-records.cuda-h100", "dataset", "cuda-h100", None),
    ],
)
def test_names_map_to_kinds_and_repos(name, kind, target, family):
    parsed = cat.parse_name(name)
    assert (parsed["kind"], parsed["target"], parsed["family"]) == (kind, target, family)
    repo = cat.repo_for(name, "org")
    assert repo == ("org/tvm-tuning-records" if kind == "dataset" else f"org/{name}")


@pytest.mark.parametrize("bad", ["segsum", "Segsum.cuda", "a.b.c", "a.", "x.cuda_a100", ""])
def test_bad_names_are_refused(bad):
    with pytest.raises(cat.CatalogError, match="is not"):
        cat.parse_name(bad)


def test_split_revision():
    assert cat.split_revision("a.b@main") == ("a.b", "main")
    assert cat.split_revision("a.b@refs/pr/3") == ("a.b", "refs/pr/3")
    assert cat.split_revision("a.b") == ("a.b", None)
    with pytest.raises(cat.CatalogError):
        cat.split_revision("a.b@")


@pytest.fixture
def table(tmp_path):
    catalog = cat.Catalog()
    for entry in (GOOD, META, DATASET):
        catalog = catalog.with_artifact(cat.Artifact.from_dict(entry))
    return catalog.save(tmp_path / "catalog.json")


def test_lookups(table):
    assert [a.name for a in cat.list_artifacts("predictor", catalog=table)] == [GOOD["name"]]
    assert len(cat.list_artifacts(catalog=table)) == 3
    assert cat.get_artifact("segsum-mlp.cuda-a100@main", catalog=table).name == GOOD["name"]
    assert cat.resolve("cuda-a100", catalog=table).name == GOOD["name"]
    assert cat.resolve("cuda-a100", kind="dataset", catalog=table).kind == "dataset"
    assert cat.resolve(META["name"], catalog=table).family == "cuda"
    with pytest.raises(cat.CatalogError, match="kind 'weights'"):
        cat.list_artifacts("weights", catalog=table)


def test_a_target_key_resolves_like_load_predictor(tmp_path):
    """Per-store before trace-token whatever the names' order; CPUs fall back within their
    family, GPUs never (their features differ per architecture)."""
    from tunezoo.feature_kinds import PER_STORE, TRACE  # noqa: PLC0415
    from tunezoo.loading import FallbackPredictorWarning, NoPredictorError  # noqa: PLC0415

    def predictor(name: str, version: str) -> cat.Artifact:
        target = name.split(".", 1)[1]
        return cat.Artifact.from_dict(
            {**GOOD, "name": name, "repo": f"tunezoo/{name}", "target": target,
             "feature_version": version}
        )  # fmt: skip

    catalog = cat.Catalog()
    for artifact in (
        predictor("aaa-trace.llvm-znver4", TRACE.version),
        predictor("zzz-mlp.llvm-znver4", PER_STORE.version),
        predictor("segsum-mlp.cuda-a100", PER_STORE.version),
    ):
        catalog = catalog.with_artifact(artifact)
    path = catalog.save(tmp_path / "catalog.json")
    assert cat.resolve("llvm-znver4", catalog=path).name == "zzz-mlp.llvm-znver4"
    with pytest.warns(FallbackPredictorWarning, match="llvm-znver4"):
        assert cat.resolve("llvm-icelake-server", catalog=path).name == "zzz-mlp.llvm-znver4"
    with pytest.raises(NoPredictorError, match="cuda-h100"):
        cat.resolve("cuda-h100", catalog=path)


def test_saving_keeps_the_catalog_readable_by_others(tmp_path):
    path = cat.Catalog().with_artifact(cat.Artifact.from_dict(GOOD)).save(tmp_path / "c.json")
    assert path.stat().st_mode & 0o777 == 0o644  # a new catalog: everyone may read it
    path.chmod(0o640)
    cat.load_catalog(path).with_artifact(cat.Artifact.from_dict(META)).save()
    assert path.stat().st_mode & 0o777 == 0o640  # an existing one keeps its mode
    assert len(cat.load_catalog(path).artifacts) == 2
    link = tmp_path / "linked.json"
    link.symlink_to(path)  # e.g. $TUNEZOO_CATALOG pointing at a team's shared file
    cat.load_catalog(link).with_artifact(cat.Artifact.from_dict(DATASET)).save()
    assert link.is_symlink() and len(cat.load_catalog(path).artifacts) == 3


def test_malformed_entries_are_refused_naming_the_field():
    assert cat.Artifact.from_dict({**GOOD, "history": None}).history == ()
    for path in ("", ".", "./"):
        bad = {**DATASET, "files": {path: {"sha256": SHA, "size": 5}}}
        problems = cat.validate_entry(bad)
        assert any(repr(path) in p for p in problems), problems
    local = {**GOOD, "training_data": {"dataset": "data/cuda-a100", "data_until": "T"}}
    assert cat.validate_entry(local) == []
    assert any("training_data" in p for p in cat.validate_entry({**GOOD, "training_data": {}}))


def test_unknown_name_lists_and_suggests(table):
    with pytest.raises(cat.UnknownArtifactError) as err:
        cat.get_artifact("segsum-mlp.cuda-a10o", catalog=table)
    message = str(err.value)
    assert "Did you mean 'segsum-mlp.cuda-a100'?" in message
    assert "Available: " in message and DATASET["name"] in message
    with pytest.raises(cat.UnknownArtifactError, match="Did you mean 'cuda-a100'"):
        cat.resolve("cuda-a1000", catalog=table)
    with pytest.raises(cat.UnknownArtifactError, match="catalog is empty"):
        cat.get_artifact("x.y", catalog=table.parent / "missing.json")


def test_new_pin_moves_the_old_one_to_history(table):
    old = cat.get_artifact(GOOD["name"], catalog=table)
    new_files = {
        "config.json": cat.FilePin("cd" * 32, 11),
        "model.safetensors": cat.FilePin(SHA, 1),
    }
    new = old.with_pin("34" * 20, new_files)
    assert new.revision == "34" * 20 and new.pins_for(REV) == old.files
    assert new.pins_for("56" * 20) is None
    cat.record_artifact(new, catalog=table)
    reloaded = cat.get_artifact(GOOD["name"], catalog=table)
    assert reloaded == new and [h.revision for h in reloaded.history] == [REV]
    # re-pinning an old revision takes it out of the history again
    assert old.with_pin(REV, old.files).history == ()


def test_corrupt_catalog_names_the_file(tmp_path):
    bad = tmp_path / "catalog.json"
    bad.write_text("{not json")
    with pytest.raises(cat.CatalogError, match="catalog.json: not a readable JSON catalog"):
        cat.load_catalog(bad)
    bad.write_text(json.dumps({"format": 1, "artifacts": [GOOD, GOOD]}))
    with pytest.raises(cat.CatalogError, match="more than once"):
        cat.load_catalog(bad)
    bad.write_text(json.dumps({"format": 1, "artifacts": [{**GOOD, "revision": "x"}]}))
    with pytest.raises(cat.CatalogError, match=r"artifacts\[0\].*40-hex"):
        cat.load_catalog(bad)


def test_env_points_at_another_catalog(table, monkeypatch):
    monkeypatch.setenv(cat.CATALOG_ENV, str(table))
    assert cat.default_catalog_path() == table
    assert cat.get_artifact(GOOD["name"]).revision == REV
