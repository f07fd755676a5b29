"""The artifacts that ship inside the package: named after what they hold, loadable
offline, and scoring real candidates the way their metrics say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tunezoo.feature_kinds import FEATURE_KINDS, artifact_name
from tunezoo.features import FEATURE_VERSION
from tunezoo.loading import artifacts_dir, bundled_predictors, load_predictor
from tunezoo.meta import META_KEY
from tunezoo.predictor import Predictor, sha256_file
from tunezoo.targets import get_target

ARTIFACTS = sorted(bundled_predictors().items())


@pytest.mark.parametrize(("name", "path"), ARTIFACTS, ids=[n for n, _ in ARTIFACTS])
def test_bundled_artifact_is_named_after_its_contents(name, path: Path):
    config = json.loads((path / "config.json").read_text())
    assert config["feature_version"] in FEATURE_KINDS
    assert name == artifact_name(config["arch"], config["feature_version"], config["target_key"])
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["feature_version"] == config["feature_version"]
    assert metrics["arch"] == config["arch"]
    for file, sha in metrics["files_sha256"].items():
        assert sha256_file(path / file) == sha, f"{file} changed after training"


def test_the_local_cpu_predictor_loads_offline_and_ranks(imported_dataset, tmp_path):
    if not ARTIFACTS:
        pytest.skip("no bundled predictor")
    from tunezoo.training import load_ranking_data

    cost_model = load_predictor("llvm-znver4", local_files_only=True)
    predictor: Predictor = cost_model.predictor
    data = load_ranking_data(
        imported_dataset, "train", min_candidates=4, cache_dir=tmp_path, progress=False
    )
    scores = predictor.score(data.features)
    assert np.isfinite(scores).all() and len(np.unique(scores)) > 1


META_INITS = sorted(p for p in artifacts_dir().glob("*.meta-*") if (p / "config.json").exists())


@pytest.mark.parametrize("path", META_INITS, ids=[p.name for p in META_INITS])
def test_bundled_meta_init_is_named_after_its_contents(path: Path):
    config = json.loads((path / "config.json").read_text())
    assert path.name == f"{config['arch']}.meta-{get_target(config['target_key']).family}"
    assert config["feature_version"] == FEATURE_VERSION
    meta = config["metadata"][META_KEY]
    assert meta["inner_steps"] >= 1 and meta["inner_lr"] > 0
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["kind"] == "meta-init" and metrics["meta"] == meta
    for file, sha in metrics["files_sha256"].items():
        assert sha256_file(path / file) == sha, f"{file} changed after training"


def test_the_local_cpu_meta_init_adapts_offline_during_a_session(imported_dataset, tmp_path):
    """load_predictor(mode='meta-adaptive') works on a fresh install, and adapting on real
    measurements changes how that workload is ranked."""
    if not META_INITS:
        pytest.skip("no bundled meta-initialisation")
    from tunezoo.meta import adapt
    from tunezoo.meta_cost_model import MetaAdaptiveCostModel
    from tunezoo.training import load_ranking_data

    model = load_predictor("llvm-znver4", mode="meta-adaptive", local_files_only=True)
    assert isinstance(model, MetaAdaptiveCostModel)
    data = load_ranking_data(
        imported_dataset, "train", min_candidates=4, cache_dir=tmp_path, progress=False
    )
    before = model.init.score(data.features)
    adapted = adapt(model.init, data)
    after = adapted.score(data.features)
    assert np.isfinite(after).all() and not np.allclose(before, after)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "path"), ARTIFACTS, ids=[n for n, _ in ARTIFACTS])
def test_eval_reproduces_the_bundled_metrics_from_the_committed_data(name, path: Path, capsys):
    """`tunezoo eval --compare` on the snapshot recorded in metrics.json (slow: it extracts
    the features of every evaluation record on a cold cache, a few minutes)."""
    from tunezoo.cli import main as cli

    dataset = Path(__file__).resolve().parents[1] / "data" / "llvm-znver4"
    assert cli(["eval", str(path), "--dataset", str(dataset), "--compare"]) == 0, name
    assert "largest difference from the stored metrics.json: 0.00e+00" in capsys.readouterr().out


def test_download_of_a_target_key_names_the_predictor_load_predictor_uses(tmp_path, capsys):
    """`tunezoo download llvm-znver4` resolves like load_predictor: the bundled per-store
    predictor, which needs no download; --out copies its files."""
    from tunezoo.cli import main
    from tunezoo.loading import resolve_predictor

    where = resolve_predictor("llvm-znver4")
    assert main(["download", "llvm-znver4", "--out", str(tmp_path / "copy")]) == 0
    printed = capsys.readouterr().out
    assert where.name in printed and "bundled" in printed
    weights = "model.safetensors"
    assert sha256_file(tmp_path / "copy" / weights) == sha256_file(where.path / weights)


CARDED = sorted(p.parent for p in artifacts_dir().glob("*/README.md"))


@pytest.mark.parametrize("path", CARDED, ids=[p.name for p in CARDED])
def test_a_bundled_card_is_what_its_metrics_render(path: Path):
    """A card goes stale when metrics.json changes; re-render with
    python scripts/render_model_card.py tunezoo/artifacts/<name>."""
    from script_loader import loaded_script

    with loaded_script("render_model_card") as script:
        assert script.rendered_card(path) == (path / "README.md").read_text()
