"""The tune driver, end to end: MetaSchedule really builds and measures on this CPU.

The search population is cut to 64 (MetaSchedule's default is 512) so that scoring the
candidates of each generation, which dominates a small session, stays cheap.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import tvm

from tunezoo.cost_model import TimedCostModel, TunezooCostModel
from tunezoo.features import PER_STORE_DIM
from tunezoo.measure import MeasureSettings
from tunezoo.models import build_model
from tunezoo.predictor import Predictor
from tunezoo.targets import detect_target
from tunezoo.tuning import WORKLOADS, _cost_model, list_workloads, tune

FAST = MeasureSettings(number=2, repeat=2, min_repeat_ms=1)


def tiny_predictor(target_key: str) -> Predictor:
    torch.manual_seed(0)
    model = build_model("segsum-mlp", {"hidden": 32, "layers": 2})
    return Predictor(model, torch.zeros(PER_STORE_DIM), torch.ones(PER_STORE_DIM), target_key)


@pytest.mark.tvm_measure
def test_tune_a_named_workload_with_an_adaptive_predictor(tmp_path, capsys):
    key = detect_target(prefer_gpu=False)  # built for this CPU, so it runs here
    result = tune(
        "matmul-64",
        target_key=key,
        trials=16,
        predictor=tiny_predictor(key),
        mode="adaptive",
        work_dir=tmp_path,
        num_trials_per_iter=8,
        num_cores=1,
        settings=FAST,
        population_size=64,
        steps=5,
    )
    assert result.trials == 16 and math.isfinite(result.best_latency_s)
    assert 0 < result.best_latency_s < 0.1
    # one entry per measured candidate, dated when its measurement came back (rising
    # within a batch, never after the batch's end, which a batch's entries share)
    assert [h[0] for h in result.history] == list(range(1, 17))
    for batch in (result.history[:8], result.history[8:]):
        seconds = [h[1] for h in batch]
        assert seconds == sorted(seconds) and seconds[0] < seconds[-1]
        assert len({h[3] for h in batch}) == 1 and seconds[-1] <= batch[0][3]
    assert result.history[7][3] < result.history[8][1]
    # where the time went: building and measuring, inside the session's time
    assert result.build_seconds > 0 and result.run_seconds > 0
    spent = result.build_seconds + result.run_seconds + result.cost_model_stats["total_seconds"]
    assert spent < result.seconds
    bests = [h[2] for h in result.history]
    assert bests == sorted(bests, reverse=True) and bests[-1] == result.best_latency_s
    assert result.task_best_s == {"main": result.best_latency_s}
    stats = result.cost_model_stats
    assert stats["mode"] == "adaptive" and stats["predict_calls"] > 0
    assert stats["update_calls"] == 2 and stats["updated_candidates"] == 16
    assert stats["train_steps"] == 10
    assert 0 < result.cost_model_fraction() < 1
    # the tuning database MetaSchedule wrote, one record per trial
    records = (tmp_path / "database_tuning_record.json").read_text().splitlines()
    assert len(records) == 16 and (tmp_path / "database_workload.json").exists()
    out = capsys.readouterr().out
    assert f"matmul-64 on {key}: best latency" in out
    assert json.dumps(result.to_json())  # JSON-safe for benchmark reports


def test_what_must_be_a_known_workload_or_model(tmp_path):
    with pytest.raises(KeyError, match="Did you mean 'matmul-512'"):
        tune("matmul-521", target_key="llvm-znver4", trials=1, predictor="none", work_dir=tmp_path)
    names = list_workloads()
    assert set(WORKLOADS) <= set(names) and "resnet18" in names


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_named_workloads_are_single_tir_functions(name):
    mod = WORKLOADS[name].build()
    assert isinstance(mod, tvm.IRModule) and [g.name_hint for g in mod.get_global_vars()] == [
        "main"
    ]


def test_predictor_argument_forms():
    key = "llvm-znver4"
    xgb, label = _cost_model("none", key, "frozen", 1, {})
    assert isinstance(xgb, TimedCostModel) and label == "none"
    model, label = _cost_model(tiny_predictor(key), key, "adaptive", 1, {"steps": 2})
    assert isinstance(model, TunezooCostModel) and model.mode == "adaptive"
    assert _cost_model(model, key, "frozen", 1, {})[0] is model
    with pytest.raises(ValueError, match="need a predictor"):
        _cost_model("none", key, "frozen", 1, {"steps": 2})
    with pytest.raises(TypeError, match="predictor must be"):
        _cost_model(3, key, "frozen", 1, {})


@pytest.mark.slow
@pytest.mark.tvm_measure
def test_tune_a_zoo_model_reports_the_weighted_total(tmp_path):
    key = detect_target(prefer_gpu=False)
    result = tune(
        "lstm_cell",
        target_key=key,
        trials=32,
        predictor=tiny_predictor(key),
        work_dir=tmp_path,
        num_trials_per_iter=8,
        num_cores=1,
        settings=FAST,
        population_size=64,
        progress=False,
    )
    assert len(result.task_best_s) >= 2 and result.trials > 0
    finished = {k: v for k, v in result.task_best_s.items() if math.isfinite(v)}
    assert finished, "no task ran"
    if len(finished) == len(result.task_best_s):
        want = sum(result.task_weights[k] * v for k, v in finished.items())
        assert result.best_latency_s == pytest.approx(want)
    else:
        assert result.best_latency_s == math.inf


@pytest.mark.tvm_measure
@pytest.mark.parametrize("screen", [False, True], ids=["per-store", "screened"])
def test_tune_command_writes_its_result_json(tmp_path, capsys, monkeypatch, screen):
    """The bundled predictors, offline; --screen puts the bundled trace predictor first."""
    from tunezoo.cli import main

    # the bundled predictor, unpublished (other tests publish one to the session's catalog)
    empty = tmp_path / "catalog.json"
    empty.write_text('{"artifacts": [], "format": 1}')
    monkeypatch.setenv("TUNEZOO_CATALOG", str(empty))
    out = tmp_path / "result.json"
    argv = ["tune", "matmul-64", "--trials", "8", "--trials-per-iter", "8", "--quiet"]
    argv += ["--work-dir", str(tmp_path / "db"), "--json", str(out), "--num-cores", "1"]
    argv += ["--population-size", "64"] + (["--screen"] if screen else [])
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["trials"] == 8 and result["best_latency_s"] > 0
    stats = result["cost_model_stats"]
    assert stats["predict_calls"] > 0
    if screen:
        assert stats["mode"] == "screened" and stats["refined_candidates"] > 0
        assert stats["refined_candidates"] < stats["screen_feature_cache_misses"]
        assert "screened by seed-ensemble-trace.llvm-znver4" in result["predictor"]
    assert "matmul-64: best latency" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--predictor", "none", "--mode", "adaptive"], "--predictor none"),
        (["--predictor", "none", "--screen"], "--predictor none"),
        (["--mode", "hybrid", "--screen"], "cannot be screened"),
        (["--adapt-steps", "3"], "--mode adaptive only"),
    ],
)
def test_tune_command_refuses_options_that_do_not_go_together(tmp_path, capsys, options, said):
    """One line and exit status 2, before anything is loaded or tuned."""
    from tunezoo.cli import main

    argv = ["tune", "matmul-64", "--trials", "8", "--work-dir", str(tmp_path / "db")]
    assert main(argv + options) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunezoo: error:") and said in err and "Traceback" not in err
    assert not (tmp_path / "db").exists()


def test_load_predictor_checks_the_mode_and_its_settings_first():
    from tunezoo.loading import load_predictor

    with pytest.raises(ValueError, match="'meta-adaptive', 'hybrid'"):
        load_predictor("no-such-target", mode="Frozen")
    with pytest.raises(ValueError, match=r"takes no setting \['steps'\]"):
        load_predictor("no-such-target", mode="meta-adaptive", steps=3)
