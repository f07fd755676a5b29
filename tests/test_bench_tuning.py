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
    # a history without batch-end times (reports before 2026-12-07): the seconds are both
    assert bench.first_reach(history, 2.0) == (48, 30.0, 30.0)
    assert bench.first_reach(history, 1.9, rtol=0.1) == (48, 30.0, 30.0)
    assert bench.first_reach(history, 1.0) is None
    timed = [(1, 4.0, 3.0, 9.0), (2, 5.0, 2.0, 9.0), (3, 6.0, 2.0, 9.0), (4, 14.0, 1.0, 17.0)]
    assert bench.first_reach(timed, 2.0) == (2, 5.0, 9.0)
    assert bench.session_end(timed) == (4, 14.0, 17.0)


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


def test_the_reach_tolerance_applies_to_xgb_as_to_the_contenders(bench):
    """Within 10% of xgb's final best (1.0) is 1.1: xgb gets there at 10 s, not 30 s, so
    xgb against itself stays 1.0 and the contender's lead is measured from 10 s."""
    xgb = run([(16, 10.0, 1.05), (32, 20.0, 1.02), (48, 30.0, 1.0)])
    other = run([(16, 5.0, 1.08), (32, 10.0, 1.08), (48, 15.0, 1.08)])
    rows = bench.workload_summary({"xgb": {0: xgb}, "meta-adaptive": {0: other}}, [16], 0.1)
    assert rows["xgb"]["time_speedup"] == rows["xgb"]["trial_speedup"] == pytest.approx(1.0)
    assert rows["meta-adaptive"]["time_speedup"] == pytest.approx(10.0 / 5.0)
    assert rows["meta-adaptive"]["trial_speedup"] == pytest.approx(1.0)


def test_a_session_that_measured_nothing_is_charged_its_budget_and_time(bench):
    xgb = run([(16, 10.0, 2.0), (32, 20.0, 1.0)])
    nothing = {"history": [], "best_latency_s": math.inf, "seconds": 40.0,
               "cost_model_stats": {}}  # fmt: skip
    rows = bench.workload_summary({"xgb": {0: xgb}, "cascade": {0: nothing}}, [16], 0.0)
    c = rows["cascade"]
    assert c["bound"] and c["reached"] == "0/1"
    assert c["trial_speedup"] == pytest.approx(32 / 32)  # charged xgb's whole budget
    assert c["time_speedup"] == pytest.approx(20.0 / 40.0)


def test_geomeans_say_over_how_many_workloads_they_are(bench, tmp_path):
    """A workload whose contender has nothing at a budget has no ratio there: it drops out
    of that geomean, and the count and the table say so."""
    xgb = run([(16, 10.0, 2.0), (32, 20.0, 1.0)])
    late = run([(16, 10.0, math.inf), (32, 20.0, 1.0)])
    both = {
        "a": bench.workload_summary({"xgb": {0: xgb}, "cascade": {0: xgb}}, [16], 0.0),
        "b": bench.workload_summary({"xgb": {0: xgb}, "cascade": {0: late}}, [16], 0.0),
    }
    overall = bench.overall_summary(both, [16])["cascade"]
    assert overall["workloads"] == 2 and overall["speedup_workloads"] == 2
    assert overall["relative_latency_workloads"] == {"16": 1}
    assert bench._over(overall, 1) == " (over 1 of 2 workloads)"
    assert bench._over(overall, 2) == ""


def test_candidate_and_batch_end_times_give_two_speedups_and_phases_add_up(bench):
    """xgb reaches its final best (1.0) with the 2nd candidate of its 3rd batch; the
    contender with the 1st candidate of its 1st batch. Measured per candidate the lead is
    larger than at batch ends, where both pay their whole batch's builds."""

    # (seconds the candidate came back, seconds its batch ended): three batches of two
    times = [(7.0, 8.0), (8.0, 8.0), (15.0, 16.0), (16.0, 16.0), (23.0, 24.0), (24.0, 24.0)]

    def timed(latencies, cost, first_back=7.0):
        history = [
            (i + 1, first_back if i == 0 else back, best, end)
            for i, ((back, end), best) in enumerate(zip(times, latencies, strict=True))
        ]
        out = run(history, cost_seconds=cost)
        out.update(seconds=history[-1][3], build_seconds=12.0, run_seconds=6.0)
        return out

    xgb = timed([3.0, 3.0, 2.0, 2.0, 1.5, 1.0], cost=0.5)
    fast = timed([1.0, 1.0, 1.0, 0.9, 0.9, 0.9], cost=1.0, first_back=6.0)
    rows = bench.workload_summary({"xgb": {0: xgb}, "trace-frozen": {0: fast}}, [2], 0.0)
    f = rows["trace-frozen"]
    assert f["time_speedup"] == pytest.approx(24.0 / 6.0)
    assert f["time_speedup_batch_end"] == pytest.approx(24.0 / 8.0)
    assert f["trial_speedup"] == pytest.approx(6.0)
    phases = f["phase_seconds"]
    assert phases == {
        "search": pytest.approx(24.0 - 1.0 - 12.0 - 6.0),
        "cost_model": 1.0,
        "build": 12.0,
        "measure": 6.0,
        "total": 24.0,
    }
    overall = bench.overall_summary({"w": rows}, [2])
    assert overall["trace-frozen"]["time_speedup_batch_end"] == pytest.approx(3.0)


def test_the_ceiling_is_what_a_first_measurement_at_xgbs_best_would_gain(bench):
    """xgb reaches its final best (1.0) with its 5th trial, at 30 s. A contender whose first
    measurement came back at 10 s could at best be 3x faster and 5x leaner in trials, the
    one that reached it with that first measurement meets the ceiling, a later one stays
    under it."""
    xgb = run([(1, 12.0, 3.0), (2, 14.0, 2.0), (3, 20.0, 2.0), (4, 22.0, 1.5), (5, 30.0, 1.0)])
    at_once = run([(1, 10.0, 1.0), (2, 11.0, 1.0), (3, 20.0, 0.9), (4, 21.0, 0.9), (5, 28.0, 0.9)])
    later = run([(1, 15.0, 2.0), (2, 16.0, 1.0), (3, 24.0, 1.0), (4, 25.0, 1.0), (5, 30.0, 1.0)])
    rows = bench.workload_summary({"xgb": {0: xgb}, "cascade": {0: at_once},
                                   "meta-adaptive": {0: later}}, [5], 0.0)  # fmt: skip
    c, m = rows["cascade"], rows["meta-adaptive"]
    assert c["time_speedup_ceiling"] == pytest.approx(3.0) == c["time_speedup"]
    assert c["trial_speedup_ceiling"] == pytest.approx(5.0) == c["trial_speedup"]
    assert m["time_speedup_ceiling"] == pytest.approx(30.0 / 15.0)
    assert m["time_speedup"] == pytest.approx(30.0 / 16.0)  # under its ceiling, 2.0
    assert m["trial_speedup"] == pytest.approx(2.5)
    overall = bench.overall_summary({"w": rows}, [5])
    assert overall["meta-adaptive"]["time_speedup_ceiling"] == pytest.approx(2.0)
    table = "\n".join(bench._ceiling_table({"w": rows}, overall, ["cascade", "meta-adaptive"]))
    assert "| w | 5.00x | 3.00x | 2.00x |" in table


def test_order_within_a_batch_and_what_the_best_first_would_have_saved(bench):
    """Two batches of four (a batch is the entries sharing a batch-end time). xgb reaches
    its final best (1.0) with its 8th trial. The contender's first batch had its fastest
    candidate third, and it reached 1.0 with the 7th trial, in the second batch: had every
    batch measured its fastest first, that is the 5th trial."""

    def batched(latencies):
        best, history = math.inf, []
        for i, latency in enumerate(latencies):
            best = min(best, latency)
            history.append((i + 1, float(i + 1), best, 4.0 if i < 4 else 8.0))
        return run(history)

    xgb = batched([4.0, 3.0, 3.5, 3.0, 2.0, 2.5, 1.5, 1.0])
    mine = batched([3.0, 2.8, 1.2, 5.0, 1.5, 1.3, 1.0, 0.9])
    assert [len(b) for b in bench.measured_batches(mine["history"])] == [4, 4]
    assert bench.best_position(bench.measured_batches(mine["history"])[1], 1.2) == 4
    assert bench.best_position(bench.measured_batches(mine["history"])[1], 0.5) is None
    assert bench.reach_best_first(mine["history"], 1.0) == 5
    assert bench.reach_best_first(mine["history"], 0.1) is None
    # reports before 2026-12-07 have no batch ends: nothing to say
    assert bench.measured_batches([(1, 1.0, 2.0), (2, 2.0, 1.0)]) == []

    rows = bench.workload_summary({"xgb": {0: xgb}, "meta-adaptive": {0: mine}}, [8], 0.0)
    m = rows["meta-adaptive"]
    assert m["trial_speedup"] == pytest.approx(8 / 7)
    assert m["trial_speedup_best_first"] == pytest.approx(8 / 5)
    assert m["first_batch_best_positions"] == [3] and m["first_batch_sizes"] == [4]
    assert rows["xgb"]["first_batch_best_positions"] == [2]  # 3.0 at the 2nd, not beaten
    overall = bench.overall_summary({"w": rows}, [8])
    o = overall["meta-adaptive"]
    assert o["first_batch_best_position"] == 3 and o["first_batch_best_position_random"] == 2.5
    assert o["first_batch_best_first"] == 0 and o["first_batch_best_first_random"] == 0.25
    assert o["first_batch_best_in_4"] == 1 and o["first_batch_best_in_4_random"] == 1
    table = "\n".join(bench._order_table(overall, ["xgb", "meta-adaptive"]))
    assert "| meta-adaptive | 1 | 3.0 (2.5) | 0% (25%) | 100% (100%) | 1.14x / 1.60x |" in table
    assert "| xgb | 1 | 2.0 (2.5) | 0% (25%) | 100% (100%) | - |" in table


def test_resummarize_recomputes_a_committed_run_at_another_tolerance(bench, tmp_path):
    """The committed 192-trial JSON: rtol 0 gives back its own summary, a looser reach
    criterion can only make contenders reach xgb's final best sooner (or at all)."""
    from pathlib import Path  # noqa: PLC0415

    source = Path(__file__).parents[1] / "scripts/results/bench_tuning-192-meta.json"
    committed = bench.json.loads(source.read_text())["summary"]["overall"]
    same = bench.resummarize(source, 0.0, tmp_path / "same")["summary"]["overall"]
    same = bench.json.loads(bench.json.dumps(bench._json_safe(same)))
    # every committed figure comes back; newer reports add figures (batch-end times),
    # which for a report that only had batch-end times equal the per-candidate ones
    assert {n: {k: v[k] for k in committed[n]} for n, v in same.items()} == committed
    for name in committed:
        assert same[name]["time_speedup_batch_end"] == same[name]["time_speedup"]
    loose = bench.resummarize(source, 0.02, tmp_path / "loose")
    for name in ("tunezoo-frozen", "meta-adaptive"):
        assert (
            loose["summary"]["overall"][name]["trial_speedup"] >= committed[name]["trial_speedup"]
        )
    assert "within 2% of it" in (tmp_path / "loose.md").read_text()
    assert (tmp_path / "loose.png").stat().st_size > 0
    assert loose["resummarized_from"]["json"] == str(source)


def test_an_unfinished_run_can_be_summarised_while_it_runs(bench, tmp_path):
    """A run's JSON is rewritten after every session; summarising it before the end leaves
    out the workloads xgb has not tuned yet and says how many sessions are in."""
    from pathlib import Path  # noqa: PLC0415

    source = Path(__file__).parents[1] / "scripts/results/bench_tuning-cascade.json"
    report = bench.json.loads(source.read_text())
    del report["summary"], report["machine"]["loadavg_end"]
    first, *_, last = report["runs"]
    report["runs"][last] = {}
    report["runs"][first] = {c: {"0": runs["0"]} for c, runs in report["runs"][first].items()}
    report["runs"][first].pop("cascade")
    partial = tmp_path / "partial.json"
    partial.write_text(bench.json.dumps(report))
    summary = bench.resummarize(partial, 0.0, tmp_path / "out")["summary"]
    assert last not in summary["per_workload"]
    assert summary["per_workload"][first]["meta-adaptive"]["seeds"] == [0]
    assert "cascade" not in summary["per_workload"][first]
    planned = len(report["workloads"]) * len(report["settings"]["contenders"]) * 3
    done = 4 + (len(report["runs"]) - 2) * planned // len(report["workloads"])
    assert f"**unfinished: {done} of {planned} sessions**" in (tmp_path / "out.md").read_text()


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


def test_a_report_says_when_its_predictors_were_trained_for_another_target(bench):
    """The committed Zen 4 run tuned for the predictors' own target: no line. The same
    report relabelled as tuning for another CPU names each artifact and what it was
    trained for."""
    from pathlib import Path  # noqa: PLC0415

    source = Path(__file__).parents[1] / "scripts/results/bench_tuning-192-meta.json"
    report = bench.json.loads(source.read_text())
    assert "Transfer" not in bench.markdown(report)
    report["settings"]["target"] = "llvm-rocketlake"
    text = bench.markdown(report)
    assert "**Transfer:** tuning for `llvm-rocketlake` with" in text
    assert "(trained for `llvm-znver4`)" in text
    assert "(meta-trained for the `llvm-x86` family)" in text


def test_resume_keeps_an_interrupted_runs_sessions_and_refuses_other_settings(bench, tmp_path):
    """An interrupted run's JSON (a committed report cut to one contender's sessions) hands
    back exactly the sessions it finished and the command that started it; a run with
    another budget or without one of its workloads is refused with both values named."""
    from pathlib import Path  # noqa: PLC0415

    source = Path(__file__).parents[1] / "scripts/results/bench_tuning-192-meta.json"
    report = bench.json.loads(source.read_text())
    workload = next(iter(report["runs"]))
    report["runs"] = {workload: {"xgb": report["runs"][workload]["xgb"]}}
    partial = tmp_path / "partial.json"
    partial.write_text(bench.json.dumps(report))
    settings = dict(report["settings"])

    runs, earlier = bench.finished_sessions(partial, settings, [workload, "another"])
    assert earlier == {
        "first_command": report["command"],
        "earlier_elapsed_s": report["elapsed_s"],
    }
    assert set(runs) == {workload} and set(runs[workload]) == {"xgb"}
    restored = {int(s): bench._restore(r) for s, r in runs[workload]["xgb"].items()}
    assert sorted(restored) == [int(s) for s in report["runs"][workload]["xgb"]]
    assert all(r["history"][-1][0] == settings["trials"] for r in restored.values())
    assert "Resumed" not in bench.markdown(report)
    report["resumed"] = {"sessions_kept": 3, "at": "2026-12-07 06:04:43", **earlier}
    minutes = f"{report['elapsed_s'] / 60:.1f} min"
    assert f"with 3 sessions from an interrupted run that took {minutes}" in (
        bench.markdown(report)
    )

    with pytest.raises(SystemExit, match=r"trials: 192 there, 64 now"):
        bench.finished_sessions(partial, {**settings, "trials": 64}, [workload])
    with pytest.raises(SystemExit, match=r"not selected now"):
        bench.finished_sessions(partial, settings, ["another"])
    with pytest.raises(SystemExit, match=r"does not exist"):
        bench.finished_sessions(tmp_path / "none.json", settings, [workload])


def test_the_default_trace_predictor_is_the_screen_load_predictor_would_use(bench):
    """Without --trace-predictor, trace-frozen gets the bundled screen of the target's
    per-store predictor (a CPU without its own: its family's); a target with none is
    refused with the option to pass."""
    import warnings  # noqa: PLC0415

    from tunezoo.loading import screen_for  # noqa: PLC0415

    args = bench.parse_args(["--target", "llvm-emeraldrapids", "--contenders", "xgb,trace-frozen"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the family fallback's warning
        contenders, info = bench.load_contenders(args, args.contender_names)
    expected = screen_for("seed-ensemble.llvm-znver4")
    assert info["trace-predictor"]["path"].endswith(expected)
    assert contenders.trace_predictor.feature_version == bench.TRACE.version
    args = bench.parse_args(["--target", "cuda-a100", "--contenders", "xgb,trace-frozen"])
    with pytest.raises(SystemExit, match="pass --trace-predictor DIR"):
        bench.load_contenders(args, args.contender_names)


def test_a_sample_is_a_seeded_draw_split_between_test_and_held_out(bench):
    """``--sample N`` draws the benchmark's workloads from the committed dataset: the same
    seed draws the same ones, half from each split, and a draw larger than a split is
    refused, as is mixing it with ``--workloads``."""
    from pathlib import Path

    found = bench.dataset_workloads(Path(__file__).parents[1] / "data" / "llvm-znver4")
    if not found:
        pytest.skip("the committed dataset has no test or held-out workloads")
    tests = sum(w.source == "test" for w in found)
    draw = bench.sample_workloads(found, 5, seed=0)
    assert [w.source for w in draw] == ["test"] * 3 + ["heldout"] * 2
    assert len({w.workload_id for w in draw}) == 5
    assert bench.sample_workloads(found, 5, seed=0) == draw
    assert {w.key for s in range(1, 6) for w in bench.sample_workloads(found, 5, s)} - {
        w.key for w in draw
    }  # other seeds draw others
    with pytest.raises(SystemExit, match="only .* test workloads"):
        bench.sample_workloads(found, 2 * tests + 2, seed=0)
    with pytest.raises(SystemExit, match="drop --workloads"):
        bench.parse_args(["--sample", "4", "--workloads", "matmul-512"])
    args = bench.parse_args(["--sample", "4", "--sample-seed", "3"])
    assert bench.choose_workloads(args) == bench.sample_workloads(found, 4, seed=3)


def _sample8(bench):
    from pathlib import Path  # noqa: PLC0415

    source = Path(__file__).parents[1] / "scripts/results/bench_tuning-sample8.json"
    return source, bench.json.loads(source.read_text())


def test_pooling_two_runs_of_disjoint_workloads_gives_the_run_of_all_of_them(bench, tmp_path):
    """A run split in two by workload and pooled again gives the whole run's figures: each
    workload's ratios pair sessions of its own run, the geomeans cover every workload."""
    source, report = _sample8(bench)
    keys = list(report["runs"])
    halves = []
    for i, part in enumerate((keys[:3], keys[3:])):
        half = bench.json.loads(bench.json.dumps(report))
        half["runs"] = {k: report["runs"][k] for k in part}
        half["workloads"] = [w for w in report["workloads"] if w["key"] in part]
        halves.append(tmp_path / f"half{i}.json")
        halves[-1].write_text(bench.json.dumps(half))
    whole = bench.resummarize(source, 0.0, tmp_path / "whole")["summary"]
    pooled = bench.resummarize(halves, 0.0, tmp_path / "pooled")
    assert pooled["summary"] == whole
    assert [w["key"] for w in pooled["workloads"]] == keys
    text = (tmp_path / "pooled.md").read_text()
    assert "**Pooled** from 2 runs" in text and "No workload was tuned twice." in text
    assert f"`{halves[1]}`: {len(keys) - 3} workloads" in text


def test_a_workload_in_two_runs_counts_both_runs_sessions_as_seeds(bench, tmp_path):
    """Pooling a run with a copy of itself doubles every workload's seeds (renumbered, each
    contender still paired with the xgb session of its own run) and, the copy being
    identical, changes no ratio of means."""
    source, report = _sample8(bench)
    copy = tmp_path / "copy.json"
    copy.write_text(bench.json.dumps(report))
    alone = bench.resummarize(source, 0.0, tmp_path / "alone")["summary"]["per_workload"]
    pooled = bench.resummarize([source, copy], 0.0, tmp_path / "pooled")
    for key, rows in pooled["summary"]["per_workload"].items():
        for name, row in rows.items():
            assert row["seeds"] == [0, 1, 2, 3, 4, 5]
            for metric in ("trial_speedup", "time_speedup", "relative_latency"):
                assert row[metric] == pytest.approx(alone[key][name][metric])
    xgb = pooled["runs"][next(iter(pooled["runs"]))]["xgb"]
    assert xgb["3"]["history"] == xgb["0"]["history"]
    assert "8 workload(s) were tuned in more than one run" in (tmp_path / "pooled.md").read_text()


def test_pooling_refuses_runs_of_another_protocol(bench, tmp_path):
    """A run with another budget, or another predictor's weights, is not pooled: the error
    names the file and what differs."""
    source, report = _sample8(bench)
    other = bench.json.loads(bench.json.dumps(report))
    other["settings"]["trials"] = 128
    other["models"]["predictor"]["weights_sha256"] = "0" * 64
    path = tmp_path / "other.json"
    path.write_text(bench.json.dumps(other))
    with pytest.raises(SystemExit, match=r"other\.json was run differently.*trials: 128"):
        bench.resummarize([source, path], 0.0, tmp_path / "out")
    with pytest.raises(SystemExit, match="predictor weights 000000000000"):
        bench.resummarize([source, path], 0.0, tmp_path / "out")
    assert not (tmp_path / "out.json").exists()
