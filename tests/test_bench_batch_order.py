"""bench_batch_order.py on a real tuning database laid out as a bench session."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from script_loader import loaded_script

BATCH = 8  # tune_small_db's num_trials_per_iter


@pytest.fixture(scope="module")
def order():
    with loaded_script("bench_batch_order") as module:
        yield module


def _matmul_session(tuned_db: Path, work: Path) -> tuple[Path, list[float]]:
    """The matmul's records of ``tuned_db``, in commit order, as the database of one bench
    session (``work/<workload>/<contender>-s<seed>``); its latencies, +inf for failures."""
    workloads = (tuned_db / "database_workload.json").read_text().splitlines()
    lines = [json.loads(x) for x in (tuned_db / "database_tuning_record.json").read_text().split()]
    counts = np.bincount([w for w, _ in lines])
    main = int(np.argmax(counts))  # the matmul: most records
    mine = [[0, rec] for w, rec in lines if w == main]
    session = work / "matmul[000000]" / "meta-adaptive-s0"
    session.mkdir(parents=True)
    (session / "database_workload.json").write_text(workloads[main] + "\n")
    (session / "database_tuning_record.json").write_text(
        "".join(json.dumps(x) + "\n" for x in mine)
    )
    secs = [rec[1] or [1e10] for _, rec in mine]
    latencies = [math.inf if max(s) >= 1e9 else sum(s) / len(s) for s in secs]
    return work, latencies


def _report(work: Path, latencies: list[float]) -> dict:
    best, history = math.inf, []
    for i, latency in enumerate(latencies):
        best = min(best, latency)
        history.append([i + 1, float(i), None if math.isinf(best) else best, float(i // BATCH)])
    return {
        "command": f"python scripts/bench_tuning.py --work-dir {work} --out x",
        "settings": {"target": "llvm-znver4", "num_cores": 1},
        "runs": {"matmul[000000]": {"meta-adaptive": {"0": {"history": history}}}},
    }


def test_batches_are_scored_again_in_the_order_they_were_measured(order, tuned_db, tmp_path):
    work, latencies = _matmul_session(tuned_db, tmp_path / "work")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_report(work, latencies)))
    bundled = Path(__file__).resolve().parents[1] / "tunezoo/artifacts/seed-ensemble.llvm-znver4"
    result = order.analyse([path], {"frozen": bundled})
    assert result["sessions"] == 1
    rows = {(r["batch"], r["order_by"]): r for r in result["rows"]}
    first = np.array(latencies[:BATCH])
    ok = np.isfinite(first)
    # as measured: the position of the first batch's fastest candidate, computed here apart
    assert rows[("first", "as measured")]["best_position"] == int(np.argmin(first)) + 1
    ties = int((first <= first[ok].min()).sum())
    assert rows[("first", "random")]["best_position"] == pytest.approx((BATCH + 1) / (ties + 1))
    assert rows[("first", "random")]["top1_score"] == pytest.approx(
        float(np.where(ok, first[ok].min() / first, 0.0).mean())
    )
    frozen = rows[("first", "frozen")]
    assert 1 <= frozen["best_position"] <= BATCH and 0.0 <= frozen["top1_score"] <= 1.0
    later = rows[("later", "as measured")]["batches"]
    assert (
        1 <= later <= -(-len(latencies) // BATCH) - 1
        and rows[("later", "frozen")]["batches"] == later
    )
    text = order.markdown(
        {**result, "reports": ["report.json"], "predictors": {"frozen": "x"}, "command": "c"}
    )
    assert "| meta-adaptive | first | as measured | 1 |" in text


def test_a_database_that_is_not_the_reports_is_refused(order, tuned_db, tmp_path):
    work, latencies = _matmul_session(tuned_db, tmp_path / "work")
    report = _report(work, latencies)
    history = report["runs"]["matmul[000000]"]["meta-adaptive"]["0"]["history"]
    history[-1][2] = 1e-12  # a best this database never measured
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    with pytest.raises(SystemExit, match="meta-adaptive-s0: its records are not the ones"):
        order.analyse([path], {})
    report["command"] = "python scripts/bench_tuning.py --out x"
    path.write_text(json.dumps(report))
    with pytest.raises(SystemExit, match="no --work-dir"):
        order.analyse([path], {})


def test_order_and_random_statistics(order):
    latencies = np.array([3.0, 1.0, math.inf, 2.0])
    assert order.order_stats(latencies, np.array([4.0, 3.0, 2.0, 1.0])) == (2, pytest.approx(1 / 3))
    assert order.order_stats(latencies, np.array([0.0, 0.0, 9.0, 1.0])) == (4, 0.0)
    assert order.order_stats(np.array([1.0, math.inf]), np.zeros(2)) is None
    position, top1 = order.random_stats(latencies)
    assert position == pytest.approx(5 / 2)
    assert top1 == pytest.approx((1 / 3 + 1 + 0 + 1 / 2) / 4)
