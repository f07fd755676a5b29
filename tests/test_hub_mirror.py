"""A user behind a Hub mirror: ``tunezoo download`` through olah, a third-party mirror server.

olah (PyPI ``olah`` 0.5.4) runs as a real subprocess in its normal caching-proxy
mode, with the test Hub as its upstream (``hf-scheme = "http"``, ``hf-netloc`` = the test Hub).
The user is a ``python -m tunezoo.cli download`` subprocess whose ``HF_ENDPOINT`` is the mirror,
with a fresh ``HF_HOME`` and no token; nothing is mocked on either side.

The upstream olah talks to is a second front door (own port, own request log) onto the session
Hub's repos, so a test can watch what the mirror asks upstream and shut the upstream down
without stopping the session Hub.

olah is not in the ``dev`` extra: its dependency ``fastapi-utils`` 0.8.0 requires
``psutil<6``, so installing it beside tunezoo would downgrade the ``psutil`` TVM runs with
(7.x) to 5.9.x. A mirror is a separate program anyway, so the test session runs it from its
own virtual environment (``$TUNEZOO_OLAH_VENV``, default ``~/.cache/tunezoo/olah-0.5.4``),
created with ``pip install olah==0.5.4`` on first use (about a minute) and reused after. An
olah importable in the test's own environment is used as is. The tests skip only when
neither exists and the package registry cannot be reached to create the environment.

What olah 0.5.4 does against a Hub-protocol server, as measured here:

- before proxying ``resolve/{rev}/{path}`` it HEADs the upstream ``resolve`` URL and POSTs
  ``/api/models/{repo}/paths-info/{rev}``; the test Hub answers both (paths-info was added to
  tests/hub_server.py for it).
- in online mode olah HEADs the upstream for *every* file it serves, cached or not (that probe
  is its access check), so with the upstream down an online olah answers 504 even for files it
  holds; its offline mode (``[accessibility] offline = true``) serves the cached pinned commit
  with no upstream at all.
- olah does not check the bytes it caches against the LFS sha256 it keys them on: what a bad
  upstream served once is cached and served again after the upstream is fixed, until evicted.
  tunezoo's own sha256 pins are what refuse it (``test_wrong_bytes_from_the_mirror_are_refused``).
- olah's own HTML index page (``GET /``) fails with a 500 under starlette 1.x (its
  ``TemplateResponse`` call predates the request-first signature); it plays no part in
  downloads, so the readiness probe below asks for an API path instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from hub_server import HubServer
from test_hub import NAME, make_model

from tunezoo import catalog as cat
from tunezoo import hub

OLAH = "olah==0.5.4"
OLAH_VENV_ENV = "TUNEZOO_OLAH_VENV"


def olah_venv_python() -> str:
    """A Python that can run olah: this one if it has olah, else a venv made for it."""
    if importlib.util.find_spec("olah") is not None:
        return sys.executable
    venv = Path(os.environ.get(OLAH_VENV_ENV) or Path.home() / ".cache" / "tunezoo" / "olah-0.5.4")
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import olah.server"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return str(python)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", OLAH],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if install.returncode != 0 or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip(
            f"cannot install {OLAH} into {venv} (is the package registry reachable?): "
            f"{install.stderr.strip()[-500:]}"
        )
    return str(python)


@pytest.fixture(scope="session")
def olah_python() -> str:
    return olah_venv_python()


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Olah:
    """An olah server on 127.0.0.1 in front of ``upstream``; its cache lives under ``root``."""

    def __init__(self, upstream: str, root: Path, python: str):
        self.upstream, self.root, self.python = upstream.split("://", 1)[1], root, python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cache = root / "olah-repos"
        self.log = root / "olah.log"
        self.proc: subprocess.Popen | None = None

    def start(self, offline: bool = False) -> Olah:
        config = self.root / "olah.toml"
        config.write_text(
            "[basic]\n"
            'host = "127.0.0.1"\n'
            f"port = {self.port}\n"
            'hf-scheme = "http"\n'
            f'hf-netloc = "{self.upstream}"\n'
            f'hf-lfs-netloc = "{self.upstream}"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\n'
            f'mirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            f'repos-path = "{self.cache}"\n'
            "[accessibility]\n"
            f"offline = {'true' if offline else 'false'}\n"
        )
        command = [self.python, "-m", "olah.server", "--config", str(config)]
        command += ["--log-path", str(self.root / "olah-logs")]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/ready", timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self  # any HTTP answer: it is serving
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"olah did not start:\n{self.log.read_text()[-3000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def upstream(hub_server, tmp_path):
    server = HubServer(tmp_path / "upstream", token=hub_server.state.token)
    server.state = hub_server.state  # the same repos and objects, another port and log
    server.start()
    yield server
    if server.socket.fileno() != -1:
        server.stop()


@pytest.fixture
def mirror(upstream, tmp_path, olah_python):
    olah = Olah(upstream.url, tmp_path / "olah", olah_python)
    olah.root.mkdir()
    yield olah.start()
    olah.stop()


@pytest.fixture
def catalog_path(tmp_path) -> Path:
    return tmp_path / "catalog.json"


def download(mirror: Olah, home: Path, catalog: Path, ref: str, offline: bool = False):
    """``tunezoo download REF`` as a user whose only Hub is the mirror (no token)."""
    env = {**os.environ, "HF_ENDPOINT": mirror.url, "HF_HOME": str(home)}
    env |= {"TUNEZOO_CATALOG": str(catalog), "HF_HUB_OFFLINE": "1" if offline else "0"}
    env.pop("HF_TOKEN", None)
    command = [sys.executable, "-m", "tunezoo.cli", "download", ref]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def downloaded(result: subprocess.CompletedProcess) -> Path:
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().rsplit(" -> ", 1)[1])


def assert_pinned(path: Path, revision: str, pins: dict[str, cat.FilePin]) -> None:
    assert path.name == revision  # the snapshot folder of the pinned commit
    assert sorted(p.name for p in path.iterdir()) == sorted(pins)
    for name, pin in pins.items():
        assert sha256(path / name) == pin.sha256, name


def resolves(server: HubServer, since: int, repo: str) -> list[tuple[str, str]]:
    return [(m, p) for m, p in server.log[since:] if p.startswith(f"/{repo}/resolve/")]


def test_pinned_download_through_the_mirror(upstream, mirror, tmp_path, catalog_path):
    org = f"org-{uuid.uuid4().hex[:10]}"
    v1 = hub.publish_model(make_model(tmp_path / "v1"), NAME, org=org, catalog=catalog_path)
    v2 = hub.publish_model(make_model(tmp_path / "v2", 2.0), NAME, org=org, catalog=catalog_path)
    entry = cat.get_artifact(NAME, catalog=catalog_path)
    assert entry.revision == v2.commit and [h.revision for h in entry.history] == [v1.commit]

    # the catalog's pin, then an older pinned commit, both verified against their sha256s
    user = tmp_path / "user"
    since = len(upstream.log)
    path = downloaded(download(mirror, user, catalog_path, NAME))
    assert_pinned(path, v2.commit, entry.files)
    fetched = resolves(upstream, since, entry.repo)
    assert ("GET", f"/{entry.repo}/resolve/{v2.commit}/model.safetensors") in fetched
    old = download(mirror, user, catalog_path, f"{NAME}@{v1.commit}")
    assert_pinned(downloaded(old), v1.commit, v1.artifact.files)
    assert "cannot be verified" not in old.stderr

    # a second user behind the same mirror: the bytes come from olah's cache (upstream is
    # only asked HEAD, olah's access check), and are the published ones
    since = len(upstream.log)
    path = downloaded(download(mirror, tmp_path / "user2", catalog_path, NAME))
    assert_pinned(path, v2.commit, entry.files)
    asked = resolves(upstream, since, entry.repo)
    assert asked and {method for method, _ in asked} == {"HEAD"}

    # the first user again, offline, with the mirror gone: the local cache is enough
    mirror.stop()
    path = downloaded(download(mirror, user, catalog_path, NAME, offline=True))
    assert_pinned(path, v2.commit, entry.files)

    # upstream gone, olah restarted in offline mode over its cache: a third user still gets
    # the pinned commit, checked
    upstream.stop()
    mirror.start(offline=True)
    path = downloaded(download(mirror, tmp_path / "user3", catalog_path, NAME))
    assert_pinned(path, v2.commit, entry.files)


def test_wrong_bytes_from_the_mirror_are_refused(upstream, mirror, tmp_path, catalog_path):
    org = f"org-{uuid.uuid4().hex[:10]}"
    scale = 1.0 + uuid.uuid4().int % 1000 / 1000  # bytes no other test's repo shares
    published = hub.publish_model(
        make_model(tmp_path / "model", scale), NAME, org=org, catalog=catalog_path
    )
    pin = published.artifact.files["model.safetensors"]
    blob = upstream.state.objects / pin.sha256
    good = blob.read_bytes()
    blob.write_bytes(good[:-4] + b"EVIL")  # same size, other bytes: the mirror caches them
    home = tmp_path / "user"
    try:
        result = download(mirror, home, catalog_path, NAME)
    finally:
        blob.write_bytes(good)
    assert result.returncode != 0
    assert f"{mirror.url} served content that is not what was published" in result.stderr
    assert f"sha256 {pin.sha256}" in result.stderr
    assert list(home.rglob("model.safetensors")) == []

    # the upstream is right again; whatever olah serves now (0.5.4 keeps serving the bad copy
    # it cached), tunezoo never hands over bytes other than the published ones
    again = download(mirror, home, catalog_path, NAME)
    if again.returncode == 0:
        assert sha256(downloaded(again) / "model.safetensors") == pin.sha256
    else:
        assert "served content that is not what was published" in again.stderr
        assert list(home.rglob("model.safetensors")) == []
