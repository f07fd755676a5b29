"""Everything tunezoo does with the Hugging Face Hub; the only module that imports its client.

- :func:`download_artifact`: a catalog artifact at its pinned commit, every file checked
  against its sha256 pin each time it is used (from the cache too). A file that fails is
  removed from the cache, so it is never used again, and the error says what to run.
- :func:`publish_model` / :func:`publish_dataset`: maintainers push an artifact with its
  card, then pin the new commit and the files' sha256 in the catalog file.
- :func:`contribute`: a user's records, checked by :mod:`tunezoo.contribution`, without the
  records the dataset already has, as new files in a pull request. Never onto ``main``.

Repos: the dataset ``<org>/tvm-tuning-records`` (one config and folder per target key),
models ``<org>/<arch>.<target>`` and ``<org>/<arch>.meta-<family>``. The org is ``tunezoo``
unless ``TUNEZOO_HUB_ORG`` says otherwise; the endpoint is the client's (``HF_ENDPOINT``,
e.g. a mirror or a test server). Tokens come only from the client's own login or
``HF_TOKEN``; offline mode is the client's ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import huggingface_hub
import pyarrow.parquet as pq
from huggingface_hub import (
    CommitOperationAdd,
    DatasetCard,
    DatasetCardData,
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
    hf_hub_download,
    snapshot_download,
    try_to_load_from_cache,
)
from huggingface_hub import constants as hf_constants
from huggingface_hub import errors as hf_errors
from huggingface_hub.hf_api import RepoFile

from tunezoo import __version__, cards
from tunezoo import catalog as cat
from tunezoo import contribution as contrib
from tunezoo.records import info as records_info
from tunezoo.records import shard_files
from tunezoo.schema import SCHEMA_VERSION
from tunezoo.targets import KEY_PATTERN

ORG_ENV = "TUNEZOO_HUB_ORG"
DEFAULT_ORG = "tunezoo"
MODEL_SUFFIXES = (".json", ".safetensors")
MAX_MODEL_FILE_BYTES = 4 * 1024**3
_CLIENT = {"library_name": "tunezoo", "library_version": __version__}


# ---------------------------------------------------------------------------------- errors


class HubError(Exception):
    """Base of tunezoo's Hub errors; each message says what is wrong and what to do."""


class ArtifactRepoNotFoundError(HubError, hf_errors.RepositoryNotFoundError):
    """The artifact's repo does not exist on this endpoint (or is private to others)."""


class ArtifactRevisionNotFoundError(HubError, hf_errors.RevisionNotFoundError):
    """The repo exists but has no such revision (branch, tag or commit)."""


class ArtifactFileNotFoundError(HubError, hf_errors.RemoteEntryNotFoundError):
    """The revision exists but lacks a file the catalog pins: catalog and Hub disagree."""


class NotCachedError(HubError, hf_errors.LocalEntryNotFoundError):
    """Offline (or ``local_files_only``) and the file is not in the cache."""


class IntegrityError(HubError, OSError):
    """A file whose bytes are not the pinned ones; it has been removed from the cache."""


class ChecksumMismatchError(IntegrityError):
    """The sha256 of a cached or downloaded file differs from its pin (tampered, corrupted)."""


class TruncatedDownloadError(IntegrityError):
    """A download that stopped short of the file's size."""


class HubAccessError(HubError):
    """The Hub refused a write: no token, a read-only token, or the repo moved meanwhile."""


class PublishError(HubError):
    """An artifact that cannot be published as it is; nothing was changed on the Hub."""


class UnpinnedRevisionWarning(UserWarning):
    """A revision the catalog has no sha256 pins for: its files cannot be verified."""


# ---------------------------------------------------------------------------------- naming


def hub_org(org: str | None = None) -> str:
    """The Hub organisation: ``org``, else ``$TUNEZOO_HUB_ORG``, else ``tunezoo``."""
    return org or os.environ.get(ORG_ENV) or DEFAULT_ORG


def dataset_repo_id(org: str | None = None) -> str:
    return f"{hub_org(org)}/{cat.DATASET_REPO_NAME}"


def model_repo_id(name: str, org: str | None = None) -> str:
    """``<org>/<arch>.<target>`` or ``<org>/<arch>.meta-<family>`` for a model name."""
    if cat.parse_name(name)["kind"] == "dataset":
        raise ValueError(f"{name!r} names a dataset config, not a model")
    return cat.repo_for(name, hub_org(org))


def endpoint() -> str:
    """The Hub endpoint the client talks to (``HF_ENDPOINT``, read when it was imported)."""
    return hf_constants.ENDPOINT


def _cache_dir(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else Path(hf_constants.HF_HUB_CACHE)


def _command(artifact: cat.Artifact, revision: str) -> str:
    ref = artifact.name if revision == artifact.revision else f"{artifact.name}@{revision}"
    return f"run: tunezoo download {ref}"


@contextlib.contextmanager
def _translated(
    artifact: cat.Artifact, revision: str, filename: str | None, common: dict[str, Any]
) -> Iterator:
    """Turn the client's errors into tunezoo's, with the artifact, revision and remedy."""
    where = f"{artifact.repo_type} repo {artifact.repo} on {endpoint()}"
    what = f"'{filename}' of {artifact.repo}" if filename else f"{artifact.repo}"
    try:
        yield
    except hf_errors.RevisionNotFoundError as err:
        if revision == artifact.revision:
            remedy = (
                "That is the revision the catalog pins: this endpoint lacks the published "
                "commit (a mirror behind its source, or rewritten history). Point HF_ENDPOINT "
                "at the Hub the catalog was published to, or report this to the tunezoo "
                "maintainers."
            )
        else:
            remedy = (
                f"The catalog pins {artifact.revision}; leave out the revision (or use "
                f"'@{artifact.revision}') to get it."
            )
        raise ArtifactRevisionNotFoundError(
            f"{artifact.name}: revision {revision!r} does not exist in the {where}. {remedy}",
            response=err.response,
        ) from err
    except hf_errors.RepositoryNotFoundError as err:
        raise ArtifactRepoNotFoundError(
            f"{artifact.name}: the {where} does not exist or is private. Check the name, "
            f"HF_ENDPOINT and {ORG_ENV}; for a private repo log in (hf auth login) or set "
            "HF_TOKEN.",
            response=err.response,
        ) from err
    except hf_errors.RemoteEntryNotFoundError as err:
        raise ArtifactFileNotFoundError(
            f"{artifact.name}: {what} does not exist at revision {revision}, but the catalog "
            "lists it; the catalog and the Hub disagree, report this to the tunezoo maintainers.",
            response=err.response,
        ) from err
    except hf_errors.LocalEntryNotFoundError as err:
        if huggingface_hub.is_offline_mode():
            reason = "HF_HUB_OFFLINE=1 forbids downloading it"
        elif common["local_files_only"]:
            reason = "local_files_only=True forbids downloading it"
        else:
            reason = f"the Hub at {endpoint()} could not be reached ({err})"
        raise NotCachedError(
            f"{artifact.name}: {what} at revision {revision} is not in the cache "
            f"({_cache_dir(common['cache_dir'])}) and {reason}. {_command(artifact, revision)} "
            "with network access first."
        ) from err
    except OSError as err:
        # huggingface_hub's http_get raises a bare OSError("Consistency check failed: ...")
        # when fewer bytes arrived than the server announced; nothing else says so.
        if "Consistency check failed" not in str(err):
            raise
        raise TruncatedDownloadError(
            f"{artifact.name}: the download of {what} at {revision} stopped short ({err}). "
            f"Nothing was cached; {_command(artifact, revision)} to try again."
        ) from err


@contextlib.contextmanager
def _writing(repo: str, repo_type: str) -> Iterator:
    """Clear errors for the write calls (publish, contribute)."""
    try:
        yield
    except hf_errors.RepositoryNotFoundError as err:
        raise ArtifactRepoNotFoundError(
            f"the {repo_type} repo {repo} does not exist on {endpoint()} (or is private).",
            response=err.response,
        ) from err
    except hf_errors.HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status in (401, 403):
            raise HubAccessError(
                f"{endpoint()} refused to let this token write to {repo} ({status}): log in "
                "with `hf auth login` or set HF_TOKEN to a token with write access."
            ) from err
        if status == 412:
            raise HubAccessError(
                f"{repo} changed on the Hub while this ran; nothing was uploaded. Run it again."
            ) from err
        raise


# -------------------------------------------------------------------------------- download


def _sha256(path: Path) -> tuple[str, int]:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest(), os.fstat(fh.fileno()).st_size


def _evict(path: Path) -> None:
    """Remove a cached file: its snapshot pointer and the blob it points to."""
    blob = path.resolve() if path.is_symlink() else None
    path.unlink(missing_ok=True)
    if blob is not None:
        blob.unlink(missing_ok=True)


def _artifact_and_revision(
    entry_or_name: cat.Artifact | str, revision: str | None, catalog
) -> tuple[cat.Artifact, str]:
    if isinstance(entry_or_name, cat.Artifact):
        return entry_or_name, revision or entry_or_name.revision
    name, from_name = cat.split_revision(entry_or_name)
    if revision and from_name and revision != from_name:
        raise ValueError(f"two revisions given: {entry_or_name!r} and revision={revision!r}")
    artifact = cat.load_catalog(catalog).get(name)
    return artifact, revision or from_name or artifact.revision


def download_artifact(
    entry_or_name: cat.Artifact | str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    catalog: str | Path | cat.Catalog | None = None,
) -> Path:
    """Download (or find in the cache) a catalog artifact; return its snapshot folder.

    The folder holds the files at the repo's paths: ``config.json`` and
    ``model.safetensors`` for a model; ``README.md`` and ``<target>/...`` for a dataset
    config (``datasets.load_dataset(str(path), name=target)`` reads it, as does
    ``tunezoo.records.read_records(path / target)``).

    ``revision`` (or ``name@revision``) overrides the catalog's pin. The sha256 pins apply
    only to revisions the catalog knows; any other one is downloaded unverified, with an
    :class:`UnpinnedRevisionWarning`.
    """
    artifact, rev = _artifact_and_revision(entry_or_name, revision, catalog)
    if force_download and (local_files_only or huggingface_hub.is_offline_mode()):
        raise ValueError(
            "force_download needs the network, but local_files_only or HF_HUB_OFFLINE=1 is set"
        )
    pins = artifact.pins_for(rev)
    common = {
        "repo_type": artifact.repo_type,
        "revision": rev,
        "cache_dir": cache_dir,
        "local_files_only": local_files_only,
        "force_download": force_download,
        **_CLIENT,
    }
    if pins is None:
        warnings.warn(
            UnpinnedRevisionWarning(
                f"{artifact.name}: the catalog has no sha256 pins for revision {rev!r} (it pins "
                f"{artifact.revision}); its files are downloaded but cannot be verified."
            ),
            stacklevel=2,
        )
        patterns = [f"{artifact.target}/**", "README.md"] if artifact.kind == "dataset" else None
        with _translated(artifact, rev, None, common):
            return Path(snapshot_download(artifact.repo, allow_patterns=patterns, **common))
    root = None
    for filename, pin in pins.items():
        path = _download_verified(artifact, filename, pin, common)
        root = path.parents[len(PurePosixPath(filename).parts) - 1]
    assert root is not None  # the catalog refuses entries without files
    return root


def _download_verified(artifact: cat.Artifact, filename: str, pin: cat.FilePin, common) -> Path:
    """One file, checked against its pin; a file that fails is removed from the cache."""
    rev, cache_dir = common["revision"], common["cache_dir"]
    cached = try_to_load_from_cache(
        artifact.repo, filename, cache_dir=cache_dir, revision=rev, repo_type=artifact.repo_type
    )
    from_cache = isinstance(cached, str) and not common["force_download"]
    with _translated(artifact, rev, filename, common):
        path = Path(hf_hub_download(artifact.repo, filename, **common))
    digest, size = _sha256(path)
    if digest == pin.sha256 and size == pin.size:
        return path
    _evict(path)
    got = f"{size} bytes, sha256 {digest}"
    want = f"{pin.size} bytes, sha256 {pin.sha256}"
    if not from_cache and size < pin.size:
        raise TruncatedDownloadError(
            f"{artifact.name}: the download of '{filename}' at {rev} stopped short ({got}; "
            f"the catalog pins {want}). It was removed from the cache; "
            f"{_command(artifact, rev)} to try again."
        )
    if from_cache:
        story = (
            f"the cached copy {path} was modified or corrupted after it was downloaded "
            f"({got}; the catalog pins {want}). It was removed from the cache and will not be "
            f"used; {_command(artifact, rev)} to fetch it again."
        )
    else:
        story = (
            f"{endpoint()} served content that is not what was published ({got}; the catalog "
            f"pins {want}). It was removed from the cache. Do not use this mirror for "
            f"{artifact.name}; report it to the tunezoo maintainers."
        )
    raise ChecksumMismatchError(f"{artifact.name}: '{filename}': {story}")


# ----------------------------------------------------------------------------------- cards


def render_card(spec: cards.CardSpec) -> str:
    """A card's text from its spec, with the client's card classes and our template."""
    if spec.kind == "model":
        results = [EvalResult(**r) for r in spec.eval_results] or None
        data = ModelCardData(**spec.card_data, eval_results=results)
        card = ModelCard.from_template(
            data, template_path=str(spec.template_path), **spec.template_values
        )
    else:
        data = DatasetCardData(**spec.card_data)
        card = DatasetCard.from_template(
            data, template_path=str(spec.template_path), **spec.template_values
        )
    return str(card)


# --------------------------------------------------------------------------------- publish


@dataclass(frozen=True)
class PublishResult:
    """A publication: the commit on the Hub and the catalog entry that now pins it."""

    artifact: cat.Artifact
    commit: str
    commit_url: str
    catalog_path: Path


def _api() -> HfApi:
    return HfApi(**_CLIENT)  # the token: the client's login or HF_TOKEN, never ours to pass


def _git_oid(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _verify_remote(
    api: HfApi,
    repo: str,
    repo_type: str,
    revision: str,
    local: dict[str, Path],
    pins: dict[str, cat.FilePin],
) -> dict[str, cat.FilePin]:
    """``pins`` (of the ``local`` files, hashed before the upload), after checking that
    the commit holds exactly those bytes."""
    remote = _remote_files(api, repo, revision, repo_type)
    wrong = []
    for path, file in sorted(local.items()):
        digest, size = pins[path].sha256, pins[path].size
        entry = remote.get(path)
        if entry is None:
            wrong.append(f"{path}: missing")
        elif entry.lfs is not None and (entry.lfs.sha256, entry.lfs.size) != (digest, size):
            wrong.append(f"{path}: the Hub has sha256 {entry.lfs.sha256}, {entry.lfs.size} bytes")
        elif entry.lfs is None and entry.blob_id != _git_oid(file):
            wrong.append(f"{path}: the Hub has git blob {entry.blob_id}")
    if wrong:
        raise PublishError(
            f"{repo}@{revision} does not hold the files that were uploaded; the catalog was not "
            "changed:\n" + "\n".join(f"- {w}" for w in wrong)
        )
    return pins


def _catalog_entry(
    current: cat.Catalog,
    name: str,
    repo: str,
    revision: str,
    pins: dict[str, cat.FilePin],
    **fields: Any,
) -> cat.Artifact:
    """The entry ``name`` pinned at ``revision`` (earlier pins move to its history), checked.

    Called once before anything is uploaded (with a placeholder revision and the local
    files' pins), so an entry the catalog would refuse stops the publication while the Hub
    is still untouched, and once after, with the commit.
    """
    old = next((a for a in current.artifacts if a.name == name), None)
    if old is not None and old.repo != repo:
        raise PublishError(
            f"the catalog ({current.path or cat.default_catalog_path()}) has {name!r} in "
            f"{old.repo}, not {repo}; publishing there would drop its pinned revisions. "
            f"Publish with the same organisation (org= / ${ORG_ENV}), or use another catalog "
            "(catalog= / $TUNEZOO_CATALOG)."
        )
    fields["published_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if old is not None:
        artifact = old.with_pin(revision, pins, **fields)
    else:
        artifact = cat.Artifact(name=name, repo=repo, revision=revision, files=pins, **fields)
    problems = cat.validate_entry(artifact.to_dict())
    if problems:
        raise PublishError(
            f"catalog entry {name!r} would be invalid, so nothing was published: "
            + "; ".join(problems)
        )
    return artifact


_UNPUBLISHED = "0" * 40  # the placeholder revision of the check before uploading


def _local_pins(files: dict[str, Path]) -> dict[str, cat.FilePin]:
    return {path: cat.FilePin(*_sha256(file)) for path, file in files.items()}


def _record(
    name: str, repo: str, revision: str, pins: dict[str, cat.FilePin], catalog, **fields: Any
) -> tuple[cat.Artifact, Path]:
    """Pin ``revision`` in the catalog entry ``name`` and save the catalog (read, changed
    and written under a lock, so two publications at once both land)."""
    path = Path(catalog) if catalog is not None else cat.default_catalog_path()
    path = path.resolve() if path.is_symlink() else path  # one lock for the shared file
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = cat.load_catalog(path)
        artifact = _catalog_entry(current, name, repo, revision, pins, **fields)
        return artifact, current.with_artifact(artifact).save()


def publish_model(
    artifact_dir: str | Path,
    name: str,
    *,
    metrics: dict[str, Any] | None = None,
    feature_version: int | str | None = None,
    training_data: dict[str, Any] | None = None,
    org: str | None = None,
    catalog: str | Path | None = None,
    commit_message: str | None = None,
    license: str = "apache-2.0",  # noqa: A002 - the card field's name
    private: bool = False,
) -> PublishResult:
    """Push a predictor or meta-initialisation with its card; pin the commit in the catalog.

    ``artifact_dir`` holds ``config.json`` and ``model.safetensors`` (and optionally
    ``metrics.json``: ``{"test": {metric: value}, "baselines": {name: {metric: value}}}``).
    Metrics, feature version and training data default to ``metrics.json`` and the
    ``feature_version`` / ``training_data`` keys of ``config.json``.
    """
    parsed = cat.parse_name(name)
    if parsed["kind"] == "dataset":
        raise PublishError(f"{name!r} is a dataset config; use publish_dataset")
    src = Path(artifact_dir)
    if not src.is_dir():
        raise PublishError(f"{src}: no such artifact directory")
    files = sorted(p for p in src.iterdir() if p.name != "README.md")
    problems = [
        reason
        for p in files
        if (
            reason := contrib.check_file(p, suffixes=MODEL_SUFFIXES, max_bytes=MAX_MODEL_FILE_BYTES)
        )
    ]
    for needed in ("config.json", "model.safetensors"):
        if not (src / needed).is_file():
            problems.append(f"{src}: no {needed}")
    if problems:
        raise PublishError("cannot publish " + name + ":\n" + "\n".join(f"- {p}" for p in problems))
    try:
        config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PublishError(f"{src / 'config.json'}: not JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise PublishError(
            f"{src / 'config.json'}: a {type(config).__name__}, expected an object (the "
            "config Predictor.save writes)"
        )
    trained_for = config.get("target_key")
    if parsed["target"] and trained_for and trained_for != parsed["target"]:
        raise PublishError(
            f"{name}: config.json says the model is for {trained_for!r}, the name says "
            f"{parsed['target']!r}; publish it as '{parsed['arch']}.{trained_for}'"
        )
    if metrics is None:
        metrics_file = src / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    raw_metrics = metrics
    metrics = cat.catalog_metrics(metrics)
    if feature_version is None:
        feature_version = config.get("feature_version")
    if feature_version is None:
        raise PublishError(f"{name}: no feature_version in config.json; pass feature_version=")
    training_data = training_data or config.get("training_data")
    if not training_data:  # trained by scripts/ on a local dataset
        training_data = cards.training_data_from_metrics(raw_metrics)
    problems = cat.validate_metrics(metrics)
    if problems:
        raise PublishError(f"{name}: bad metrics: " + "; ".join(problems))
    repo = model_repo_id(name, org)
    spec = cards.model_card_spec(
        name=name,
        repo_id=repo,
        kind=parsed["kind"],
        target=parsed["target"],
        family=parsed["family"],
        config=config,
        metrics=metrics,
        feature_version=feature_version,
        training_data=training_data,
        license=license,
        evaluation=raw_metrics.get("evaluation"),
    )
    readme = render_card(spec).encode()
    entry_fields = {
        "kind": parsed["kind"],
        "target": parsed["target"],
        "family": parsed["family"],
        "feature_version": feature_version,
        "metrics": metrics,
        "training_data": training_data,
    }
    local = {p.name: p for p in files}
    local_pins = _local_pins(local)
    _catalog_entry(cat.load_catalog(catalog), name, repo, _UNPUBLISHED, local_pins, **entry_fields)
    api = _api()
    ops = [CommitOperationAdd(p.name, str(p)) for p in files]
    ops.append(CommitOperationAdd("README.md", readme))
    with _writing(repo, "model"):
        api.create_repo(repo, repo_type="model", exist_ok=True, private=private)
        info = api.create_commit(
            repo, ops, commit_message=commit_message or f"Publish {name}", repo_type="model"
        )
    pins = _verify_remote(api, repo, "model", info.oid, local, local_pins)
    artifact, path = _record(name, repo, info.oid, pins, catalog, **entry_fields)
    return PublishResult(artifact, info.oid, info.commit_url, path)


def _remote_files(api: HfApi, repo: str, revision: str, repo_type: str) -> dict[str, RepoFile]:
    return {
        f.path: f
        for f in api.list_repo_tree(repo, recursive=True, revision=revision, repo_type=repo_type)
        if isinstance(f, RepoFile)
    }


def _same_content(remote: RepoFile, local: Path) -> bool:
    if remote.lfs is not None:
        return (remote.lfs.sha256, remote.lfs.size) == _sha256(local)
    return remote.blob_id == _git_oid(local)


def _fetch(repo: str, paths: list[str], revision: str, cache_dir) -> dict[str, Path]:
    """Files of the dataset repo at one commit, through the cache."""
    return {
        p: Path(
            hf_hub_download(
                repo, p, repo_type="dataset", revision=revision, cache_dir=cache_dir, **_CLIENT
            )
        )
        for p in paths
    }


def _read_info(path: Path) -> dict[str, Any]:
    """A target's info.json, for the card's counts only; anything malformed shows as empty."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out = {k: data[k] if isinstance(data.get(k), dict) else {} for k in ("info", "collection")}
    if not _counts_readable(out["info"]):
        out["info"] = {}
    return out


def _counts_readable(info: dict[str, Any]) -> bool:
    """Whether an info.json's counts are what the card adds up (ints, dicts of ints)."""

    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    def counts(v: Any) -> bool:
        return isinstance(v, dict) and all(count(x) for x in v.values())

    return (
        all(count(info[k]) for k in ("records", "workloads") if k in info)
        and all(counts(info[k]) for k in ("splits", "failed") if k in info)
        and isinstance(info.get("models", {}), dict)
    )


def publish_dataset(
    dataset_dir: str | Path,
    target_key: str,
    *,
    org: str | None = None,
    catalog: str | Path | None = None,
    collection: dict[str, Any] | None = None,
    commit_message: str | None = None,
    license: str = "apache-2.0",  # noqa: A002 - the card field's name
    cache_dir: str | Path | None = None,
) -> PublishResult:
    """Push a target's record shards to the dataset repo, refresh the card, pin the commit.

    Shards are append-only: a shard already on the Hub is skipped when identical and
    refused when different. Shards on the Hub that are not in ``dataset_dir`` (merged
    contributions) stay and count in the card. ``collection`` (builder, runner, trials...)
    is shown on the card; left out, the previous settings are kept.
    """
    if not KEY_PATTERN.match(target_key or ""):
        raise PublishError(f"target key {target_key!r} is not lowercase letters, digits and '-'")
    src = Path(dataset_dir)
    shards = {
        f"{target_key}/{kind}/{f.name}": f
        for kind in ("records", "workloads")
        for f in shard_files(src, kind)
    }
    if not shards:
        raise PublishError(f"{src}: no records/*.parquet or workloads/*.parquet shards")
    repo = dataset_repo_id(org)
    api = _api()
    with tempfile.TemporaryDirectory(prefix="tunezoo-publish-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            contrib.check_contribution(
                list(shards.values()),
                target_key,
                staging_dir=tmp / "stage",
                max_total_bytes=2**62,
                label="Publication",
            )
        except contrib.ContributionError as exc:
            raise PublishError(str(exc)) from exc
        with _writing(repo, "dataset"):
            api.create_repo(repo, repo_type="dataset", exist_ok=True)
            head = api.repo_info(repo, repo_type="dataset", revision="main").sha
        remote = _remote_files(api, repo, head, "dataset")
        changed = [p for p, f in shards.items() if p in remote and not _same_content(remote[p], f)]
        if changed:
            raise PublishError(
                f"{repo}: {changed} exist on the Hub with other content. Shards are append-only: "
                "write new records into a new shard instead of rewriting one."
            )
        prefix = f"{target_key}/"
        remote_only = [
            p for p in remote if p.startswith(prefix) and p.endswith(".parquet") and p not in shards
        ]
        infos = [p for p in remote if p.endswith("/info.json") and p.count("/") == 1]
        fetched = _fetch(repo, remote_only + infos, head, cache_dir)
        all_shards = {**shards, **{p: fetched[p] for p in remote_only}}
        view = tmp / "view"
        for path, file in all_shards.items():
            link = view / path[len(prefix) :]
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(file.resolve(), link)
        counts = records_info(view)
        counts.pop("path", None)
        targets = {p.split("/")[0]: _read_info(fetched[p]) for p in infos}
        previous = targets.get(target_key, {}).get("collection")
        targets[target_key] = {
            "target": target_key,
            "schema_version": SCHEMA_VERSION,
            "info": counts,
            "collection": collection if collection is not None else (previous or {}),
        }
        info_file = tmp / "info.json"
        info_file.write_text(json.dumps(targets[target_key], indent=2, sort_keys=True) + "\n")
        files = set(remote) | set(all_shards) | {f"{prefix}info.json"}
        spec = cards.dataset_card_spec(repo_id=repo, files=files, targets=targets, license=license)
        readme = tmp / "README.md"
        readme.write_text(render_card(spec), encoding="utf-8")
        stats = {"records": counts["records"], "workloads": counts["workloads"]}
        name = f"{cat.DATASET_REPO_NAME}.{target_key}"
        entry_fields = {
            "kind": "dataset",
            "target": target_key,
            "schema_version": SCHEMA_VERSION,
            "metrics": {**stats, "splits": counts["splits"]},
        }
        local = {**all_shards, f"{prefix}info.json": info_file, "README.md": readme}
        local_pins = _local_pins(local)
        _catalog_entry(
            cat.load_catalog(catalog), name, repo, _UNPUBLISHED, local_pins, **entry_fields
        )
        new = {p: f for p, f in shards.items() if p not in remote}
        ops = [CommitOperationAdd(p, str(f)) for p, f in sorted(new.items())]
        ops += [
            CommitOperationAdd(f"{prefix}info.json", str(info_file)),
            CommitOperationAdd("README.md", str(readme)),
        ]
        message = commit_message or f"Publish {len(new)} new shard(s) for {target_key}"
        with _writing(repo, "dataset"):
            commit = api.create_commit(
                repo, ops, commit_message=message, repo_type="dataset", parent_commit=head
            )
        pins = _verify_remote(api, repo, "dataset", commit.oid, local, local_pins)
    artifact, path = _record(name, repo, commit.oid, pins, catalog, **entry_fields)
    return PublishResult(artifact, commit.oid, commit.commit_url, path)


# ------------------------------------------------------------------------------ contribute


@dataclass(frozen=True)
class ContributionResult:
    """The pull request opened (``pr_url`` is None when there was nothing new to send)."""

    pr_url: str | None
    pr_revision: str | None
    plan: contrib.ContributionPlan

    @property
    def message(self) -> str:
        if self.pr_url is None:
            return self.plan.summary()
        return f"{self.plan.summary()} Pull request: {self.pr_url}"


def _record_ids(repo: str, remote: dict[str, RepoFile], target_key: str, head: str, cache_dir):
    shards = [
        p for p in remote if p.startswith(f"{target_key}/records/") and p.endswith(".parquet")
    ]
    ids: set[str] = set()
    for path in _fetch(repo, shards, head, cache_dir).values():
        ids.update(pq.read_table(path, columns=["record_id"])[0].to_pylist())
    return ids


def hub_record_ids(
    target_key: str, *, org: str | None = None, revision: str = "main", cache_dir=None
) -> tuple[set[str], str]:
    """The record ids the dataset has for a target at ``revision``, and that commit's id.

    Reads only the ``record_id`` column of each shard (shards come through the cache).
    """
    repo = dataset_repo_id(org)
    api = _api()
    with _writing(repo, "dataset"):
        head = api.repo_info(repo, repo_type="dataset", revision=revision).sha
        remote = _remote_files(api, repo, head, "dataset")
        return _record_ids(repo, remote, target_key, head, cache_dir), head


def contribute(
    source: str | Path | list[str | Path],
    target_key: str,
    *,
    org: str | None = None,
    contributor: str | None = None,
    title: str | None = None,
    cache_dir: str | Path | None = None,
    max_file_bytes: int = contrib.MAX_FILE_BYTES,
    max_total_bytes: int = contrib.MAX_TOTAL_BYTES,
) -> ContributionResult:
    """Open a pull request that adds a contribution's new records to the Hub dataset.

    ``source`` is a dataset directory of shards, a list of shard files, or a MetaSchedule
    work_dir (converted with ``tunezoo.convert.import_database``, which needs TVM). Every
    check of :func:`tunezoo.contribution.check_contribution` runs first; records the dataset
    has on ``main`` are left out; the rest goes up as new files in one pull request whose
    description lists the counts and the validator's findings. ``main`` and existing
    files are never touched.
    """
    repo = dataset_repo_id(org)
    with tempfile.TemporaryDirectory(prefix="tunezoo-contribute-") as tmp_name:
        tmp = Path(tmp_name)
        if not isinstance(source, list | tuple):
            source = contrib.import_if_database(
                source, target_key, tmp / "imported", contributor=contributor
            )
        checked = contrib.check_contribution(
            source,
            target_key,
            staging_dir=tmp / "stage",
            max_file_bytes=max_file_bytes,
            max_total_bytes=max_total_bytes,
        )
        api = _api()
        with _writing(repo, "dataset"):
            head = api.repo_info(repo, repo_type="dataset", revision="main").sha
            remote = _remote_files(api, repo, head, "dataset")
            existing = _record_ids(repo, remote, target_key, head, cache_dir)
        plan = contrib.plan_contribution(
            checked, target_key, existing, tmp / "new", base_revision=head, contributor=contributor
        )
        if not plan.new_records:
            return ContributionResult(None, None, plan)
        taken = [p for _, p in plan.uploads if p in remote]
        if taken:
            raise contrib.ContributionError(
                f"{taken} already exist in {repo}; a contribution never replaces a file."
            )
        ops = [CommitOperationAdd(path, str(local)) for local, path in plan.uploads]
        with _writing(repo, "dataset"):
            commit = api.create_commit(
                repo,
                ops,
                commit_message=title or f"Add {plan.new_records} records for {target_key}",
                commit_description=plan.description(),
                repo_type="dataset",
                create_pr=True,
                parent_commit=head,
            )
    return ContributionResult(commit.pr_url, commit.pr_revision, plan)


__all__ = [
    "ArtifactFileNotFoundError",
    "ArtifactRepoNotFoundError",
    "ArtifactRevisionNotFoundError",
    "ChecksumMismatchError",
    "ContributionResult",
    "HubAccessError",
    "HubError",
    "IntegrityError",
    "NotCachedError",
    "PublishError",
    "PublishResult",
    "TruncatedDownloadError",
    "UnpinnedRevisionWarning",
    "contribute",
    "dataset_repo_id",
    "download_artifact",
    "hub_org",
    "hub_record_ids",
    "model_repo_id",
    "publish_dataset",
    "publish_model",
    "render_card",
]
