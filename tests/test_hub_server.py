"""The test Hub itself, driven by the real huggingface_hub client: the protocol details the
tunezoo tests rely on (LFS uploads, pagination, refs, pull requests, typed errors)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, RepoFile, hf_hub_download
from huggingface_hub import errors as hf_errors


@pytest.fixture
def repo() -> str:
    name = f"org-{uuid.uuid4().hex[:10]}/server-test"
    HfApi().create_repo(name, repo_type="dataset")
    return name


def add(api: HfApi, repo: str, files: dict[str, bytes], **kwargs):
    ops = [CommitOperationAdd(path, data) for path, data in files.items()]
    return api.create_commit(repo, ops, commit_message="add", repo_type="dataset", **kwargs)


def test_lfs_and_regular_files(repo, hub_server, tmp_path):
    api = HfApi()
    table = b"PAR1" + bytes(range(256)) * 8 + b"PAR1"
    commit = add(api, repo, {"a/t.parquet": table, "a/info.json": b"{}"})
    assert any(m == "PUT" and "/_lfs/upload/" in p for m, p in hub_server.log)  # no Xet
    tree = {f.path: f for f in api.list_repo_tree(repo, recursive=True, repo_type="dataset")}
    assert tree["a/t.parquet"].lfs.sha256 == hashlib.sha256(table).hexdigest()
    assert tree["a/info.json"].lfs is None
    assert tree["a/info.json"].blob_id == hashlib.sha1(b"blob 2\0{}").hexdigest()
    path = hf_hub_download(
        repo, "a/t.parquet", repo_type="dataset", revision=commit.oid, cache_dir=tmp_path
    )
    assert Path(path).read_bytes() == table
    with pytest.raises(hf_errors.RemoteEntryNotFoundError):
        hf_hub_download(repo, "a/nope.json", repo_type="dataset", cache_dir=tmp_path)


def test_tree_pages_refs_and_commits(repo, hub_server, monkeypatch):
    api = HfApi()
    first = add(api, repo, {f"d/f{i}.json": b"[%d]" % i for i in range(5)})
    second = add(api, repo, {"d/g.json": b"[]"})
    monkeypatch.setattr(hub_server, "page_size", 2)
    files = [f.path for f in api.list_repo_tree(repo, "d", repo_type="dataset")]
    assert files == [f"d/f{i}.json" for i in range(5)] + ["d/g.json"]
    assert sum("cursor=" in p for _, p in hub_server.log) == 2  # three pages
    old = api.list_repo_tree(repo, "d", revision=first.oid, repo_type="dataset")
    assert len([f for f in old if isinstance(f, RepoFile)]) == 5  # commits are immutable
    commits = api.list_repo_commits(repo, repo_type="dataset")
    assert [c.commit_id for c in commits[:2]] == [second.oid, first.oid]
    refs = api.list_repo_refs(repo, repo_type="dataset")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", second.oid)]


def test_paths_info(repo):
    api = HfApi()
    table = b"PAR1" + bytes(range(256)) + b"PAR1"
    first = add(api, repo, {"a/t.parquet": table, "a/info.json": b"{}"})
    add(api, repo, {"a/info.json": b"[]"})
    paths = ["a/info.json", "a/t.parquet", "a", "nope.json"]
    found = api.get_paths_info(repo, paths, revision=first.oid, repo_type="dataset")
    assert [(type(f).__name__, f.path) for f in found] == [
        ("RepoFile", "a/info.json"),
        ("RepoFile", "a/t.parquet"),
        ("RepoFolder", "a"),
    ]
    assert found[0].blob_id == hashlib.sha1(b"blob 2\0{}").hexdigest()  # at that commit
    assert found[1].lfs.sha256 == hashlib.sha256(table).hexdigest()
    assert found[1].size == len(table)


def test_pull_requests_merge_and_conflict(repo):
    api = HfApi()
    base = add(api, repo, {"x.json": b"1"})
    pr1 = add(api, repo, {"x.json": b"2", "y.json": b"3"}, create_pr=True)
    pr2 = add(api, repo, {"x.json": b"4"}, create_pr=True, commit_description="second")
    assert (pr1.pr_revision, pr2.pr_revision) == ("refs/pr/1", "refs/pr/2")
    assert api.repo_info(repo, repo_type="dataset").sha == base.oid
    refs = api.list_repo_refs(repo, repo_type="dataset", include_pull_requests=True)
    assert [r.ref for r in refs.pull_requests] == ["refs/pr/1", "refs/pr/2"]
    assert api.get_discussion_details(repo, 2, repo_type="dataset").events[0].content == "second"

    api.merge_pull_request(repo, 1, repo_type="dataset")
    details = api.get_discussion_details(repo, 1, repo_type="dataset")
    assert details.status == "merged" and details.merge_commit_oid is not None
    assert api.repo_info(repo, repo_type="dataset").sha == details.merge_commit_oid
    with pytest.raises(hf_errors.HfHubHTTPError, match="conflict"):
        api.merge_pull_request(repo, 2, repo_type="dataset")  # x.json changed on both sides


def test_errors_are_typed(repo, tmp_path):
    api = HfApi()
    with pytest.raises(hf_errors.RepositoryNotFoundError):
        api.repo_info("nobody/nothing", repo_type="dataset")
    with pytest.raises(hf_errors.RevisionNotFoundError):
        api.repo_info(repo, repo_type="dataset", revision="no-such-branch")
    with pytest.raises(hf_errors.HfHubHTTPError) as err:
        HfApi(token="hf_wrong").create_repo(f"org-{uuid.uuid4().hex[:6]}/x")
    assert err.value.response.status_code == 401
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        add(api, repo, {"README.md": b"---\nconfigs: [\n---\n"})
