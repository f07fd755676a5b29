"""tunezoo.hub against a real Hub-compatible server (tests/hub_server.py) over HTTP.

No part of huggingface_hub is mocked: the client makes its real requests to 127.0.0.1.
Each test works in its own organisation on the shared session server, with its own cache
directory and catalog file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard, RepoFile, snapshot_download
from huggingface_hub import errors as hf_errors
from make_records import make_dataset

from tunezoo import catalog as cat
from tunezoo import hub
from tunezoo.contribution import ContributionError
from tunezoo.records import read_records

NAME = "segsum-mlp.llvm-znver4"
TARGET = "llvm-znver4"
METRICS = {
    "test": {"top1_score": 0.91, "top5_score": 0.97, "pairwise_accuracy": 0.83, "kendall_tau": 0.6},
    "baselines": {"xgb": {"top1_score": 0.88, "kendall_tau": 0.55}},
}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pinned(result: hub.PublishResult, file: str = "model.safetensors") -> str:
    return result.artifact.files[file].sha256


@pytest.fixture
def org() -> str:
    return f"org-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def catalog_path(tmp_path) -> Path:
    return tmp_path / "catalog.json"


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def make_model(path: Path, scale: float = 1.0) -> Path:
    """A tiny real artifact: config.json + model.safetensors (+ metrics.json)."""
    import torch  # noqa: PLC0415 - only the tests that build a model pay for torch
    from safetensors.torch import save_file  # noqa: PLC0415

    path.mkdir(parents=True, exist_ok=True)
    tensors = {"layer0.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4) * scale}
    save_file(tensors, str(path / "model.safetensors"))
    config = {
        "architecture": "segsum-mlp",
        "feature_version": 1,
        "training_data": {
            "repo": "tunezoo/tvm-tuning-records",
            "config": TARGET,
            "revision": "a" * 40,
        },
    }
    (path / "config.json").write_text(json.dumps(config))
    (path / "metrics.json").write_text(json.dumps(METRICS))
    return path


@pytest.fixture
def published(tmp_path, org, catalog_path) -> hub.PublishResult:
    return hub.publish_model(make_model(tmp_path / "model"), NAME, org=org, catalog=catalog_path)


# ------------------------------------------------------------------------ publish + download


def test_publish_pins_the_commit_and_download_verifies(published, catalog_path, cache, tmp_path):
    entry = cat.get_artifact(NAME, catalog=catalog_path)
    assert entry == published.artifact
    assert entry.revision == published.commit and len(entry.revision) == 40
    assert entry.repo.endswith("/" + NAME) and entry.kind == "predictor"
    assert entry.target == TARGET and entry.feature_version == 1
    assert entry.metrics == METRICS
    assert sorted(entry.files) == ["config.json", "metrics.json", "model.safetensors"]
    local = tmp_path / "model"
    assert entry.files["model.safetensors"].sha256 == sha256(local / "model.safetensors")

    path = hub.download_artifact(NAME, catalog=catalog_path, cache_dir=cache)
    assert path.name == entry.revision  # the snapshot folder of the pinned commit
    for name, pin in entry.files.items():
        assert sha256(path / name) == pin.sha256
    from safetensors.torch import load_file  # noqa: PLC0415

    assert load_file(str(path / "model.safetensors"))["layer0.weight"].shape == (3, 4)
    card = ModelCard.load(entry.repo)  # the README the publish wrote, from the server
    assert card.data.library_name == "tunezoo"
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["kendall_tau"] == 0.6


def test_republish_keeps_the_old_pin_verifiable(published, tmp_path, org, catalog_path, cache):
    again = hub.publish_model(make_model(tmp_path / "v2", 2.0), NAME, org=org, catalog=catalog_path)
    entry = again.artifact
    assert entry.revision == again.commit != published.commit
    assert [h.revision for h in entry.history] == [published.commit]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known revision is verified, so no warning
        ref = f"{NAME}@{published.commit}"
        old = hub.download_artifact(ref, catalog=catalog_path, cache_dir=cache)
    assert sha256(old / "model.safetensors") == pinned(published)

    with pytest.warns(hub.UnpinnedRevisionWarning, match="cannot be verified"):
        main = hub.download_artifact(NAME, revision="main", catalog=catalog_path, cache_dir=cache)
    assert sha256(main / "model.safetensors") == sha256(tmp_path / "v2" / "model.safetensors")


def test_tampered_cache_is_refused_removed_and_fetched_again(published, catalog_path, cache):
    path = hub.download_artifact(NAME, catalog=catalog_path, cache_dir=cache)
    weights = path / "model.safetensors"
    blob = weights.resolve()
    blob.write_bytes(blob.read_bytes()[:-4] + b"EVIL")

    with pytest.raises(hub.ChecksumMismatchError) as err:
        hub.download_artifact(NAME, catalog=catalog_path, cache_dir=cache)
    message = str(err.value)
    assert "model.safetensors" in message and "modified or corrupted" in message
    assert f"run: tunezoo download {NAME}" in message
    assert not weights.exists() and not blob.exists()  # the bad copy is gone for good

    again = hub.download_artifact(NAME, catalog=catalog_path, cache_dir=cache)
    assert sha256(again / "model.safetensors") == pinned(published)


def test_wrong_content_from_the_server_is_refused(published, cache):
    pin = published.artifact.files["config.json"]
    bad = dataclasses.replace(
        published.artifact,
        files={**published.artifact.files, "config.json": cat.FilePin("0" * 64, pin.size)},
    )
    with pytest.raises(hub.ChecksumMismatchError, match="served content that is not"):
        hub.download_artifact(bad, cache_dir=cache)
    assert list(cache.rglob("config.json")) == []


def test_truncated_download_is_refused(published, hub_server, catalog_path, cache):
    repo = published.artifact.repo
    hub_server.truncate.add((repo, "model.safetensors"))
    try:
        with pytest.raises(hub.TruncatedDownloadError, match="stopped short") as err:
            hub.download_artifact(NAME, catalog=catalog_path, cache_dir=cache)
        assert "model.safetensors" in str(err.value)
    finally:
        hub_server.truncate.discard((repo, "model.safetensors"))
    assert not [p for p in cache.rglob("*") if p.name.endswith(".incomplete")]
    assert list(cache.rglob("model.safetensors")) == []
    path = hub.download_artifact(NAME, catalog=catalog_path, cache_dir=cache)
    assert sha256(path / "model.safetensors") == pinned(published)


@pytest.mark.parametrize("revision", ["0123456789" * 4, "no-such-branch"])
def test_wrong_revision_is_a_clear_error(published, catalog_path, cache, revision):
    with (
        pytest.warns(hub.UnpinnedRevisionWarning),
        pytest.raises(hub.ArtifactRevisionNotFoundError) as err,
    ):
        hub.download_artifact(f"{NAME}@{revision}", catalog=catalog_path, cache_dir=cache)
    assert isinstance(err.value, hf_errors.RevisionNotFoundError)  # the client's type, too
    assert revision in str(err.value) and published.commit in str(err.value)


def test_a_pinned_commit_missing_on_the_endpoint_is_not_blamed_on_the_user(
    published, catalog_path, cache
):
    """The catalog's own pin missing (a mirror behind, rewritten history): the message must
    not tell the user to leave out a revision they never gave."""
    entry = cat.get_artifact(NAME, catalog=catalog_path)
    moved = dataclasses.replace(entry, revision="f" * 40)
    with pytest.raises(hub.ArtifactRevisionNotFoundError) as err:
        hub.download_artifact(moved, cache_dir=cache)
    message = str(err.value)
    assert "lacks the published commit" in message and "HF_ENDPOINT" in message
    assert "leave out the revision" not in message


def test_unknown_repo_is_a_clear_error(published, cache):
    moved = dataclasses.replace(published.artifact, repo=f"nobody-{uuid.uuid4().hex[:6]}/{NAME}")
    with pytest.raises(hub.ArtifactRepoNotFoundError, match="does not exist") as err:
        hub.download_artifact(moved, cache_dir=cache)
    assert isinstance(err.value, hf_errors.RepositoryNotFoundError)
    assert moved.repo in str(err.value)


def test_unknown_name_suggests_the_closest(published, catalog_path):
    with pytest.raises(cat.UnknownArtifactError, match=f"Did you mean '{NAME}'"):
        hub.download_artifact("segsum-mlp.llvm-znver5", catalog=catalog_path)


def test_local_files_only_says_what_is_missing(published, catalog_path, cache):
    with pytest.raises(hub.NotCachedError) as err:
        hub.download_artifact(NAME, catalog=catalog_path, cache_dir=cache, local_files_only=True)
    assert isinstance(err.value, hf_errors.LocalEntryNotFoundError)
    message = str(err.value)
    assert "local_files_only" in message and f"run: tunezoo download {NAME}" in message


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import sys
    from tunezoo import hub
    name, cached, empty = sys.argv[1:4]
    print("PATH", hub.download_artifact(name, cache_dir=cached))
    try:
        hub.download_artifact(name, cache_dir=empty)
    except hub.NotCachedError as exc:
        print("MISSING", exc)
    """
)


def test_offline_works_from_cache_and_names_what_is_missing(
    published, catalog_path, cache, tmp_path, hub_server
):
    online = hub.download_artifact(NAME, catalog=catalog_path, cache_dir=cache)
    requests_before = len(hub_server.log)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TUNEZOO_CATALOG": str(catalog_path)}
    run = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, NAME, str(cache), str(tmp_path / "empty")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    assert Path(lines["PATH"]) == online
    missing = lines["MISSING"]
    assert "HF_HUB_OFFLINE=1" in missing and published.artifact.repo in missing
    assert "config.json" in missing and f"run: tunezoo download {NAME}" in missing
    assert len(hub_server.log) == requests_before  # offline means no request at all


def test_publish_refuses_pickles_and_missing_weights(tmp_path, org, catalog_path):
    src = make_model(tmp_path / "model")
    (src / "optimizer.pt").write_bytes(b"\x80\x04\x95 not for upload")
    with pytest.raises(hub.PublishError, match="optimizer.pt"):
        hub.publish_model(src, NAME, org=org, catalog=catalog_path)
    (src / "optimizer.pt").unlink()
    (src / "model.safetensors").unlink()
    with pytest.raises(hub.PublishError, match="no model.safetensors"):
        hub.publish_model(src, NAME, org=org, catalog=catalog_path)
    other = make_model(tmp_path / "other")
    (other / "config.json").write_text("[1, 2]")
    with pytest.raises(hub.PublishError, match=r"config\.json: a list, expected an object"):
        hub.publish_model(other, NAME, org=org, catalog=catalog_path)
    assert not catalog_path.exists()


def test_publish_a_model_trained_on_a_local_dataset(tmp_path, org, catalog_path):
    """What scripts/ train: metrics.json names the local dataset, config.json no Hub pin."""
    model = make_model(tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    del config["training_data"]
    (model / "config.json").write_text(json.dumps(config))
    trained_on = {"dataset": "data/llvm-znver4", "data_until": "2026-11-30T00:00:00+00:00"}
    (model / "metrics.json").write_text(json.dumps({**METRICS, **trained_on}))
    result = hub.publish_model(model, NAME, org=org, catalog=catalog_path)
    entry = cat.get_artifact(NAME, catalog=catalog_path)
    assert entry.revision == result.commit
    assert entry.training_data["dataset"] == "data/llvm-znver4"
    assert "data/llvm-znver4" in ModelCard.load(entry.repo).text


def test_a_bad_catalog_entry_stops_the_publication_before_the_upload(tmp_path, org, catalog_path):
    with pytest.raises(hub.PublishError, match="nothing was published") as err:
        hub.publish_model(
            make_model(tmp_path / "model"),
            NAME,
            org=org,
            catalog=catalog_path,
            training_data={"note": "neither a Hub pin nor a dataset folder"},
        )
    assert "training_data" in str(err.value)
    assert not HfApi().repo_exists(f"{org}/{NAME}")
    assert not catalog_path.exists()


def test_publishing_a_name_under_another_org_keeps_its_pins(published, tmp_path, catalog_path):
    """Replacing the entry would drop every earlier pin, so old name@rev downloads would
    no longer be verified: refused, before anything is uploaded."""
    before = catalog_path.read_bytes()
    other = f"org-{uuid.uuid4().hex[:10]}"
    with pytest.raises(hub.PublishError, match="drop its pinned revisions") as err:
        hub.publish_model(make_model(tmp_path / "v2", 2.0), NAME, org=other, catalog=catalog_path)
    assert published.artifact.repo in str(err.value)
    assert catalog_path.read_bytes() == before
    assert not HfApi().repo_exists(f"{other}/{NAME}")


def test_writes_need_a_valid_token(tmp_path, org, catalog_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(hub.HubAccessError, match="HF_TOKEN"):
        hub.publish_model(make_model(tmp_path / "model"), NAME, org=org, catalog=catalog_path)


# --------------------------------------------------------------------------------- datasets


def test_publish_dataset_then_load_dataset(tmp_path, org, catalog_path, cache):
    import datasets  # noqa: PLC0415 - 1 s to import; only this test needs it

    data = make_dataset(tmp_path / "ds", TARGET)
    settings = {"builder": "local", "trials_per_task": 64}
    result = hub.publish_dataset(data, TARGET, org=org, catalog=catalog_path, collection=settings)
    entry = result.artifact
    assert entry.name == f"tvm-tuning-records.{TARGET}" and entry.kind == "dataset"
    assert entry.metrics["records"] == read_records(data).num_rows == 24
    assert "README.md" in entry.files and f"{TARGET}/info.json" in entry.files

    snapshot = snapshot_download(
        entry.repo, repo_type="dataset", revision=result.commit, cache_dir=cache
    )
    train = datasets.load_dataset(snapshot, name=TARGET, split="train")
    expected = read_records(data).filter(_split_mask(data, "train"))
    assert sorted(train["record_id"]) == sorted(expected.column("record_id").to_pylist())

    root = hub.download_artifact(entry.name, catalog=catalog_path, cache_dir=tmp_path / "c2")
    assert read_records(root / TARGET).num_rows == 24

    other = make_dataset(tmp_path / "ds2", "cuda-a100")
    second = hub.publish_dataset(other, "cuda-a100", org=org, catalog=catalog_path)
    readme = (hub.download_artifact(second.artifact, cache_dir=cache) / "README.md").read_text()
    card = datasets.load_dataset_builder(
        str(hub.download_artifact(second.artifact, cache_dir=cache)), name="cuda-a100"
    )
    assert card.config.name == "cuda-a100"
    assert f"`{TARGET}`" in readme and "`cuda-a100`" in readme and "trials_per_task" in readme
    names = {a.name for a in cat.list_artifacts("dataset", catalog=catalog_path)}
    assert names == {f"tvm-tuning-records.{TARGET}", "tvm-tuning-records.cuda-a100"}


def _split_mask(data: Path, split: str):
    import pyarrow as pa  # noqa: PLC0415

    from tunezoo.splits import split_of  # noqa: PLC0415

    ids = read_records(data).column("workload_id").to_pylist()
    return pa.array([split_of(w) == split for w in ids])


def test_publish_dataset_never_rewrites_a_shard(tmp_path, org, catalog_path):
    import pyarrow.parquet as pq  # noqa: PLC0415

    data = make_dataset(tmp_path / "ds", TARGET)
    hub.publish_dataset(data, TARGET, org=org, catalog=catalog_path)
    shard = sorted((data / "records").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    pq.write_table(table.slice(0, table.num_rows - 1), shard)  # same name, other content
    with pytest.raises(hub.PublishError, match="append-only"):
        hub.publish_dataset(data, TARGET, org=org, catalog=catalog_path)


def test_another_targets_malformed_info_does_not_stop_a_publication(tmp_path, org, catalog_path):
    data = make_dataset(tmp_path / "ds", TARGET)
    first = hub.publish_dataset(data, TARGET, org=org, catalog=catalog_path)
    HfApi().upload_file(
        path_or_fileobj=json.dumps({"info": {"records": None, "workloads": "many"}}).encode(),
        path_in_repo="cuda-a100/info.json",
        repo_id=first.artifact.repo,
        repo_type="dataset",
    )
    again = hub.publish_dataset(data, TARGET, org=org, catalog=catalog_path)
    assert again.commit != first.commit
    assert again.artifact.metrics["records"] == first.artifact.metrics["records"]


# ------------------------------------------------------------------------------ contribute


def files_at(api: HfApi, repo: str, revision: str) -> dict[str, str]:
    tree = api.list_repo_tree(repo, recursive=True, revision=revision, repo_type="dataset")
    return {f.path: f.blob_id for f in tree if isinstance(f, RepoFile)}


def test_contribution_round_trip(tmp_path, org, catalog_path, cache):
    base = hub.publish_dataset(
        make_dataset(tmp_path / "base", TARGET), TARGET, org=org, catalog=catalog_path
    )
    repo = base.artifact.repo
    ours = make_dataset(tmp_path / "ours", TARGET, first=2)  # traces 2..4; the Hub has 0..2
    result = hub.contribute(ours, TARGET, org=org, contributor="alice", cache_dir=cache)

    assert result.pr_url is not None and result.pr_url.endswith("/discussions/1")
    plan = result.plan
    assert (plan.records_in, plan.already_on_hub, plan.new_records) == (24, 8, 16)
    api = HfApi()
    assert api.repo_info(repo, repo_type="dataset").sha == base.commit  # main is untouched
    pr = api.get_discussion_details(repo, 1, repo_type="dataset")
    assert pr.is_pull_request and pr.status == "open"
    description = pr.events[0].content
    assert "| **new records** | **16** |" in description
    assert "already in the Hub dataset (left out) | 8 |" in description
    assert "no problems in" in description
    before = files_at(api, repo, "main")
    in_pr = files_at(api, repo, result.pr_revision)
    assert {p: in_pr[p] for p in before} == before  # nothing existing changed
    assert sorted(set(in_pr) - set(before)) == sorted(p for _, p in plan.uploads)

    api.merge_pull_request(repo, 1, repo_type="dataset")
    merged = Path(snapshot_download(repo, repo_type="dataset", cache_dir=cache))
    records = read_records(merged / TARGET)
    assert records.num_rows == 24 + 16 and len(set(records.column("record_id").to_pylist())) == 40
    contributors = records.column("contributor").to_pylist()
    assert contributors.count("alice") == 16

    again = hub.contribute(ours, TARGET, org=org, cache_dir=cache)
    assert again.pr_url is None and again.plan.new_records == 0
    assert "Nothing to contribute" in again.message and "24 record(s)" in again.message


def test_contribution_with_a_bad_file_is_refused_naming_it(tmp_path, org, catalog_path, hub_server):
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    base = make_dataset(tmp_path / "base", TARGET)
    hub.publish_dataset(base, TARGET, org=org, catalog=catalog_path)
    commits_before = sum(1 for method, path in hub_server.log if "/commit/" in path)

    pickled = make_dataset(tmp_path / "pkl", TARGET, first=5)
    (pickled / "records" / "extra.pkl").write_bytes(b"\x80\x04\x95\x00")
    with pytest.raises(ContributionError, match=r"extra\.pkl.*not accepted"):
        hub.contribute(pickled, TARGET, org=org)

    renamed = make_dataset(tmp_path / "renamed", TARGET, first=5)
    (renamed / "records" / "train-x.parquet").write_bytes(b"\x80\x04\x95\x00PAR1")
    with pytest.raises(ContributionError, match=r"train-x\.parquet.*Python pickle"):
        hub.contribute(renamed, TARGET, org=org)

    wrong = make_dataset(tmp_path / "schema", TARGET, first=5)
    pq.write_table(pa.table({"record_id": ["x"]}), wrong / "records" / "train-bad.parquet")
    with pytest.raises(ContributionError, match="schema version") as err:
        hub.contribute(wrong, TARGET, org=org)
    assert f"{wrong}/records/train-bad.parquet:" in str(err.value)  # the user's path

    other_target = make_dataset(tmp_path / "other", "cuda-a100", first=5)
    with pytest.raises(ContributionError, match=r"row 0, field 'target_key'") as err:
        hub.contribute(other_target, TARGET, org=org)
    assert str(other_target / "records") in str(err.value)

    assert sum(1 for method, path in hub_server.log if "/commit/" in path) == commits_before


def test_only_hub_imports_the_hub_client():
    package = Path(hub.__file__).parent
    offenders = [
        p.name
        for p in package.rglob("*.py")
        if p.name != "hub.py"
        and any(
            line.lstrip().startswith(("import huggingface_hub", "from huggingface_hub"))
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == [], "only tunezoo/hub.py may import huggingface_hub"
