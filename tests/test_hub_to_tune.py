"""The whole path a user takes: a maintainer publishes a predictor to the Hub, a user's
``load_predictor`` resolves it through the catalog, downloads it at the pinned revision,
checks its sha256, and MetaSchedule tunes with it. All against the test Hub on 127.0.0.1."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tunezoo import catalog, hub
from tunezoo.features import PER_STORE_DIM
from tunezoo.loading import load_predictor
from tunezoo.models import build_model
from tunezoo.predictor import Predictor
from tunezoo.tuning import tune


def _publishable(tmp_path):
    torch.manual_seed(0)
    predictor = Predictor(
        build_model("segsum-mlp", {"hidden": 32, "layers": 2}),
        torch.zeros(PER_STORE_DIM),
        torch.ones(PER_STORE_DIM),
        "llvm-znver4",
    )
    out = tmp_path / "artifact"
    predictor.save(out)
    (out / "metrics.json").write_text(
        json.dumps({"test": {"top1_score": 0.5, "top5_score": 0.8, "pairwise_accuracy": 0.6}})
    )
    return predictor, out


def test_publish_download_load_predictor_tune(tmp_path):
    predictor, artifact = _publishable(tmp_path)
    result = hub.publish_model(artifact, "segsum-mlp.llvm-znver4")
    entry = catalog.get_artifact("segsum-mlp.llvm-znver4")
    assert entry.revision == result.commit

    no_bundled = tmp_path / "no-bundled-artifacts"
    no_bundled.mkdir()
    cost_model = load_predictor(
        "llvm-znver4", artifacts_dir=no_bundled, cache_dir=tmp_path / "hf-cache"
    )
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(3, PER_STORE_DIM)).astype(np.float32) for _ in range(4)]
    loaded = cost_model.predictor
    assert np.array_equal(loaded.score_matrices(mats), predictor.score_matrices(mats))
    assert loaded.metadata["tunezoo_source"]["revision"] == result.commit

    tuned = tune(
        "matmul-64",
        target_key="llvm-znver4",
        trials=8,
        predictor=cost_model,
        work_dir=tmp_path / "work",
        num_trials_per_iter=8,
        progress=False,
        population_size=64,
    )
    assert np.isfinite(tuned.best_latency_s) and tuned.trials >= 8
    assert tuned.cost_model_stats["predict_calls"] > 0
    assert (tmp_path / "work" / "database_tuning_record.json").stat().st_size > 0


def test_published_meta_init_downloads_and_adapts_in_a_session(tmp_path):
    """A meta-init that is not bundled resolves through the catalog like a predictor."""
    from tunezoo.meta import META_KEY, load_init
    from tunezoo.meta_cost_model import MetaAdaptiveCostModel

    init, artifact = _publishable(tmp_path)
    init.metadata[META_KEY] = {
        "algorithm": "fomaml",
        "inner_lr": 0.05,
        "inner_steps": 3,
        "support_k": 16,
        "loss": "lambdarank",
    }
    init.save(artifact)
    name = "segsum-mlp.meta-llvm-x86"
    result = hub.publish_model(artifact, name)
    assert catalog.get_artifact(name).kind == "meta-init"

    no_bundled = tmp_path / "no-bundled-artifacts"
    no_bundled.mkdir()
    cache = tmp_path / "hf-cache"
    loaded = load_init("llvm-znver4", artifacts_dir=no_bundled, cache_dir=cache)
    assert loaded.metadata[META_KEY]["inner_steps"] == 3
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(3, PER_STORE_DIM)).astype(np.float32) for _ in range(4)]
    assert np.array_equal(loaded.score_matrices(mats), init.score_matrices(mats))

    model = load_predictor(
        f"{name}@{result.commit}",
        mode="meta-adaptive",
        artifacts_dir=no_bundled,
        cache_dir=cache,
        local_files_only=True,  # the download above is in the cache: no network needed
    )
    assert isinstance(model, MetaAdaptiveCostModel)
    source = model.init.metadata["tunezoo_source"]
    assert source["name"] == name and source["source"] == "hub"
    assert source["revision"] == result.commit
    tuned = tune(
        "matmul-64",
        target_key="llvm-znver4",
        trials=8,
        predictor=model,
        work_dir=tmp_path / "work",
        num_trials_per_iter=8,
        progress=False,
        population_size=64,
    )
    assert np.isfinite(tuned.best_latency_s)
    assert tuned.cost_model_stats["adaptations"] >= 1
    assert tuned.mode == "meta-adaptive"  # the mode of the cost model passed, not the default


def test_contribute_a_metaschedule_database_opens_a_pull_request(tuned_db, tmp_path):
    from make_records import tables
    from tvm.s_tir import meta_schedule as ms

    from tunezoo.contribution import ContributionError
    from tunezoo.records import write_shards
    from tunezoo.targets import detect_target

    write_shards(tmp_path / "published", *tables("llvm-znver4"))
    hub.publish_dataset(tmp_path / "published", "llvm-znver4")
    here = detect_target(prefer_gpu=False)  # what tuned_db was tuned for
    before, _ = hub.hub_record_ids(here)
    original = ms.database.JSONDatabase(work_dir=str(tuned_db)).get_all_tuning_records()
    result = hub.contribute(tuned_db, here, contributor="a tester")
    assert result.pr_url is not None and result.pr_revision.startswith("refs/pr/")
    assert 0 < result.plan.new_records <= len(original)
    after, _ = hub.hub_record_ids(here)
    assert after == before, "a contribution must not reach main before the merge"
    if here != "llvm-cascadelake":  # filed under another CPU's key: refused, nothing sent
        with pytest.raises(ContributionError, match="field 'target'"):
            hub.contribute(tuned_db, "llvm-cascadelake", contributor="a tester")
