"""Collection: killed and resumed without loss or duplicates; measured through TVM's RPC
tracker on loopback. Real builds and measurements of tiny workloads on this CPU."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tunezoo.records import info, read_records, validate

pytestmark = pytest.mark.tvm_measure
HERE = Path(__file__).resolve().parent

COLLECT_SCRIPT = textwrap.dedent(
    """
    import sys
    from types import SimpleNamespace
    sys.path.insert(0, {data!r})
    from make_tuning_db import matmul, add_relu
    from dataset_builders.collect import collect_tasks
    from dataset_builders.sampling import SamplingPlan
    from tunezoo.measure import MeasureSettings
    from tunezoo.targets import detect_target
    from tunezoo.workloads import workload_id

    mods = [("mm32", matmul(32, 32, 32)), ("mm48", matmul(48, 48, 48)),
            ("mm64", matmul(64, 64, 64))]
    tasks = [SimpleNamespace(name=n, mod=m, workload_id=workload_id(m), sources=(("t", 1),))
             for n, m in mods]
    collect_tasks(tasks, target_key=detect_target(prefer_gpu=False), out_dir=sys.argv[1],
                  progress=False,
                  plan=SamplingPlan(n_random=4, n_evolutionary=0, batch=4),
                  settings=MeasureSettings(number=1, repeat=2, min_repeat_ms=1))
    """
)


def _run_collect(out: Path, script: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _claim_holders(out: Path, pids: set[int]) -> set[int]:
    """The collectors among ``pids`` that hold a task's claim right now (mid-task)."""
    holders = set()
    for claim in (out / ".claims").glob("*.pid"):
        try:
            text = claim.read_text().strip()
        except OSError:
            continue  # released meanwhile
        if text.isdigit() and int(text) in pids:
            holders.add(int(text))
    return holders


def test_two_collectors_share_a_folder_and_a_killed_ones_task_is_not_lost(tmp_path):
    """Two collectors share one folder; one is killed mid-task; the other and then a rerun
    finish every task, each measured once, and what was finished is not redone.

    One scenario rather than two (sharing; kill and resume): every collector process pays
    TVM's tensor-intrinsic import (22-35 s), most of this test's time.
    """
    script = tmp_path / "collect.py"
    script.write_text(COLLECT_SCRIPT.format(data=str(HERE / "data")))
    out = tmp_path / "ds"
    procs = {proc.pid: proc for proc in (_run_collect(out, script) for _ in range(2))}
    deadline = time.time() + 600
    while True:  # kill a collector that holds a claim once a first task has finished
        for proc in procs.values():
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        assert time.time() < deadline, "no task finished in 10 minutes"
        done = list((out / "workloads").glob("*.parquet")) if out.exists() else []
        holders = _claim_holders(out, set(procs)) if done else set()
        if holders:
            break
        time.sleep(0.2)
    victim = procs.pop(min(holders))
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()  # its claim stays behind (unless it finished that task just before)
    (survivor,) = procs.values()
    assert survivor.wait(timeout=900) == 0, survivor.stdout.read().decode()[-2000:]
    finished = {  # the shards of every task finished so far
        p.name: p.read_bytes()
        for p in out.rglob("*.parquet")
        if (out / "workloads" / p.name.split("-", 1)[-1]).exists()
    }

    rerun = _run_collect(out, script)  # resumes whatever the killed collector left
    assert rerun.wait(timeout=900) == 0, rerun.stdout.read().decode()[-2000:]
    assert info(out)["workloads_with_records"] == 3 and validate(out) == []
    records = read_records(out)
    ids = records.column("record_id").to_pylist()
    per_workload = records.column("workload_id").to_pylist()
    assert len(ids) == len(set(ids)), "a record was stored twice"
    assert all(per_workload.count(w) <= 4 for w in set(per_workload)), "a task was redone"
    for name, data in finished.items():  # what was finished before the rerun is untouched
        assert next(out.rglob(name)).read_bytes() == data
    log = [
        json.loads(line)
        for f in (out / "collect-log").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert sorted(e["name"] for e in log) == ["mm32", "mm48", "mm64"], "a task measured twice"
    assert not list((out / ".claims").glob("*")), "claims left behind"


def test_claims_of_live_collectors_hold_and_dead_ones_are_taken_over(tmp_path):
    from dataset_builders.collect import CLAIMS_DIR, claim_task, release_task

    other = subprocess.Popen(["sleep", "60"])
    try:
        claim = tmp_path / CLAIMS_DIR / "t1.pid"
        claim.parent.mkdir(parents=True)
        claim.write_text(str(other.pid))
        assert not claim_task(tmp_path, "t1")  # a live collector holds it
        other.kill()
        other.wait()
        assert claim_task(tmp_path, "t1")  # its collector died: taken over
        assert claim.read_text() == str(os.getpid())
        release_task(tmp_path, "t1")
        assert not claim.exists()
        claim.write_text("")  # being written by a collector that just claimed it
        assert not claim_task(tmp_path, "t1")
        old = time.time() - 3600
        os.utime(claim, (old, old))  # ... or abandoned long ago
        assert claim_task(tmp_path, "t1")
    finally:
        other.kill()
        other.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rpc_tracker():
    """A TVM RPC tracker and one server registered under a key, both on 127.0.0.1."""
    port = _free_port()
    key = "tunezoo-test"
    tracker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tvm.exec.rpc_tracker",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--port-end",
            str(port + 1),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server_port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tvm.exec.rpc_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(server_port),
            "--port-end",  # the default end, 9199, would leave an empty range
            str(server_port + 1),
            "--tracker",
            f"127.0.0.1:{port}",
            "--key",
            key,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        from tvm import rpc

        deadline = time.time() + 300
        while True:  # the tracker's port first: connect_tracker itself retries for minutes
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert tracker.poll() is None, "the RPC tracker exited"
                assert time.time() < deadline, "the RPC tracker never listened"
                time.sleep(0.5)
        while key not in rpc.connect_tracker("127.0.0.1", port).summary()["queue_info"]:
            assert server.poll() is None, "the RPC server exited"
            assert time.time() < deadline, "the RPC server never registered with the tracker"
            time.sleep(1)
        yield "127.0.0.1", port, key
    finally:
        for proc in (server, tracker):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_collection_measures_through_the_rpc_tracker(rpc_tracker, tmp_path):
    from types import SimpleNamespace

    sys.path.insert(0, str(HERE / "data"))
    from make_tuning_db import matmul

    from dataset_builders.collect import RPCSettings, collect_tasks
    from dataset_builders.sampling import SamplingPlan
    from tunezoo.measure import MeasureSettings
    from tunezoo.targets import detect_target
    from tunezoo.workloads import workload_id

    host, port, key = rpc_tracker
    mod = matmul(32, 32, 32)
    task = SimpleNamespace(name="mm32", mod=mod, workload_id=workload_id(mod), sources=(("t", 1),))
    summary = collect_tasks(
        [task],
        target_key=detect_target(prefer_gpu=False),
        out_dir=tmp_path,
        progress=False,
        plan=SamplingPlan(n_random=4, n_evolutionary=0, batch=4),
        settings=MeasureSettings(number=1, repeat=2, min_repeat_ms=1, runner="rpc"),
        rpc=RPCSettings(host, port, key),
    )
    assert summary.records >= 4 and summary.failed == 0
    assert validate(tmp_path) == []
    records = read_records(tmp_path).to_pylist()
    assert all(r["error_kind"] is None and len(r["run_secs"]) == 2 for r in records)
    assert {json.loads(r["measure_settings"])["runner"] for r in records} == {"rpc"}
    # measured on the remote device: this host's CPU would be a false fingerprint
    assert {(r["hw_cpu_model"], r["hw_gpu_model"]) for r in records} == {(None, None)}


def _a_target_this_machine_is_not() -> str:
    """A generic AVX2 x86 key (its code runs on any x86 CI machine) that is not this one."""
    from tunezoo.targets import detect_target

    here = detect_target(prefer_gpu=False)
    return next(k for k in ("llvm-core-avx2", "llvm-haswell") if k != here)


def _mm32_task():
    from types import SimpleNamespace

    sys.path.insert(0, str(HERE / "data"))
    from make_tuning_db import matmul

    from tunezoo.workloads import workload_id

    mod = matmul(32, 32, 32)
    return SimpleNamespace(name="mm32", mod=mod, workload_id=workload_id(mod), sources=(("t", 1),))


def test_local_collection_refuses_a_target_this_machine_is_not(tmp_path):
    """Run times measured here must not be filed under another CPU's key (it happened once:
    a Xeon session resumed the Zen 4 collector)."""
    from dataset_builders.collect import MachineMismatchError, collect_tasks
    from dataset_builders.sampling import SamplingPlan
    from tunezoo.measure import MeasureSettings
    from tunezoo.targets import detect_target

    other, here = _a_target_this_machine_is_not(), detect_target(prefer_gpu=False)
    out = tmp_path / "ds"

    def collect(**kwargs):
        return collect_tasks(
            [_mm32_task()],
            target_key=other,
            out_dir=out,
            progress=False,
            plan=SamplingPlan(n_random=4, n_evolutionary=0, batch=4),
            settings=MeasureSettings(number=1, repeat=2, min_repeat_ms=1),
            **kwargs,
        )

    with pytest.raises(MachineMismatchError) as err:
        collect()
    message = str(err.value)
    assert repr(here) in message and repr(other) in message
    assert "--allow-other-machine" in message and "--rpc-tracker" in message
    assert not out.exists()  # refused before anything was created

    # said on purpose, it measures (and records the key it was told)
    assert collect(allow_other_machine=True).records >= 4
    assert set(read_records(out)["target_key"].to_pylist()) == {other}


def test_cli_collect_refuses_another_machine_in_one_line_before_extracting_tasks(tmp_path):
    other = _a_target_this_machine_is_not()
    out = tmp_path / "ds"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunezoo.cli",
            "collect",
            "--target",
            other,
            "--models",
            "resnet18",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tunezoo: error:")]
    assert len(errors) == 1 and "this machine is" in errors[0] and other in errors[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_damaged_task_cache_is_extracted_again(tmp_path):
    """A collector killed while writing the cache (before writes were atomic) left half a
    Parquet file; the next run must extract again, not crash on it."""
    from dataset_builders.collect import load_or_extract_tasks
    from tunezoo.targets import get_target

    target = get_target("llvm-core-avx2").tvm_target(num_cores=1)
    assert load_or_extract_tasks([], target, tmp_path) == []
    (cache,) = tmp_path.glob("tasks-*.parquet")
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 2])
    assert load_or_extract_tasks([], target, tmp_path) == []
    assert cache.read_bytes() == data  # rewritten whole
    assert [p.name for p in tmp_path.iterdir()] == [cache.name]  # no temporary file left
