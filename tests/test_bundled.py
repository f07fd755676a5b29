"""The artifacts that ship inside the package: named after what they hold, loadable
offline, and scoring real candidates the way their metrics say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tunezoo.features import FEATURE_VERSION
from tunezoo.loading import bundled_predictors, load_predictor
from tunezoo.predictor import Predictor, sha256_file

ARTIFACTS = sorted(bundled_predictors().items())


@pytest.mark.parametrize(("name", "path"), ARTIFACTS, ids=[n for n, _ in ARTIFACTS])
def test_bundled_artifact_is_named_after_its_contents(name, path: Path):
    config = json.loads((path / "config.json").read_text())
    assert name == f"{config['arch']}.{config['target_key']}"
    assert config["feature_version"] == FEATURE_VERSION
    metrics = json.loads((path / "metrics.json").read_text())
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
