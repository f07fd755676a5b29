"""Where an imported database came from: repository, commit, path, licence, TVM version.

The shared ``external-dbs`` folder documents each database in a Markdown table in its
``README.md`` (folder pattern, commit, ..., TVM era) plus one licence sentence. When the
input lies under such a folder, :func:`provenance_for` reads that table, so the importer
can fill ``source`` (``github:owner/repo@commit:path``), ``license`` and ``tvm_version``
without the caller retyping them; explicit arguments always win.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import asdict, dataclass
from pathlib import Path

_SHA = re.compile(r"\b[0-9a-f]{40}\b")
_LICENSE = re.compile(r"under the ([A-Za-z0-9.+-]+) licen[cs]e", re.IGNORECASE)
_VERSION = re.compile(r"\b\d+\.\d+(?:\.\d+)?(?:\.?dev\d*|\.post\d+)?\b")


@dataclass
class Provenance:
    """What the importer needs to fill a record's ``source``, ``license``, ``tvm_version``."""

    repo: str | None = None  # owner/name on GitHub
    commit: str | None = None
    path: str | None = None  # the database directory inside the repository
    license: str | None = None
    tvm_version: str | None = None  # the TVM that wrote the database
    tvm_version_from: str | None = None  # graph | metadata | readme | era | argument

    @property
    def source(self) -> str | None:
        """``github:owner/repo@commit:path`` (parts that are unknown are left out)."""
        if self.repo is None:
            return None
        text = f"github:{self.repo}"
        if self.commit:
            text += f"@{self.commit}"
        if self.path:
            text += f":{self.path}"
        return text

    def to_dict(self) -> dict:
        out = asdict(self)
        out["source"] = self.source
        return out


@dataclass(frozen=True)
class _Row:
    pattern: str  # owner__repo/path glob
    commits: tuple[tuple[str | None, str], ...]  # (sub-path name or None for default, sha)
    tvm_version: str | None


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_readme(text: str) -> tuple[list[_Row], str | None]:
    """The table rows and the licence of an external-dbs README."""
    rows: list[_Row] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        row = dict(zip(header, cells, strict=False))
        folder = re.sub(r"\s*\(.*\)$", "", row.get("folder", "")).strip()
        commit_cell = row.get("commit", "")
        commits: list[tuple[str | None, str]] = []
        for part in commit_cell.split(";"):
            shas = _SHA.findall(part)
            if not shas:
                continue
            named = re.match(r"\s*(\S+)\s+at\s+", part)
            commits.append((named.group(1) if named else None, shas[0]))
        era = row.get("tvm era", "")
        version = _VERSION.search(era)
        rows.append(_Row(folder, tuple(commits), version.group(0) if version else None))
    lic = _LICENSE.search(text)
    return rows, lic.group(1) if lic else None


def _find_readme(src: Path) -> tuple[Path, Path] | None:
    """(README, its folder) of the nearest ancestor of ``src`` that documents databases."""
    for parent in [src, *src.parents]:
        readme = parent / "README.md"
        if readme.is_file() and parent != src:
            try:
                if "| folder" in readme.read_text(encoding="utf-8").lower():
                    return readme, parent
            except OSError:
                return None
    return None


def provenance_for(
    src: str | Path,
    *,
    repo: str | None = None,
    commit: str | None = None,
    path: str | None = None,
    license: str | None = None,  # noqa: A002 - the record column's name
    tvm_version: str | None = None,
) -> Provenance:
    """Provenance of a database directory: explicit arguments, else the README table."""
    prov = Provenance(repo, commit, path, license, tvm_version)
    if tvm_version:
        prov.tvm_version_from = "argument"
    src = Path(src).resolve()
    found = _find_readme(src)
    if found is None:
        return prov
    readme, root = found
    rel = src.relative_to(root).as_posix()
    owner_repo, _, inner = rel.partition("/")
    rows, lic = parse_readme(readme.read_text(encoding="utf-8"))
    listed = owner_repo.replace("__", "/", 1) if "__" in owner_repo else None
    if repo is not None and listed is not None and repo != listed:
        # the caller names another repository (a fork, a re-upload): the README's commit,
        # path and licence describe the listed one, and must not be mixed into it
        return prov
    if "__" in owner_repo:
        prov.repo = prov.repo or owner_repo.replace("__", "/", 1)
        prov.path = prov.path or inner or None
    prov.license = prov.license or lic
    for row in rows:
        if not (fnmatch.fnmatch(rel, row.pattern) or rel == row.pattern):
            continue
        if prov.commit is None and row.commits:
            default = next((sha for name, sha in row.commits if name is None), None)
            named = [sha for name, sha in row.commits if name and name in rel.split("/")]
            prov.commit = named[0] if named else default
        if prov.tvm_version is None and row.tvm_version:
            prov.tvm_version, prov.tvm_version_from = row.tvm_version, "readme"
        break
    return prov
