"""The catalog: the one table of tunezoo's published artifacts.

Loaders, cards, the CLI and the tests all read this table, so a name can never mean two
things. Each entry pins an artifact to a Hub repo *and* a commit, with the sha256 and size of
every file at that commit; a download is checked against those pins every time it is used.

Names follow timm's ``arch.tag`` and map to repos one to one:

- predictor  ``<arch>.<target>``           -> model repo ``<org>/<arch>.<target>``
- meta-init  ``<arch>.meta-<family>``      -> model repo ``<org>/<arch>.meta-<family>``
- dataset    ``tvm-tuning-records.<target>`` -> one config (folder ``<target>/``) of the
  dataset repo ``<org>/tvm-tuning-records``

The table is a JSON file shipped as package data (``tunezoo/catalog.json``), written only by
the publish functions in :mod:`tunezoo.hub`. ``TUNEZOO_CATALOG`` points tunezoo at another
file (a maintainer's working copy, or a test's). This module needs neither TVM nor the Hub
client.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from tunezoo.targets import KEY_PATTERN

CATALOG_ENV = "TUNEZOO_CATALOG"
PACKAGE_CATALOG = Path(__file__).with_name("catalog.json")
CATALOG_FORMAT = 1

KINDS = ("predictor", "meta-init", "dataset")
DATASET_REPO_NAME = "tvm-tuning-records"
# what a published file may be: weights, configs, tables, cards. Never code, never pickles.
ALLOWED_SUFFIXES = (".json", ".safetensors", ".parquet", ".md")
# the figures a predictor's metrics JSON reports for its test split (see tunezoo.evaluate)
METRIC_NAMES = (
    "top1_score",
    "top5_score",
    "avg_peak_score@5",
    "avg_peak_score@10",
    "pairwise_accuracy",
    "pairwise_accuracy_pooled",
    "kendall_tau",
    "n_workloads",
    "n_candidates",
)
METRIC_PARTS = ("test", "heldout")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PART = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_NAME = re.compile(rf"^({_PART})\.({_PART})$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class CatalogError(ValueError):
    """A catalog file or entry that breaks the table's rules; the message names the entry."""


class UnknownArtifactError(KeyError):
    """A name that is not in the catalog; the message lists the names and the closest one."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class FilePin:
    """What one file must be: its sha256 and its size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class PinnedRevision:
    """An earlier published commit of an artifact, kept so that it can still be verified."""

    revision: str
    files: dict[str, FilePin]


@dataclass(frozen=True)
class Artifact:
    """One published artifact, pinned to a commit of its Hub repo.

    ``metrics`` holds a predictor's evaluation (``{"test": {...}, "baselines": {...}}``) or a
    dataset's counts. ``training_data`` says which dataset revision a model was trained on.
    ``history`` keeps the pins of earlier publications, newest first.
    """

    name: str
    kind: str
    repo: str
    revision: str
    files: dict[str, FilePin]
    target: str | None = None
    family: str | None = None
    feature_version: int | str | None = None
    schema_version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] | None = None
    published_at: str | None = None
    history: tuple[PinnedRevision, ...] = ()

    @property
    def repo_type(self) -> str:
        """``dataset`` for record datasets, ``model`` for predictors and meta-inits."""
        return "dataset" if self.kind == "dataset" else "model"

    def pins_for(self, revision: str) -> dict[str, FilePin] | None:
        """The file pins of ``revision`` if the catalog knows that commit, else None."""
        if revision == self.revision:
            return self.files
        for old in self.history:
            if old.revision == revision:
                return old.files
        return None

    def with_pin(self, revision: str, files: dict[str, FilePin], **changes: Any) -> Artifact:
        """A copy pinned to a new commit; the old pin moves into ``history``."""
        history = self.history
        if revision != self.revision:
            old = PinnedRevision(self.revision, self.files)
            history = (old, *(h for h in self.history if h.revision != revision))
        return replace(self, revision=revision, files=dict(files), history=history, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["history"] = [asdict(h) for h in self.history]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifact:
        """Build an entry, refusing one that breaks the catalog's rules (see validate_entry)."""
        problems = validate_entry(data)
        if problems:
            raise CatalogError(f"catalog entry {data.get('name')!r}: " + "; ".join(problems))
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["files"] = _pins(data["files"])
        fields["history"] = tuple(
            PinnedRevision(h["revision"], _pins(h["files"])) for h in data.get("history") or []
        )
        return cls(**fields)


def _pins(files: dict[str, dict]) -> dict[str, FilePin]:
    return {path: FilePin(pin["sha256"], pin["size"]) for path, pin in sorted(files.items())}


# --------------------------------------------------------------------------------- names


def parse_name(name: str) -> dict[str, str | None]:
    """What a name says: kind, arch, and target (predictor, dataset) or family (meta-init).

    >>> parse_name("segsum-mlp.cuda-a100")["target"]
    'cuda-a100'
    """
    match = _NAME.match(name) if isinstance(name, str) else None
    if match is None:
        raise CatalogError(
            f"artifact name {name!r} is not '<arch>.<target>', '<arch>.meta-<family>' or "
            f"'{DATASET_REPO_NAME}.<target>' (lowercase letters, digits and '-')"
        )
    arch, tag = match.groups()
    if arch == DATASET_REPO_NAME:
        return {"kind": "dataset", "arch": arch, "target": tag, "family": None}
    if tag.startswith("meta-"):
        return {"kind": "meta-init", "arch": arch, "target": None, "family": tag[5:]}
    return {"kind": "predictor", "arch": arch, "target": tag, "family": None}


def repo_for(name: str, org: str) -> str:
    """The Hub repo of an artifact name under ``org``."""
    if parse_name(name)["kind"] == "dataset":
        return f"{org}/{DATASET_REPO_NAME}"
    return f"{org}/{name}"


def split_revision(ref: str) -> tuple[str, str | None]:
    """``name@revision`` -> (name, revision); a bare name has no revision."""
    name, sep, revision = ref.partition("@")
    if sep and not revision:
        raise CatalogError(f"{ref!r}: nothing after '@' (expected name@revision)")
    return name, (revision or None)


# ---------------------------------------------------------------------------- validation


def validate_entry(data: dict[str, Any]) -> list[str]:
    """Every rule an entry breaks, as readable sentences (empty: the entry is sound)."""
    if not isinstance(data, dict):
        return [f"expected an object, got {type(data).__name__}"]
    problems: list[str] = []
    for key in ("name", "kind", "repo", "revision", "files"):
        if key not in data:
            problems.append(f"missing field '{key}'")
    unknown = sorted(set(data) - set(Artifact.__dataclass_fields__))
    if unknown:
        problems.append(f"unknown fields {unknown}")
    if problems:
        return problems
    try:
        parsed = parse_name(data["name"])
    except CatalogError as exc:
        return [str(exc)]
    kind = data["kind"]
    if kind not in KINDS:
        problems.append(f"kind {kind!r} is not one of {list(KINDS)}")
    elif kind != parsed["kind"]:
        problems.append(f"kind {kind!r} but the name says {parsed['kind']!r}")
    for key in ("target", "family"):
        if data.get(key) != parsed[key]:
            problems.append(f"{key} {data.get(key)!r} but the name says {parsed[key]!r}")
    for key in ("target", "family"):
        if data.get(key) is not None and not KEY_PATTERN.match(str(data[key])):
            problems.append(f"{key} {data[key]!r} is not lowercase letters, digits and '-'")
    repo = data["repo"]
    if not isinstance(repo, str) or not _REPO.match(repo):
        problems.append(f"repo {repo!r} is not '<org>/<name>'")
    elif repo.split("/")[1] != (DATASET_REPO_NAME if kind == "dataset" else data["name"]):
        problems.append(f"repo {repo!r} does not match the name {data['name']!r}")
    problems += _check_pin(data["revision"], data["files"], kind, data.get("target"), "")
    for i, old in enumerate(data.get("history") or []):
        if not isinstance(old, dict) or set(old) != {"revision", "files"}:
            problems.append(f"history[{i}] must have exactly 'revision' and 'files'")
            continue
        where = f"history[{i}] "
        problems += _check_pin(old["revision"], old["files"], kind, data.get("target"), where)
    fv = data.get("feature_version")
    if kind in ("predictor", "meta-init"):
        if isinstance(fv, bool) or not isinstance(fv, int | str) or fv in ("", None):
            problems.append("feature_version must be set (an int or a string) for a model")
    elif fv is not None:
        problems.append("feature_version must be null for a dataset (records are raw)")
    if kind == "dataset" and not data.get("schema_version"):
        problems.append("schema_version must be set for a dataset")
    problems += validate_metrics(data.get("metrics", {}), kind)
    td = data.get("training_data")
    if td is not None and not (
        isinstance(td, dict) and ({"repo", "revision"} <= set(td) or "dataset" in td)
    ):
        problems.append(
            "training_data must be null or an object with 'repo' and 'revision' (a Hub "
            "dataset) or 'dataset' (the local dataset folder scripts/ trained on)"
        )
    return problems


def _check_pin(revision: Any, files: Any, kind: str, target: str | None, where: str) -> list[str]:
    problems = []
    if not isinstance(revision, str) or not _COMMIT.match(revision):
        problems.append(f"{where}revision {revision!r} is not a 40-hex commit id")
    if not isinstance(files, dict) or not files:
        return problems + [f"{where}files must be a non-empty object path -> pin"]
    for path, pin in files.items():
        p = PurePosixPath(path)
        if p.is_absolute() or ".." in p.parts or not path or "\\" in path:
            problems.append(f"{where}file {path!r} is not a plain relative path")
        if p.suffix not in ALLOWED_SUFFIXES:
            problems.append(f"{where}file {path!r}: only {list(ALLOWED_SUFFIXES)} are published")
        if kind == "dataset" and path != "README.md" and p.parts[:1] != (target,):
            problems.append(f"{where}file {path!r} is outside the config folder '{target}/'")
        ok = isinstance(pin, dict) and set(pin) == {"sha256", "size"}
        if not ok or not isinstance(pin["sha256"], str) or not _SHA256.match(pin["sha256"]):
            problems.append(f"{where}file {path!r}: pin must be {{sha256: 64 hex, size: int}}")
        elif isinstance(pin["size"], bool) or not isinstance(pin["size"], int) or pin["size"] < 0:
            problems.append(f"{where}file {path!r}: size {pin['size']!r} is not a byte count")
    if kind in ("predictor", "meta-init"):
        for needed in ("config.json", "model.safetensors"):
            if needed not in files:
                problems.append(f"{where}files lack {needed!r}")
    return problems


def validate_metrics(metrics: Any, kind: str = "predictor") -> list[str]:
    """Check a metrics dict: ``test`` and each ``baselines`` entry map metric names to numbers."""
    if not isinstance(metrics, dict):
        return [f"metrics must be an object, got {type(metrics).__name__}"]
    if kind == "dataset":
        bad = [k for k, v in metrics.items() if k != "splits" and not _is_number(v)]
        return [f"dataset metrics {bad} must be counts"] if bad else []
    problems = []
    groups = {part: metrics[part] for part in METRIC_PARTS if part in metrics}
    groups.setdefault("test", {})
    for name, parts in (metrics.get("baselines") or {}).items():
        if isinstance(parts, dict) and any(p in parts for p in METRIC_PARTS):
            groups.update({f"baselines.{name}.{p}": parts[p] for p in METRIC_PARTS if p in parts})
        else:
            groups[f"baselines.{name}"] = parts
    for where, values in groups.items():
        if not isinstance(values, dict):
            problems.append(f"metrics.{where} must be an object of metric -> number")
            continue
        for metric, value in values.items():
            if metric not in METRIC_NAMES:
                problems.append(f"metrics.{where}: unknown metric {metric!r} ({METRIC_NAMES})")
            elif not _is_number(value):
                problems.append(f"metrics.{where}.{metric} is {value!r}, expected a number")
    unknown = sorted(set(metrics) - {*METRIC_PARTS, "baselines", "dataset"})
    if unknown:
        problems.append(f"metrics has unknown keys {unknown} (test, heldout, baselines, dataset)")
    return problems


def catalog_metrics(experiment: dict[str, Any]) -> dict[str, Any]:
    """The catalog's view of a training run's ``metrics.json``: the chosen model's test and
    held-out metrics, and each baseline's, keeping only the known metric names."""

    def keep(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k in METRIC_NAMES and _is_number(v)}

    if not any(p in experiment for p in METRIC_PARTS):
        return experiment  # already in catalog form
    out: dict[str, Any] = {p: keep(experiment[p]) for p in METRIC_PARTS if p in experiment}
    baselines = {
        name: (
            {p: keep(res[p]) for p in METRIC_PARTS if p in res}
            if any(p in res for p in METRIC_PARTS)
            else keep(res)
        )
        for name, res in (experiment.get("baselines") or {}).items()
    }
    if baselines:
        out["baselines"] = baselines
    if "dataset" in experiment:
        out["dataset"] = experiment["dataset"]
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ------------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Catalog:
    """The table, loaded from one JSON file. Immutable: updates return a new catalog."""

    artifacts: tuple[Artifact, ...] = ()
    path: Path | None = None

    def names(self) -> list[str]:
        return [a.name for a in self.artifacts]

    def list(self, kind: str | None = None) -> list[Artifact]:
        if kind is not None and kind not in KINDS:
            raise CatalogError(f"kind {kind!r} is not one of {list(KINDS)}")
        return [a for a in self.artifacts if kind is None or a.kind == kind]

    def get(self, name: str) -> Artifact:
        """The entry called ``name``; unknown names get the closest suggestion and the list."""
        for artifact in self.artifacts:
            if artifact.name == name:
                return artifact
        raise UnknownArtifactError(self._unknown(name, "artifact", self.names()))

    def resolve(self, name_or_target: str, kind: str = "predictor") -> Artifact:
        """An artifact by name, or the ``kind`` artifact of a target key.

        A target key's predictor is the one ``load_predictor`` would choose among this
        catalog's entries (:func:`tunezoo.loading.resolve_predictor`: per-store before
        trace-token, and a CPU with none of its own falls back, with a warning, to the
        nearest CPU of its family; GPUs never do).
        """
        name, _ = split_revision(name_or_target)
        if name in self.names():
            return self.get(name)
        if kind == "predictor":
            from tunezoo.loading import resolve_predictor  # noqa: PLC0415 - loading imports us

            where = resolve_predictor(name, artifacts_dir=_NO_BUNDLED, catalog=self)
            assert where.artifact is not None  # nothing bundled: always a catalog entry
            return where.artifact
        by_target = {a.target: a for a in self.list(kind) if a.target is not None}
        if name in by_target:
            return by_target[name]
        choices = self.names() + sorted(by_target)
        raise UnknownArtifactError(
            self._unknown(name, f"artifact or target with a {kind}", choices)
        )

    def _unknown(self, name: str, what: str, choices: list[str]) -> str:
        close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        known = ", ".join(self.names()) or "none (the catalog is empty)"
        source = f" in {self.path}" if self.path else ""
        return f"Unknown {what} {name!r}{source}.{hint} Available: {known}."

    def with_artifact(self, artifact: Artifact) -> Catalog:
        """A catalog where ``artifact`` replaces the entry of the same name (or is added)."""
        others = [a for a in self.artifacts if a.name != artifact.name]
        return replace(self, artifacts=tuple(sorted([*others, artifact], key=lambda a: a.name)))

    def to_json(self) -> str:
        body = {"format": CATALOG_FORMAT, "artifacts": [a.to_dict() for a in self.artifacts]}
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically (temp file, fsync, rename): a crash never leaves half a table."""
        target = Path(path or self.path or default_catalog_path())
        if target.is_symlink():  # a shared catalog linked in: update it, keep the link
            target = target.resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            # mkstemp makes the file 0600; keep the catalog's mode (others may read it)
            os.chmod(tmp, _mode_for(target))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target


def _mode_for(target: Path) -> int:
    """The permission bits to write ``target`` with: its own, or 0644 for a new catalog
    (readable by everyone, like the one installed with the package)."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644


_NO_BUNDLED = Path("/nonexistent/tunezoo-catalog-only")  # resolution over entries alone


def default_catalog_path() -> Path:
    """``$TUNEZOO_CATALOG`` if set, else the catalog shipped in the package."""
    env = os.environ.get(CATALOG_ENV)
    return Path(env) if env else PACKAGE_CATALOG


def load_catalog(path: str | Path | Catalog | None = None) -> Catalog:
    """Read and check a catalog file (default: :func:`default_catalog_path`).

    A missing file is an empty catalog, so a maintainer's first publish can create it.
    """
    if isinstance(path, Catalog):
        return path
    file = Path(path) if path is not None else default_catalog_path()
    if not file.exists():
        return Catalog((), file)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{file}: not a readable JSON catalog ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CATALOG_FORMAT:
        raise CatalogError(f"{file}: expected {{'format': {CATALOG_FORMAT}, 'artifacts': [...]}}")
    artifacts = []
    for i, entry in enumerate(data.get("artifacts", [])):
        try:
            artifacts.append(Artifact.from_dict(entry))
        except CatalogError as exc:
            raise CatalogError(f"{file}: artifacts[{i}]: {exc}") from exc
    names = [a.name for a in artifacts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CatalogError(f"{file}: names {dupes} appear more than once")
    return Catalog(tuple(artifacts), file)


def list_artifacts(kind: str | None = None, *, catalog: str | Path | Catalog | None = None):
    """All catalog entries, or those of one kind (predictor, meta-init, dataset)."""
    return load_catalog(catalog).list(kind)


def get_artifact(name: str, *, catalog: str | Path | Catalog | None = None) -> Artifact:
    """The entry called ``name`` (``name@rev`` is accepted; the revision is ignored here)."""
    return load_catalog(catalog).get(split_revision(name)[0])


def resolve(
    name_or_target: str, *, kind: str = "predictor", catalog: str | Path | Catalog | None = None
) -> Artifact:
    """An artifact by name, or the ``kind`` artifact for a target key (see Catalog.resolve)."""
    return load_catalog(catalog).resolve(name_or_target, kind)


def record_artifact(artifact: Artifact, *, catalog: str | Path | Catalog | None = None) -> Path:
    """Write ``artifact`` into the catalog file (replacing its older entry); return the path."""
    current = load_catalog(catalog)
    return current.with_artifact(artifact).save()


__all__ = [
    "Artifact",
    "Catalog",
    "CatalogError",
    "FilePin",
    "PinnedRevision",
    "UnknownArtifactError",
    "get_artifact",
    "list_artifacts",
    "load_catalog",
    "parse_name",
    "record_artifact",
    "repo_for",
    "resolve",
    "split_revision",
    "validate_entry",
    "validate_metrics",
]
