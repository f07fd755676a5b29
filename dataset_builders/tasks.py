"""Turn zoo models into MetaSchedule tuning tasks (TIR workloads with weights and ids).

The pipeline is the one FACTS.md measured for TVM 0.27: ``torch.export`` → Relax
(``from_exported_program``) → ``DecomposeOpsForInference`` / ``CanonicalizeBindings`` / the
"zero" pipeline (legalize + fuse; without it ``extract_tasks`` finds nothing) →
``ms.relax_integration.extract_tasks``. Tasks are identified by the structural hash that
MetaSchedule's ``JSONDatabase`` writes as the first field of ``database_workload.json``, so a
``Task.workload_id`` can be joined directly against tuning records.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import tvm
import tvm_ffi
from tvm import relax
from tvm.ir import IRModule
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.analysis import estimate_tir_flops
from tvm.target import Target

from dataset_builders.zoo import ModelSpec, get_model

__all__ = [
    "Task",
    "canonical_workload_hash",
    "cpu_target",
    "extract_tasks",
    "extract_zoo",
    "tvm_testing_canonical_hashes",
    "tvm_testing_workload_ids",
    "workload_id",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One TIR workload to tune.

    ``weight`` is how many times the network calls it (MetaSchedule's task weight). For a
    task from :func:`extract_zoo`, ``model``/``name`` are from the first model that produced
    it, ``weight`` is the sum over ``sources`` and ``sources`` lists every ``(model, weight)``.
    """

    name: str
    mod: IRModule
    weight: int
    model: str
    workload_id: str
    flops: float
    sources: tuple[tuple[str, int], ...] = field(default=())


def cpu_target(num_cores: int = 1) -> Target:
    """The local CPU as a MetaSchedule target (the dict form; CLI strings are rejected in 0.27)."""
    cpu = tvm.get_global_func("target.llvm_get_system_cpu")()
    return Target({"kind": "llvm", "mcpu": cpu, "num-cores": num_cores})


def workload_id(mod: IRModule) -> str:
    """MetaSchedule's workload id: the decimal structural hash ``JSONDatabase`` records."""
    return str(tvm_ffi.structural_hash(mod))


def canonical_workload_hash(mod: IRModule) -> str:
    """A hash that ignores how a workload was written down, not what it computes.

    Relax legalization emits int64 loop/shape indices and an ``op_pattern`` attribute while
    TE helpers emit int32 and no attribute, so the same matmul gets two MetaSchedule ids.
    Narrowing indices to int32 and keeping only ``tirx.noalias`` makes them collide (buffer,
    variable and block names are already ignored by structural hashing).
    """
    (gvar,) = mod.get_global_vars()
    func = mod[gvar]
    for key in list(func.attrs.keys()) if func.attrs else []:
        if key != "tirx.noalias":
            func = func.without_attr(key)
    func = func.with_attr("tirx.noalias", True)
    norm = IRModule({"main": func})
    # Extents past int32 cannot be narrowed; such a workload keeps int64 and simply won't match.
    with contextlib.suppress(RuntimeError, ValueError):
        norm = tvm.tirx.transform.ForceNarrowIndexToInt32()(norm)
    return str(tvm_ffi.structural_hash(norm))


def _lower(spec: ModelSpec, target: Target) -> IRModule:
    model = spec.build()
    with torch.no_grad():
        exported = torch.export.export(model, spec.example_inputs())
    from tvm.relax.frontend.torch import from_exported_program  # heavy; only when used

    mod = from_exported_program(exported, keep_params_as_input=True)
    mod, _params = relax.frontend.detach_params(mod)
    with target:
        mod = relax.transform.DecomposeOpsForInference()(mod)
        mod = relax.transform.CanonicalizeBindings()(mod)
        mod = relax.get_pipeline("zero")(mod)
    return mod


def extract_tasks(model: str | ModelSpec, target: Target) -> list[Task]:
    """Extract one model's MetaSchedule tasks for ``target``, in MetaSchedule's order.

    ``model`` is a zoo name or a :class:`ModelSpec` (e.g. a zoo spec with smaller inputs made
    with ``dataclasses.replace``, which is how the tests stay fast).
    """
    start = time.perf_counter()
    spec = get_model(model) if isinstance(model, str) else model
    model_name = spec.name
    mod = _lower(spec, target)
    tasks = []
    for extracted in ms.relax_integration.extract_tasks(mod, target):
        # dispatched[0] is the TIR IRModule MetaSchedule tunes (and hashes into its database).
        tir = extracted.dispatched[0]
        weight = int(extracted.weight)
        tasks.append(
            Task(
                name=str(extracted.task_name),
                mod=tir,
                weight=weight,
                model=model_name,
                workload_id=workload_id(tir),
                flops=float(estimate_tir_flops(tir)),
                sources=((model_name, weight),),
            )
        )
    log.info("%s: %d tasks in %.1f s", model_name, len(tasks), time.perf_counter() - start)
    return tasks


@functools.cache
def _testing_modules() -> tuple[IRModule, ...]:
    """Every shape in ``ms.testing.te_workload.CONFIGS``, as ``tune_tir`` would normalize it."""
    from tvm.s_tir.meta_schedule.testing.te_workload import CONFIGS, create_te_workload

    # Private, but it is exactly what tune_tir applies before hashing into the database.
    from tvm.s_tir.meta_schedule.tune_context import _normalize_mod

    mods = []
    for name, (_func, params) in CONFIGS.items():
        for idx in range(len(params)):
            try:
                mods.append(_normalize_mod(create_te_workload(name, idx)))
            except Exception as err:  # noqa: BLE001 - C2D_WIN_NHWC hits a removed TE flow
                log.warning("te_workload %s[%d] does not build: %s", name, idx, err)
    return tuple(mods)


def tvm_testing_workload_ids() -> set[str]:
    """MetaSchedule ids of TVM's own test workloads (``ms.testing.te_workload.CONFIGS``).

    These are the ids ``tune_tir``/``tune_te`` on those helpers write to a database. In 0.27
    that module is the only workload source the wheel ships (Relay's ``relay_workload`` is
    gone and the tests/ tree is not packaged), so nothing else can be covered.
    """
    return {workload_id(mod) for mod in _testing_modules()}


def tvm_testing_canonical_hashes() -> set[str]:
    """:func:`canonical_workload_hash` of the same test workloads, to catch re-spellings."""
    return {canonical_workload_hash(mod) for mod in _testing_modules()}


def extract_zoo(
    models: Iterable[str | ModelSpec], target: Target, *, exclude_tvm_testing: bool = True
) -> list[Task]:
    """Extract tasks from several models, merged by workload id, in first-seen order.

    A workload used by several models (every ResNet shares its stem) is tuned once; its
    ``sources`` keep each ``(model, weight)`` so per-model tuning budgets can still be
    derived. Workloads equal to TVM's own test workloads are dropped (by exact id or by
    :func:`canonical_workload_hash`) so the dataset holds no record TVM's tests already own.
    """
    merged: dict[str, Task] = {}
    sources: dict[str, list[tuple[str, int]]] = {}
    for model in models:
        for task in extract_tasks(model, target):
            if task.workload_id in merged:
                sources[task.workload_id].append((task.model, task.weight))
            else:
                merged[task.workload_id] = task
                sources[task.workload_id] = [(task.model, task.weight)]
    if exclude_tvm_testing:
        ids, canon = tvm_testing_workload_ids(), tvm_testing_canonical_hashes()
        for wid in list(merged):
            if wid in ids or canonical_workload_hash(merged[wid].mod) in canon:
                log.info("dropping %s (%s): a TVM test workload", wid, merged[wid].name)
                del merged[wid]
    return [
        Task(
            name=task.name,
            mod=task.mod,
            weight=sum(w for _, w in sources[wid]),
            model=task.model,
            workload_id=wid,
            flops=task.flops,
            sources=tuple(sources[wid]),
        )
        for wid, task in merged.items()
    ]
