"""A Hugging Face Hub-compatible HTTP server for the tests: real HTTP on 127.0.0.1, files on disk.

It speaks the part of the Hub protocol that ``huggingface_hub`` 2.4.0 uses when tunezoo
publishes, downloads and contributes (the client's own source is the spec):

- ``POST /api/repos/create``; ``GET /api/{type}s/{repo}[/revision/{rev}]`` (repo info)
- ``POST /api/{type}s/{repo}/preupload/{rev}``: the server decides what is LFS
- ``POST /{prefix}{repo}.git/info/lfs/objects/batch`` then ``PUT`` (+ verify): LFS uploads
  (the client takes this path with ``HF_HUB_DISABLE_XET=1``)
- ``POST /api/{type}s/{repo}/commit/{rev}[?create_pr=1]``: NDJSON header/file/lfsFile/deleted*
- ``GET|HEAD /{prefix}{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag``,
  ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, and single ``Range: bytes=N-`` requests
- ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]``, ``/refs``, ``/commits/{rev}``
- ``POST /api/{type}s/{repo}/paths-info/{rev}`` (form ``paths=...``): what mirrors such as
  olah ask before they proxy a ``resolve`` download
- discussions and pull requests: create, details, merge, status; ``refs/pr/N`` revisions
- ``POST /api/validate-yaml`` (the client checks a README's metadata before committing)

Errors carry the ``X-Error-Code`` header (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``) that the client maps to its typed errors. Every commit is an immutable
snapshot of the whole file tree with a sha1 id. Writes need ``Authorization: Bearer <token>``.

Test hooks (not part of the Hub protocol): ``server.truncate`` holds ``(repo_id, path)`` pairs
whose GET body is cut in half while HEAD still announces the full size, to simulate a
download that stopped short; ``server.log`` lists every request as (method, path).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

LFS_SUFFIXES = (".parquet", ".safetensors", ".arrow", ".bin", ".pt", ".pth", ".pkl", ".zip", ".npz")
LFS_MIN_SIZE = 10 * 1024 * 1024  # larger files are LFS whatever their name (as on the Hub)
TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


class HubError(Exception):
    """An error answer: HTTP status, message and the Hub's ``X-Error-Code``."""

    def __init__(self, status: int, message: str, code: str | None = None, **headers: str):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int
    lfs: bool
    git_oid: str  # of the content, or of the LFS pointer file for LFS blobs

    @classmethod
    def of(cls, data: bytes, lfs: bool) -> Blob:
        sha = hashlib.sha256(data).hexdigest()
        return cls(sha, len(data), lfs, _git_oid(_lfs_pointer(sha, len(data)) if lfs else data))


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    tree: dict[str, Blob]
    title: str
    message: str
    date: str


@dataclass
class Discussion:
    num: int
    title: str
    description: str
    is_pr: bool
    author: str
    created_at: str
    base_oid: str | None = None  # a PR's base: the branch head when it was opened
    status: str = "open"
    merge_commit: str | None = None
    events: list[dict] = field(default_factory=list)


@dataclass
class Repo:
    type: str
    id: str
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/main" -> commit oid
    discussions: list[Discussion] = field(default_factory=list)

    @property
    def url_path(self) -> str:
        return TYPE_PREFIX[self.type] + self.id

    def resolve(self, rev: str) -> Commit:
        for ref in (rev, f"refs/heads/{rev}", f"refs/tags/{rev}"):
            if ref in self.refs:
                return self.commits[self.refs[ref]]
        if rev in self.commits:
            return self.commits[rev]
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")


class HubState:
    """Repos, commits and LFS objects. Blob bytes live on disk, addressed by sha256."""

    def __init__(self, root: Path, token: str, user: str = "tunezoo-tests"):
        self.root, self.token, self.user = root, token, user
        self.objects = root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.uploads: dict[str, tuple[str, int]] = {}  # one-time upload token -> (oid, size)
        self.lock = threading.RLock()

    # -- blobs and commits
    def store(self, data: bytes, lfs: bool) -> Blob:
        blob = Blob.of(data, lfs)
        path = self.objects / blob.sha256
        if not path.exists():
            tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return blob

    def read(self, blob: Blob) -> bytes:
        return (self.objects / blob.sha256).read_bytes()

    def commit(
        self, repo: Repo, parent: Commit | None, tree: dict, title: str, message: str
    ) -> Commit:
        date = _now()
        listing = json.dumps(sorted((p, b.sha256) for p, b in tree.items()))
        payload = f"{parent.oid if parent else ''}\n{listing}\n{title}\n{message}\n{date}"
        oid = hashlib.sha1(payload.encode()).hexdigest()
        commit = Commit(oid, parent.oid if parent else None, dict(tree), title, message, date)
        repo.commits[oid] = commit
        return commit

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = Repo(repo_type, repo_id)
        attrs = self.store(b"*.parquet filter=lfs diff=lfs merge=lfs -text\n", lfs=False)
        init = self.commit(repo, None, {".gitattributes": attrs}, "initial commit", "")
        repo.refs["refs/heads/main"] = init.oid
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def event(self, kind: str, data: dict) -> dict:
        return {
            "id": secrets.token_hex(12),
            "type": kind,
            "createdAt": _now(),
            "author": {"name": self.user},
            "data": data,
        }

    def open_discussion(self, repo: Repo, title: str, description: str, is_pr: bool) -> Discussion:
        num = len(repo.discussions) + 1
        comment = {"edited": False, "hidden": False, "latest": {"raw": description}}
        disc = Discussion(num, title, description, is_pr, self.user, _now())
        disc.events.append(self.event("comment", comment))
        if is_pr:
            main = repo.resolve("main")
            disc.base_oid = main.oid
            repo.refs[f"refs/pr/{num}"] = main.oid
        repo.discussions.append(disc)
        return disc

    def merge(self, repo: Repo, disc: Discussion) -> Commit:
        """Apply the PR's changes (its head against its base) onto the current main."""
        if not disc.is_pr or disc.status != "open":
            raise HubError(400, f"#{disc.num} is not an open pull request")
        base = repo.commits[disc.base_oid].tree
        head = repo.resolve(f"refs/pr/{disc.num}").tree
        main = repo.resolve("main")
        changed = {p for p in set(base) | set(head) if base.get(p) != head.get(p)}
        conflicts = sorted(p for p in changed if main.tree.get(p) not in (base.get(p), head.get(p)))
        if conflicts:
            raise HubError(409, f"Merge conflict in {conflicts}")
        tree = dict(main.tree)
        for p in changed:
            if p in head:
                tree[p] = head[p]
            else:
                tree.pop(p, None)
        merged = self.commit(repo, main, tree, f"{disc.title} (#{disc.num})", disc.description)
        repo.refs["refs/heads/main"] = merged.oid
        disc.status, disc.merge_commit = "merged", merged.oid
        disc.events.append(self.event("status-change", {"status": "merged"}))
        return merged


class HubHandler(BaseHTTPRequestHandler):
    """One request. Routes are matched on the raw path so %2F inside a revision survives."""

    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass

    # -- plumbing
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _authorize(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.server.state.token}":
            raise HubError(401, "Invalid credentials in Authorization header")

    def _dispatch(self) -> None:
        body = self._body() if self.command in ("POST", "PUT") else b""
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            with self.server.state.lock:
                self._route(url.path, query, body)
        except HubError as err:
            headers = {"X-Error-Message": str(err), **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._json({"error": str(err)}, err.status, headers)

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def _route(self, raw_path: str, query: dict, body: bytes) -> None:
        seg = raw_path.strip("/").split("/")
        parts = [unquote(s) for s in seg]
        self.server.log.append((self.command, unquote(self.path)))
        if parts[:3] == ["api", "repos", "create"]:
            return self._create_repo(json.loads(body))
        if parts[:2] == ["api", "validate-yaml"]:
            return self._validate_yaml(json.loads(body))
        if parts[0] == "_lfs":
            return self._lfs_transfer(parts, body)
        if parts[0] == "api" and len(parts) >= 4 and parts[1] in PLURAL:
            repo = self.server.state.repo(PLURAL[parts[1]], f"{parts[2]}/{parts[3]}")
            return self._api(repo, parts[4:], query, body)
        repo_type = PLURAL.get(parts[0], "model") if parts[0] in ("datasets", "spaces") else "model"
        rest = parts[1:] if repo_type != "model" else parts
        if (
            len(rest) >= 2
            and rest[1].endswith(".git")
            and rest[2:] == ["info", "lfs", "objects", "batch"]
        ):
            repo = self.server.state.repo(repo_type, f"{rest[0]}/{rest[1][:-4]}")
            return self._lfs_batch(repo, json.loads(body))
        if len(rest) >= 5 and rest[2] == "resolve":
            repo = self.server.state.repo(repo_type, f"{rest[0]}/{rest[1]}")
            return self._resolve(repo, rest[3], "/".join(rest[4:]))
        raise HubError(404, f"No route for {self.command} {raw_path}")

    # -- repos and info
    def _create_repo(self, payload: dict) -> None:
        self._authorize()
        repo_type = payload.get("type") or "model"
        name, org = payload["name"], payload.get("organization") or self.server.state.user
        repo_id = f"{org}/{name}"
        url = f"{self.server.url}/{TYPE_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.server.state.repos:  # the Hub answers 409 with the url
            self._json({"error": f"You already created this {repo_type} repo", "url": url}, 409)
            return
        self.server.state.create_repo(repo_type, repo_id)
        self._json({"url": url, "name": repo_id})

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        try:
            meta = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as exc:
            self._json({"errors": [{"message": str(exc)}], "warnings": []}, 400)
            return
        warnings = [] if meta else [{"message": "empty or missing yaml metadata"}]
        self._json({"errors": [], "warnings": warnings})

    def _api(self, repo: Repo, rest: list[str], query: dict, body: bytes) -> None:
        state = self.server.state
        head = rest[0] if rest else ""
        if head in ("", "revision") and self.command == "GET":
            commit = repo.resolve(rest[1] if head else "main")
            siblings = [{"rfilename": p} for p in sorted(commit.tree)]
            info = {"id": repo.id, "sha": commit.oid, "private": False, "siblings": siblings}
            return self._json(
                {**info, "lastModified": commit.date, "author": repo.id.split("/")[0]}
            )
        if head == "preupload":
            self._authorize()
            tree = repo.resolve(rest[1]).tree
            return self._json(
                {"files": [self._upload_mode(f, tree) for f in json.loads(body)["files"]]}
            )
        if head == "commit":
            self._authorize()
            return self._commit(repo, rest[1], body, query.get("create_pr") == "1")
        if head == "tree":
            commit = repo.resolve(rest[1])
            return self._tree(repo, commit, "/".join(rest[2:]), query)
        if head == "paths-info" and self.command == "POST":
            commit = repo.resolve(rest[1])
            return self._paths_info(commit, parse_qs(body.decode()).get("paths", []))
        if head == "refs":
            return self._refs(repo, query.get("include_prs") == "1")
        if head == "commits":
            commits, oid = [], repo.resolve(rest[1]).oid
            while oid is not None:
                c = repo.commits[oid]
                commits.append(
                    {"id": c.oid, "title": c.title, "message": c.message, "date": c.date}
                    | {"authors": [{"user": state.user}]}
                )
                oid = c.parent
            return self._json(commits)
        if head == "discussions":
            return self._discussions(repo, rest[1:], json.loads(body) if body else {})
        raise HubError(404, f"No route for {self.command} /api/.../{'/'.join(rest)}")

    def _refs(self, repo: Repo, include_prs: bool) -> None:
        def listing(prefix: str, strip: bool) -> list[dict]:
            return [
                {"name": ref[len(prefix) :] if strip else ref, "ref": ref, "targetCommit": oid}
                for ref, oid in sorted(repo.refs.items())
                if ref.startswith(prefix)
            ]

        refs = {"branches": listing("refs/heads/", True), "tags": listing("refs/tags/", True)}
        refs["converts"] = []
        if include_prs:
            refs["pullRequests"] = listing("refs/pr/", False)
        self._json(refs)

    def _tree(self, repo: Repo, commit: Commit, path: str, query: dict) -> None:
        recursive = query.get("recursive", "false").lower() in ("1", "true")
        prefix = f"{path}/" if path else ""
        below = {p: b for p, b in commit.tree.items() if p.startswith(prefix)}
        if path and not below:
            headers = {"X-Repo-Commit": commit.oid}
            raise HubError(
                404, f"{path} does not exist at {commit.oid}", "EntryNotFound", **headers
            )
        entries: dict[str, dict] = {}
        for p, blob in below.items():
            rel = p[len(prefix) :].split("/")
            for depth in range(1, len(rel)):  # the folders on the way down
                folder = prefix + "/".join(rel[:depth])
                entries[folder] = {
                    "type": "directory",
                    "oid": _git_oid(folder.encode()),
                    "path": folder,
                }
                if not recursive:
                    break
            if recursive or len(rel) == 1:
                entries[p] = self._file_entry(p, blob)
        listing = [entries[k] for k in sorted(entries)]
        page_size = self.server.page_size
        start = int(query.get("cursor", "0"))
        headers = {}
        if start + page_size < len(listing):
            nxt = f"{self.server.url}{urlsplit(self.path).path}?recursive={recursive}&cursor="
            headers["Link"] = f'<{nxt}{start + page_size}>; rel="next"'
        self._json(listing[start : start + page_size], headers=headers)

    def _paths_info(self, commit: Commit, paths: list[str]) -> None:
        """The entries of the paths that exist at ``commit`` (files or folders); no others."""
        found = []
        for path in dict.fromkeys(p.strip("/") for p in paths):
            if path in commit.tree:
                found.append(self._file_entry(path, commit.tree[path]))
            elif path and any(p.startswith(path + "/") for p in commit.tree):
                found.append({"type": "directory", "oid": _git_oid(path.encode()), "path": path})
        self._json(found)

    @staticmethod
    def _file_entry(path: str, blob: Blob) -> dict:
        entry = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
        if blob.lfs:
            pointer = len(_lfs_pointer(blob.sha256, blob.size))
            entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": pointer}
        return entry

    # -- uploads
    @staticmethod
    def _upload_mode(file: dict, tree: dict[str, Blob]) -> dict:
        sample = base64.b64decode(file["sample"])
        binary = b"\0" in sample
        lfs = file["path"].endswith(LFS_SUFFIXES) or file["size"] >= LFS_MIN_SIZE or binary
        existing = tree.get(file["path"])
        oid = None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid)
        mode = "lfs" if lfs else "regular"
        return {"path": file["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid}

    def _lfs_batch(self, repo: Repo, payload: dict) -> None:
        self._authorize()
        state, objects = self.server.state, []
        for obj in payload["objects"]:
            oid, size = obj["oid"], obj["size"]
            answer = {"oid": oid, "size": size, "authenticated": True}
            if not (state.objects / oid).exists():
                token = secrets.token_hex(16)
                state.uploads[token] = (oid, size)
                answer["actions"] = {
                    "upload": {"href": f"{self.server.url}/_lfs/upload/{token}", "header": {}},
                    "verify": {"href": f"{self.server.url}/_lfs/verify/{oid}", "header": {}},
                }
            objects.append(answer)
        self._json({"transfer": "basic", "objects": objects}, headers={"Content-Type": LFS_JSON})

    def _lfs_transfer(self, parts: list[str], body: bytes) -> None:
        state = self.server.state
        if parts[1] == "upload" and self.command == "PUT":
            oid, size = state.uploads.pop(parts[2], (None, None))
            if oid is None:
                raise HubError(403, "unknown or used upload token")
            if len(body) != size or hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, f"uploaded content does not match oid {oid} / size {size}")
            state.store(body, lfs=True)
            return self._send(200)
        if parts[1] == "verify" and self.command == "POST":
            self._authorize()
            if not (state.objects / parts[2]).exists():
                raise HubError(404, f"LFS object {parts[2]} was never uploaded")
            return self._json({"success": True})
        raise HubError(404, "No such LFS route")

    def _commit(self, repo: Repo, rev: str, body: bytes, create_pr: bool) -> None:
        state = self.server.state
        lines = [json.loads(ln) for ln in body.splitlines() if ln.strip()]
        header = next(ln["value"] for ln in lines if ln["key"] == "header")
        if create_pr and rev not in ("main", "refs/heads/main"):
            raise HubError(400, "pull requests can only target main in this server")
        if not create_pr and not (rev in ("main", "refs/heads/main") or rev.startswith("refs/pr/")):
            raise HubError(400, f"cannot commit on {rev}: not a branch or pull request")
        parent = repo.resolve(rev)
        if header.get("parentCommit") not in (None, parent.oid):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        tree = dict(parent.tree)
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                tree[value["path"]] = state.store(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                oid = value["oid"]
                if not (state.objects / oid).exists():
                    raise HubError(422, f"LFS object {oid} for {value['path']} was never uploaded")
                tree[value["path"]] = Blob.of((state.objects / oid).read_bytes(), lfs=True)
            elif key == "deletedFile":
                if tree.pop(value["path"], None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}")
            elif key == "deletedFolder":
                tree = {p: b for p, b in tree.items() if not p.startswith(value["path"] + "/")}
        title, message = header["summary"], header.get("description", "")
        disc = state.open_discussion(repo, title, message, True) if create_pr else None
        ref = (
            f"refs/pr/{disc.num}"
            if disc
            else (rev if rev.startswith("refs/") else f"refs/heads/{rev}")
        )
        commit = state.commit(repo, parent, tree, title, message)
        repo.refs[ref] = commit.oid
        base = f"{self.server.url}/{repo.url_path}"
        answer = {"commitUrl": f"{base}/commit/{commit.oid}", "commitOid": commit.oid}
        if disc is not None:
            disc.events.append(state.event("commit", {"subject": title, "oid": commit.oid}))
            answer["pullRequestUrl"] = f"{base}/discussions/{disc.num}"
        self._json(answer)

    # -- discussions and pull requests
    def _discussions(self, repo: Repo, rest: list[str], payload: dict) -> None:
        state = self.server.state
        if not rest and self.command == "POST":
            self._authorize()
            pr = bool(payload.get("pullRequest"))
            disc = state.open_discussion(repo, payload["title"], payload.get("description", ""), pr)
            return self._json({"num": disc.num, "url": f"{self.server.url}/{repo.url_path}"})
        if not rest:
            found = [self._discussion_json(repo, d) for d in reversed(repo.discussions)]
            return self._json({"discussions": found, "count": len(found), "start": 0})
        if not rest[0].isdigit() or not 0 < int(rest[0]) <= len(repo.discussions):
            raise HubError(404, f"Discussion {rest[0]} not found")
        disc = repo.discussions[int(rest[0]) - 1]
        if len(rest) == 1:
            return self._json(self._discussion_json(repo, disc))
        self._authorize()
        if rest[1] == "merge":
            state.merge(repo, disc)
            return self._json({})
        if rest[1] == "status":
            disc.status = payload["status"]
            event = state.event("status-change", {"status": disc.status})
            disc.events.append(event)
            return self._json({"newStatus": event})
        raise HubError(404, f"No discussion route {rest[1]}")

    def _discussion_json(self, repo: Repo, disc: Discussion) -> dict:
        out = {
            "num": disc.num,
            "title": disc.title,
            "status": disc.status,
            "isPullRequest": disc.is_pr,
            "createdAt": disc.created_at,
            "author": {"name": disc.author},
            "repo": {"name": repo.id, "type": repo.type},
            "events": disc.events,
            "numComments": 1,
            "pinned": False,
        }
        if disc.is_pr:
            out["changes"] = {"base": "refs/heads/main", "mergeCommitId": disc.merge_commit}
            out["filesWithConflicts"] = []
            out["diff"] = ""
        return out

    # -- downloads
    def _resolve(self, repo: Repo, rev: str, path: str) -> None:
        commit = repo.resolve(rev)
        blob = commit.tree.get(path)
        headers = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", **headers)
        headers["ETag"] = f'"{blob.sha256 if blob.lfs else blob.git_oid}"'
        headers["Content-Type"] = "application/octet-stream"
        if blob.lfs:
            headers["X-Linked-Etag"] = headers["ETag"]
            headers["X-Linked-Size"] = str(blob.size)
        if self.command == "HEAD":
            return self._send(200, b"", {**headers, "Content-Length": str(blob.size)})
        data = self.server.state.read(blob)
        if (repo.id, path) in self.server.truncate:
            data = data[: len(data) // 2]
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and int(match.group(1)) < len(data):
            start = int(match.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return self._send(206, data[start:], headers)
        self._send(200, data, headers)


LFS_JSON = "application/vnd.git-lfs+json"


class HubServer(ThreadingHTTPServer):
    """The server; ``start()`` runs it on a daemon thread, ``url`` is the endpoint."""

    daemon_threads = True

    def __init__(self, root: str | Path, token: str, page_size: int = 1000):
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.state = HubState(Path(root), token)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.page_size = page_size
        self.truncate: set[tuple[str, str]] = set()
        self.log: list[tuple[str, str]] = []
        self._thread: threading.Thread | None = None

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
