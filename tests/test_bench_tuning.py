"""The tuning benchmark's metrics on hand-made histories (no tuning is run here)."""

from __future__ import annotations

import math

import pytest
from script_loader import loaded_script


@pytest.fixture(scope="module")
def bench():
    with loaded_script("bench_tuning") as module:
        yield module


def run(history, cost_seconds=0.0):
    return {
        "history": history,
        "best_latency_s": history[-1][2],
        "seconds": history[-1][1],
        "cost_model_stats": {"total_seconds": cost_seconds},
    }


def test_best_at_and_first_reach(bench):
    history = [(16, 10.0, math.inf), (32, 20.0, 3.0), (48, 30.0, 2.0)]
    assert bench.best_at(history, 16) == math.inf
    assert bench.best_at(history, 40) == 3.0
    assert bench.first_reach(history, 2.0) == (48, 30.0)
    assert bench.first_reach(history, 1.9, rtol=0.1) == (48, 30.0)
    assert bench.first_reach(history, 1.0) is None


def test_speedups_relative_latency_and_censoring(bench):
    xgb = run([(16, 10.0, 4.0), (32, 20.0, 2.0), (48, 30.0, 2.0)], cost_seconds=0.3)
    fast = run([(16, 8.0, 2.0), (32, 16.0, 1.0), (48, 24.0, 1.0)], cost_seconds=2.4)
    never = run([(16, 10.0, 5.0), (32, 20.0, 3.0), (48, 30.0, 2.5)])
    runs = {"xgb": {0: xgb}, "tunezoo-frozen": {0: fast}, "tunezoo-adaptive": {0: never}}
    rows = bench.workload_summary(runs, [16, 48], rtol=0.0)
    assert rows["xgb"]["time_speedup"] == pytest.approx(1.0)
    f = rows["tunezoo-frozen"]
    assert f["time_speedup"] == pytest.approx(20.0 / 8.0)  # xgb hit 2.0 at 20 s, it at 8 s
    assert f["trial_speedup"] == pytest.approx(2.0)
    assert not f["bound"]
    assert f["relative_latency"] == {"16": pytest.approx(0.5), "48": pytest.approx(0.5)}
    assert f["cost_model_fraction"] == pytest.approx(0.1)
    n = rows["tunezoo-adaptive"]
    assert n["bound"] and n["reached"] == "0/1"
    assert n["time_speedup"] == pytest.approx(20.0 / 30.0)  # charged the whole session
    overall = bench.overall_summary({"w": rows}, [16, 48])
    assert overall["tunezoo-adaptive"]["bound"]
    assert bench.geomean([4.0, 1.0, math.nan]) == pytest.approx(2.0)


def test_resummarize_recomputes_a_committed_run_at_another_tolerance(bench, tmp_path):
    """The committed 192-trial JSON: rtol 0 gives back its own summary, a looser reach
    criterion can only make contenders reach xgb's final best sooner (or at all)."""
    from pathlib import Path  # noqa: PLC0415

    source = Path(__file__).parents[1] / "scripts/results/bench_tuning-192-meta.json"
    committed = bench.json.loads(source.read_text())["summary"]["overall"]
    same = bench.resummarize(source, 0.0, tmp_path / "same")["summary"]["overall"]
    assert bench.json.loads(bench.json.dumps(bench._json_safe(same))) == committed
    loose = bench.resummarize(source, 0.02, tmp_path / "loose")
    for name in ("tunezoo-frozen", "meta-adaptive"):
        assert (
            loose["summary"]["overall"][name]["trial_speedup"] >= committed[name]["trial_speedup"]
        )
    assert "within 2% of it" in (tmp_path / "loose.md").read_text()
    assert (tmp_path / "loose.png").stat().st_size > 0
    assert loose["resummarized_from"]["json"] == str(source)


def test_a_report_says_when_it_ran_on_another_cpu_than_its_target(bench, tmp_path):
    """The committed Zen 4 run says nothing; the same run relabelled as run on a Xeon
    (llvm cpu rocketlake) says which CPU it was compiled for and which it ran on."""
    from pathlib import Path  # noqa: PLC0415

    source = Path(__file__).parents[1] / "scripts/results/bench_tuning-192-meta.json"
    report = bench.json.loads(source.read_text())
    assert report["machine"]["llvm_cpu"] == "znver4"
    assert "another CPU" not in bench.markdown(report)
    report["machine"].update(llvm_cpu="rocketlake", cpu="Intel(R) Xeon(R) Processor")
    text = bench.markdown(report)
    assert "compiled for `llvm-znver4`, run on this machine's `rocketlake`" in text
