"""Resumable collection of measured tuning records for one target.

One task (workload) at a time: sample and measure its candidates, then write its shards
(records first, the workloads file last as the "finished" marker). A rerun skips every
task whose marker exists, and overwrites the leftovers of a task that was in flight when
the previous run was killed; so a killed run loses at most that one task, and a finished
task is never measured twice.

Several collectors may share one output folder (say one per core, or one per model list):
each claims a task before measuring it (``.claims/<shard>.pid``, created exclusively) and
skips tasks another live collector holds; the claim of a collector that died is taken over.

A local collection refuses to start on a machine that is not the target it records
(:class:`MachineMismatchError`): its run times would be filed under another CPU's key. This
happened once: a session's machine turned out to be an Intel Xeon (``llvm-rocketlake``)
and the ``llvm-znver4`` collector, resumed as before, wrote 640 Xeon run times into the
Zen 4 dataset before the bench's report named the CPU (they were removed, never committed).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from dataset_builders.sampling import SamplingPlan, sample_task
from tunezoo.capture import RecordCapture
from tunezoo.hardware import Hardware, detect_hardware
from tunezoo.measure import MeasureSettings, make_builder, make_local_runner, make_rpc_runner
from tunezoo.records import write_shards
from tunezoo.schema import RECORD_SCHEMA, WORKLOAD_SCHEMA
from tunezoo.targets import detect_target, get_target


@dataclass(frozen=True)
class RPCSettings:
    tracker_host: str
    tracker_port: int
    tracker_key: str


@dataclass
class CollectSummary:
    tasks_total: int = 0
    tasks_skipped: int = 0
    tasks_claimed_elsewhere: int = 0  # held by another live collector sharing the folder
    tasks_done: int = 0
    records: int = 0
    failed: int = 0
    seconds: float = 0.0
    per_task: list[dict] = field(default_factory=list)

    def records_per_hour(self) -> float:
        return self.records / self.seconds * 3600 if self.seconds else 0.0


def load_or_extract_tasks(models: list[str], target, cache_dir: Path) -> list:
    """Zoo tasks for ``models``, cached as a workloads table (extraction takes minutes).

    The cache is keyed by the model list and the target; it is derived data (git-ignored)
    and is checked on load: every cached module must hash to its stored workload id.
    """
    import hashlib  # noqa: PLC0415

    import pyarrow.parquet as pq  # noqa: PLC0415
    import tvm  # noqa: PLC0415

    from dataset_builders.tasks import Task, extract_zoo  # noqa: PLC0415
    from tunezoo.workloads import workload_id  # noqa: PLC0415

    key = hashlib.sha256(json.dumps([models, str(target)]).encode()).hexdigest()[:12]
    path = cache_dir / f"tasks-{key}.parquet"
    try:
        rows = pq.read_table(path).to_pylist() if path.exists() else None
    except (pa.ArrowInvalid, OSError):  # damaged (a killed writer before writes were atomic)
        rows = None
    if rows is not None:
        tasks = []
        for r in rows:
            mod = tvm.ir.load_json(r["mod_json"])
            if workload_id(mod) != r["workload_id"]:
                break  # stale cache (another TVM?): extract again
            sources = tuple((m["model"], m["weight"]) for m in r["models"])
            tasks.append(
                Task(
                    r["name"],
                    mod,
                    sum(w for _, w in sources),
                    sources[0][0],
                    r["workload_id"],
                    r["flops"] or 0.0,
                    sources,
                )
            )
        else:
            return tasks
    tasks = extract_zoo(models, target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(
        [
            {
                "workload_id": t.workload_id,
                "name": t.name,
                "mod_json": tvm.ir.save_json(t.mod),
                "flops": float(t.flops),
                "models": [{"model": m, "weight": w} for m, w in t.sources],
            }
            for t in tasks
        ]
    )
    # atomic: a collector killed mid-write, or a second one reading meanwhile, must never
    # see half a file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return tasks


def interleave_by_model(tasks: Sequence) -> list:
    """Round-robin over source models, so a partial collection covers many networks; within
    a model, most FLOPs first: compute-heavy tasks (matmul, conv) have large design spaces,
    while layout-only tasks (reshape, transpose: 0 FLOPs) often have a handful of schedules."""
    queues: dict[str, list] = {}
    for task in sorted(tasks, key=lambda t: -(t.flops or 0.0)):
        queues.setdefault(task.sources[0][0] if task.sources else "", []).append(task)
    ordered: list = []
    while any(queues.values()):
        for queue in queues.values():
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def task_shard_name(run_name: str, workload_id: str) -> str:
    """Deterministic per task, so a rerun finds (and can finish) its own shards."""
    return f"{run_name}-w{workload_id}"


def is_task_done(out_dir: Path, run_name: str, workload_id: str) -> bool:
    return (out_dir / "workloads" / f"{task_shard_name(run_name, workload_id)}.parquet").exists()


CLAIMS_DIR = ".claims"
CLAIM_GRACE_S = 60.0  # an empty claim this young is being written, not abandoned


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def claim_task(out_dir: Path, shard: str) -> bool:
    """Claim ``shard`` for this process; False when another live process holds it."""
    path = Path(out_dir) / CLAIMS_DIR / f"{shard}.pid"
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                text = path.read_text().strip()
                age = time.time() - path.stat().st_mtime
            except OSError:
                continue  # released meanwhile: try again
            pid = int(text) if text.isdigit() else 0
            if (pid and pid != os.getpid() and _process_alive(pid)) or (
                not pid and age < CLAIM_GRACE_S
            ):
                return False
            path.unlink(missing_ok=True)  # its collector died mid-task: take it over
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


def release_task(out_dir: Path, shard: str) -> None:
    (Path(out_dir) / CLAIMS_DIR / f"{shard}.pid").unlink(missing_ok=True)


class MachineMismatchError(RuntimeError):
    """Local measurements asked for a target this machine is not."""


def check_machine_is_target(target_key: str, family: str) -> None:
    """Raise :class:`MachineMismatchError` unless this machine detects as ``target_key``."""
    here = detect_target(prefer_gpu=family == "cuda")
    if here != target_key:
        raise MachineMismatchError(
            f"this machine is {here!r}, not {target_key!r}: measuring here would file its "
            f"run times under {target_key!r}. Collect with --target {here} into a folder of "
            f"that target, measure on a {target_key} machine through an RPC tracker "
            "(--rpc-tracker), or pass --allow-other-machine if these run times are meant "
            "to stand for that target."
        )


def collect_tasks(
    tasks: Sequence,
    *,
    target_key: str,
    out_dir: str | Path,
    plan: SamplingPlan,
    settings: MeasureSettings,
    num_cores: int = 1,
    rpc: RPCSettings | None = None,
    run_name: str | None = None,
    source: str = "tunezoo collect",
    contributor: str | None = None,
    max_tasks: int | None = None,
    progress: bool = True,
    allow_other_machine: bool = False,
) -> CollectSummary:
    """Collect records for ``tasks`` (objects with ``name``, ``mod``, ``workload_id``,
    ``sources`` as (model, weight) pairs) into ``out_dir``, resumably.

    Measuring locally (no ``rpc``) on a machine that is not ``target_key`` raises
    :class:`MachineMismatchError` before anything is built, unless ``allow_other_machine``.
    """
    spec = get_target(target_key)
    if rpc is None and not allow_other_machine:
        check_machine_is_target(target_key, spec.family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = spec.tvm_target(num_cores=num_cores)
    run_name = run_name or f"r{plan.n_random}e{plan.n_evolutionary}s{plan.seed}"
    if rpc is None:
        hardware = detect_hardware(num_cores=num_cores, gpu=spec.family == "cuda").columns()
    else:  # measured on a remote device this machine cannot see: not this host's CPU/GPU
        hardware = Hardware(None, None, num_cores, None).columns()
    builder = make_builder(settings, target)
    if rpc is not None:
        runner = make_rpc_runner(settings, rpc.tracker_host, rpc.tracker_port, rpc.tracker_key)
    else:
        runner = make_local_runner(settings)

    summary = CollectSummary(tasks_total=len(tasks))
    todo = [t for t in tasks if not is_task_done(out, run_name, t.workload_id)]
    summary.tasks_skipped = len(tasks) - len(todo)
    if max_tasks is not None:
        todo = todo[:max_tasks]
    start = time.time()
    bar = tqdm(todo, desc=f"collect {target_key}", unit="task", disable=not progress)
    for task in bar:
        shard = task_shard_name(run_name, task.workload_id)
        if is_task_done(out, run_name, task.workload_id):
            summary.tasks_skipped += 1  # finished meanwhile by a collector sharing the folder
            continue
        if not claim_task(out, shard):
            summary.tasks_claimed_elsewhere += 1
            continue
        try:
            _collect_one(
                task,
                out,
                shard,
                run_name,
                target_key,
                target,
                hardware,
                plan,
                settings,
                builder,
                runner,
                source,
                contributor,
                summary,
            )
        finally:
            release_task(out, shard)
        summary.seconds = time.time() - start
        bar.set_postfix(
            records=summary.records,
            failed=summary.failed,
            rec_per_h=int(summary.records_per_hour()),
        )
        _append_log(out, run_name, summary.per_task[-1])
    summary.seconds = time.time() - start
    return summary


def _collect_one(
    task,
    out: Path,
    shard: str,
    run_name: str,
    target_key: str,
    target,
    hardware: dict,
    plan: SamplingPlan,
    settings: MeasureSettings,
    builder,
    runner,
    source: str,
    contributor: str | None,
    summary: CollectSummary,
) -> None:
    """Sample, measure and write one task (its workloads marker last)."""
    from tunezoo.workloads import workload_row  # noqa: PLC0415 - imports TVM

    t0 = time.time()
    capture = RecordCapture(
        workload_ids=[task.workload_id],
        target_key=target_key,
        target=target,
        hardware=hardware,
        measure_settings=settings.to_json(),
        sampling="random",
        source=source,
        contributor=contributor,
    )
    rows = sample_task(
        task.mod,
        task.name,
        target,
        plan=plan,
        builder=builder,
        runner=runner,
        capture=capture,
    )
    records = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    workloads = pa.Table.from_pylist(
        [workload_row(task.mod, name=task.name, models=list(task.sources))],
        schema=WORKLOAD_SCHEMA,
    )
    write_shards(
        out,
        workloads,
        records,
        shard=shard,
        force=True,  # only this task's own unfinished leftovers can be there
    )
    failed = sum(1 for r in rows if r["error_kind"] is not None)
    summary.tasks_done += 1
    summary.records += len(rows)
    summary.failed += failed
    summary.per_task.append(
        {
            "workload_id": task.workload_id,
            "name": task.name,
            "records": len(rows),
            "failed": failed,
            "seconds": round(time.time() - t0, 1),
        }
    )


def _append_log(out: Path, run_name: str, entry: dict) -> None:
    """A human-readable log of finished tasks (the markers are the source of truth)."""
    log = out / "collect-log" / f"{run_name}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def summary_text(summary: CollectSummary) -> str:
    d = asdict(summary)
    d.pop("per_task")
    d["records_per_hour"] = round(summary.records_per_hour(), 1)
    return json.dumps(d, indent=2)
