"""Session setup: a real Hub-compatible server on 127.0.0.1 for every test that talks to a Hub.

``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_DISABLE_XET``
and the offline flag when they are *imported*, so the server is started and the variables
are set in ``pytest_configure``, before any test module is collected. Nothing here talks
to any other address.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # hub_server
sys.path.insert(0, str(HERE / "data"))  # the data generators kept beside the tests

HUB_TOKEN = "hf_tunezoo_test_token"
_session: dict = {}


def pytest_configure(config: pytest.Config) -> None:
    from hub_server import HubServer  # noqa: PLC0415 - needs the sys.path entry above

    clients = [m for m in ("huggingface_hub", "datasets") if m in sys.modules]
    if clients:
        raise pytest.UsageError(
            f"{clients} imported before tests/conftest.py could point them at the test Hub; "
            "they would talk to the real Hub. Run pytest without plugins that import them."
        )
    root = Path(tempfile.mkdtemp(prefix="tunezoo-tests-"))
    server = HubServer(root / "hub", token=HUB_TOKEN).start()
    _session.update(root=root, server=server)
    os.environ.update(
        {
            "HF_ENDPOINT": server.url,
            "HF_HOME": str(root / "hf_home"),
            "HF_TOKEN": HUB_TOKEN,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_OFFLINE": "0",
            "TUNEZOO_CATALOG": str(root / "catalog.json"),  # never the shipped catalog
        }
    )
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "TUNEZOO_HUB_ORG"):
        os.environ.pop(name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    server = _session.pop("server", None)
    if server is not None:
        server.stop()
    root = _session.pop("root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def hub_server():
    """The running test Hub (``.url``, ``.state``, ``.truncate``, ``.log``)."""
    return _session["server"]


@pytest.fixture
def unpublished(tmp_path, monkeypatch) -> Path:
    """An empty catalog for this test: artifacts it bundles under a name another test may
    have published to the session's catalog are then not checked against those pins."""
    empty = tmp_path / "empty-catalog.json"
    empty.write_text('{"artifacts": [], "format": 1}')
    monkeypatch.setenv("TUNEZOO_CATALOG", str(empty))
    return empty
