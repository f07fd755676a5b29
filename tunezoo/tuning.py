"""The tune driver: tune a zoo model or a named workload with a tunezoo predictor.

One function, :func:`tune`, behind ``tunezoo tune`` and the tuning benchmarks. It wires
MetaSchedule the way the rest of tunezoo measures: the fast CPU builder (no 22-second
intrinsic import per batch), the local runner with :class:`~tunezoo.measure.MeasureSettings`,
and a JSON database in ``work_dir`` (the tuning records a user can later contribute).
The cost model is a tunezoo predictor (:func:`tunezoo.loading.load_predictor`) or, with
``predictor="none"``, MetaSchedule's XGBoost model; both are timed the same way, so
the cost model's share of the wall time can be compared.

A measure callback records ``(trials so far, seconds, best latency so far, seconds at the
batch's end)`` after every measured candidate: the data of a "best latency vs. trials"
curve. ``seconds`` is when that candidate's result came back (the runner is wrapped in a
:class:`TimedRunner`); the batch's end is when MetaSchedule hands the whole batch over.
For a model, the latency is MetaSchedule's "total latency": the task-weight-weighted sum
of each task's best.
"""

from __future__ import annotations

import difflib
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tvm
from tqdm import tqdm
from tvm import te
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder import PyBuilder
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback
from tvm.s_tir.meta_schedule.runner import PyRunner, PyRunnerFuture

from tunezoo.cost_model import TimedCostModel, TunezooCostModel, run_latency
from tunezoo.measure import MeasureSettings, make_builder, make_local_runner
from tunezoo.predictor import Predictor
from tunezoo.targets import get_target

# --------------------------------------------------------------------- named workloads


def _module(*tensors: te.Tensor) -> tvm.IRModule:
    func = te.create_prim_func(list(tensors)).with_attr("global_symbol", "main")
    return tvm.IRModule({"main": func})


def matmul(n: int, m: int, k: int) -> tvm.IRModule:
    """``C[n, m] = A[n, k] @ B[k, m]`` in float32."""
    a = te.placeholder((n, k), name="A")
    b = te.placeholder((k, m), name="B")
    r = te.reduce_axis((0, k), name="k")
    c = te.compute((n, m), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="C")
    return _module(a, b, c)


def conv2d_nchw(
    size: int, channels: int, filters: int, kernel: int, stride: int = 1, batch: int = 1
) -> tvm.IRModule:
    """A same-padded NCHW float32 convolution (a ResNet layer when size=56, 64->64, 3x3)."""
    pad = kernel // 2
    data = te.placeholder((batch, channels, size, size), name="data")
    weight = te.placeholder((filters, channels, kernel, kernel), name="weight")
    padded_size = size + 2 * pad
    padded = te.compute(
        (batch, channels, padded_size, padded_size),
        lambda n, c, y, x: tvm.tirx.if_then_else(
            tvm.tirx.all(y >= pad, y < size + pad, x >= pad, x < size + pad),
            data[n, c, y - pad, x - pad],
            tvm.tirx.const(0.0, "float32"),
        ),
        name="pad",
    )
    out_size = (size + 2 * pad - kernel) // stride + 1
    rc = te.reduce_axis((0, channels), name="rc")
    ry = te.reduce_axis((0, kernel), name="ry")
    rx = te.reduce_axis((0, kernel), name="rx")
    conv = te.compute(
        (batch, filters, out_size, out_size),
        lambda n, f, y, x: te.sum(
            padded[n, rc, y * stride + ry, x * stride + rx] * weight[f, rc, ry, rx],
            axis=[rc, ry, rx],
        ),
        name="conv",
    )
    return _module(data, weight, conv)


@dataclass(frozen=True)
class NamedWorkload:
    """A single TIR workload ``tunezoo tune`` knows by name (for quick benchmarks)."""

    name: str
    description: str
    build: Callable[[], tvm.IRModule]


# The one table of named workloads. The first two are FACTS.md's reference measurements.
WORKLOADS: dict[str, NamedWorkload] = {
    w.name: w
    for w in (
        NamedWorkload("matmul-512", "float32 matmul 512x512x512", lambda: matmul(512, 512, 512)),
        NamedWorkload(
            "conv2d-resnet-3x3",
            "ResNet conv: 1x64x56x56, 64 filters 3x3, stride 1, same padding",
            lambda: conv2d_nchw(56, 64, 64, 3),
        ),
        NamedWorkload(
            "conv2d-resnet-1x1",
            "ResNet bottleneck conv: 1x256x56x56, 64 filters 1x1",
            lambda: conv2d_nchw(56, 256, 64, 1),
        ),
        NamedWorkload(
            "matmul-1024", "float32 matmul 1024x1024x1024", lambda: matmul(1024, 1024, 1024)
        ),
        NamedWorkload(
            "matmul-64", "float32 matmul 64x64x64 (smoke tests)", lambda: matmul(64, 64, 64)
        ),
    )
}


def list_workloads() -> list[str]:
    """Names :func:`tune` accepts: the named workloads, then the zoo models."""
    from dataset_builders.zoo import list_models  # noqa: PLC0415

    return sorted(WORKLOADS) + list_models()


# ----------------------------------------------------------------------------- progress


@derived_object
class TimedRunnerFuture(PyRunnerFuture):
    """A runner future that notes when its result first became available."""

    def __init__(self, inner: Any, clock: Callable[[], float]) -> None:
        self.inner = inner
        self.clock = clock
        self.seconds: float | None = None
        self.value: Any = None

    def done(self) -> bool:
        finished = bool(self.inner.done())
        if finished and self.seconds is None:
            self.seconds = self.clock()
        return finished

    def result(self) -> Any:
        out = self.inner.result()
        if self.seconds is None:
            self.seconds = self.clock()
        self.value = out
        return out


@derived_object
class TimedRunner(PyRunner):
    """Any MetaSchedule runner, noting when each candidate's result came back.

    MetaSchedule builds a whole batch, then its runner measures the candidates one after
    another. ``LocalRunner.run`` measures them all before it returns (its futures are done
    on arrival), so this runner hands the inner one a single input at a time, which does
    the same work in the same order, and dates each result as it returns; a future still
    pending (an RPC runner's) is dated when it is first seen done. A fast schedule found
    early in a batch is then dated when it was measured, not at the batch's end.
    :meth:`seconds_of` looks results up by identity, whatever order callbacks see them in.
    """

    def __init__(self, inner: Any, clock: Callable[[], float]) -> None:
        self.inner = inner
        self.clock = clock
        self.seconds = 0.0  # spent inside run: measuring, for a runner that waits
        self._pending: list[TimedRunnerFuture] = []

    def run(self, runner_inputs: list[Any]) -> list[Any]:
        start = self.clock()
        futures = []
        for runner_input in runner_inputs:
            for inner in self.inner.run([runner_input]):
                future = TimedRunnerFuture(inner, self.clock)
                future.done()  # dates a result that is already there
                futures.append(future)
        self._pending.extend(futures)
        self.seconds += self.clock() - start
        return futures

    def seconds_of(self, results: list[Any]) -> list[float | None]:
        """When each of ``results`` came back (None if this runner never returned it);
        the futures matched are forgotten."""
        out: list[float | None] = []
        for result in results:
            for i, future in enumerate(self._pending):
                if future.value is not None and future.value.same_as(result):
                    out.append(future.seconds)
                    del self._pending[i]
                    break
            else:
                out.append(None)
        return out


@derived_object
class TimedBuilder(PyBuilder):
    """Any MetaSchedule builder, with the seconds spent building (for a report's
    breakdown of where a session's time goes: search, build, measure)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def build(self, build_inputs: list[Any]) -> list[Any]:
        start = time.perf_counter()
        try:
            return self.inner.build(build_inputs)
        finally:
            self.seconds += time.perf_counter() - start


class _Progress:
    """Best latency per task and the history of the running total, after every measurement.

    One history entry per measured candidate, in the order MetaSchedule measured them (its
    evolutionary search hands over a batch best-predicted first), so "trials to reach a
    latency" is exact to the trial, not rounded up to the batch. Each entry holds when
    that candidate's result came back (from a :class:`TimedRunner`; the batch's end
    without one) and when its batch ended: when all of the batch's results arrived.
    """

    def __init__(
        self, task_names: list[str], weights: list[float], total: int, label: str, show: bool
    ) -> None:
        self.task_names = task_names
        self.weights = weights
        self.best = [math.inf] * len(task_names)
        self.trials = 0
        self.start = time.perf_counter()
        self.history: list[tuple[int, float, float, float]] = []
        self.runner: TimedRunner | None = None
        self.label = label
        self.bar = tqdm(total=total, unit="trial", disable=not show, dynamic_ncols=True)

    def total_latency(self) -> float:
        """Weighted sum of the tasks' best latencies (+inf until every task has run once)."""
        return sum(w * b for w, b in zip(self.weights, self.best, strict=True))

    def clock(self) -> float:
        """Seconds since the session started."""
        return time.perf_counter() - self.start

    def record(self, task_id: int, runner_results: list[Any]) -> None:
        now = self.clock()
        times = self.runner.seconds_of(runner_results) if self.runner else []
        times += [None] * (len(runner_results) - len(times))
        for result, seconds in zip(runner_results, times, strict=True):
            self.best[task_id] = min(self.best[task_id], run_latency(result))
            self.trials += 1
            at = now if seconds is None else min(seconds, now)
            self.history.append((self.trials, at, self.total_latency(), now))
        total = self.total_latency()
        shown = f"{total * 1e3:.4g} ms" if math.isfinite(total) else "n/a"
        self.bar.set_description_str(f"{self.label}: trials {self.trials}, best {shown}")
        self.bar.update(len(runner_results))

    def close(self) -> None:
        self.bar.close()


@derived_object
class ProgressCallback(PyMeasureCallback):
    """Hands every measured batch to a :class:`_Progress` (after MetaSchedule's defaults)."""

    def __init__(self, progress: _Progress) -> None:
        self.progress = progress

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        self.progress.record(int(task_id), list(runner_results))


# -------------------------------------------------------------------------------- result


@dataclass
class TuneResult:
    """What a tuning session achieved and what it cost.

    ``history`` holds ``(trials done, seconds since start, best latency so far, seconds at
    the batch's end)`` after each measured candidate: the seconds are when that candidate's
    result came back (see :class:`TimedRunner`);
    ``best_latency_s`` is +inf when some task never ran successfully.
    """

    what: str
    target_key: str
    predictor: str
    mode: str
    best_latency_s: float
    trials: int
    seconds: float
    work_dir: Path
    setup_seconds: float = 0.0
    history: list[tuple[int, float, float, float]] = field(default_factory=list)
    cost_model_stats: dict[str, Any] = field(default_factory=dict)
    # seconds building and measuring; the rest of ``seconds`` is MetaSchedule's search
    # (sampling, evolution, the cost model) and its bookkeeping
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    task_best_s: dict[str, float] = field(default_factory=dict)
    task_weights: dict[str, float] = field(default_factory=dict)

    def cost_model_fraction(self) -> float:
        """Share of the wall time spent inside the cost model's predict and update."""
        spent = float(self.cost_model_stats.get("total_seconds", 0.0))
        return spent / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["work_dir"] = str(self.work_dir)
        out["cost_model_fraction"] = self.cost_model_fraction()
        return _finite(out)


def _finite(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats (a task that never ran) become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------- tune


def _cores(num_cores: int | None) -> int:
    if num_cores is not None:
        return int(num_cores)
    try:
        return len(os.sched_getaffinity(0))  # what taskset allows, not the machine's total
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _source_name(model: Any, mode: str, request: str) -> str:
    """The artifact a loaded cost model's weights came from, for reports."""
    source = model.prior if mode == "hybrid" else model
    weights = source.init if mode in ("meta-adaptive", "hybrid") else source.predictor
    return str(weights.metadata.get("tunezoo_source", {}).get("name", request))


def _cost_model(
    predictor: Any,
    target_key: str,
    mode: str,
    cores: int,
    adapt_kwargs: dict[str, Any],
    screen: bool | str = False,
) -> tuple[Any, str]:
    """(the cost model, a label for reports) from tune()'s ``predictor`` argument."""
    if screen and (not isinstance(predictor, str) or predictor == "none"):
        raise ValueError(
            "screen needs a target or predictor name to load both predictors from; with "
            "predictors in memory, pass CascadeCostModel(screen, ranker) as the predictor"
        )
    if isinstance(predictor, str):
        if predictor == "none":
            if adapt_kwargs:
                raise ValueError(f"adaptation settings {sorted(adapt_kwargs)} need a predictor")
            return TimedCostModel("xgb", num_tuning_cores=cores, tree_method="auto"), "none"
        from tunezoo.loading import load_predictor  # noqa: PLC0415

        request = target_key if predictor == "auto" else predictor
        model = load_predictor(request, mode=mode, screen=screen, **adapt_kwargs)
        if not screen:
            return model, _source_name(model, mode, request)
        ranker = _source_name(model.ranker, mode, request)
        return model, f"{ranker} screened by {_source_name(model.screen, 'frozen', request)}"
    if isinstance(predictor, Predictor) and mode in ("meta-adaptive", "hybrid"):
        from tunezoo.hybrid_cost_model import hybrid_from_init  # noqa: PLC0415
        from tunezoo.meta_cost_model import MetaAdaptiveCostModel  # noqa: PLC0415

        label = f"{predictor.arch}.{predictor.target_key} meta-init (in memory)"
        if mode == "hybrid":
            return hybrid_from_init(predictor, **adapt_kwargs), f"{label} + online xgb"
        return MetaAdaptiveCostModel(predictor, **adapt_kwargs), label
    if isinstance(predictor, Predictor):
        model = TunezooCostModel(predictor, mode=mode, **adapt_kwargs)
        return model, f"{predictor.arch}.{predictor.target_key} (in memory)"
    if adapt_kwargs and isinstance(predictor, ms.cost_model.CostModel):
        raise ValueError(
            f"settings {sorted(adapt_kwargs)} apply when tune() builds the cost model; give "
            "them to the cost model you pass instead"
        )
    if isinstance(predictor, TunezooCostModel):
        return predictor, f"{predictor.predictor.arch}.{predictor.predictor.target_key}"
    if isinstance(predictor, ms.cost_model.CostModel):
        return predictor, type(predictor).__name__
    raise TypeError(
        "predictor must be 'auto', 'none', a predictor name, a Predictor or a CostModel; "
        f"got {type(predictor).__name__}"
    )


def _what(what: str | tvm.IRModule) -> tuple[str, tvm.IRModule | None, str | None]:
    """(label, module to tune_tir, zoo model name) of tune()'s ``what``; unknown: error."""
    if isinstance(what, tvm.IRModule):
        return "module", what, None
    if what in WORKLOADS:
        return what, WORKLOADS[what].build(), None
    from dataset_builders.zoo import MODELS, UnknownModelError  # noqa: PLC0415

    if what not in MODELS:
        close = difflib.get_close_matches(str(what), [*WORKLOADS, *MODELS], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(
            f"Unknown workload or model {what!r}.{hint} Workloads: "
            f"{', '.join(sorted(WORKLOADS))}. Models: {', '.join(sorted(MODELS))}."
        )
    return what, None, what


def tune(
    what: str | tvm.IRModule,
    *,
    target_key: str,
    trials: int,
    predictor: Any = "auto",
    work_dir: str | Path,
    num_trials_per_iter: int = 16,
    seed: int = 0,
    mode: str = "frozen",
    progress: bool = True,
    num_cores: int | None = None,
    settings: MeasureSettings | None = None,
    population_size: int | None = None,
    screen: bool | str = False,
    **adapt_kwargs: Any,
) -> TuneResult:
    """Tune ``what`` for ``target_key`` with at most ``trials`` measurements.

    ``what``: a named workload (:data:`WORKLOADS`), a zoo model name (all its tasks, tuned
    together by MetaSchedule's gradient task scheduler with the model's task weights), or
    an ``IRModule`` of one TIR function. ``predictor``: ``auto`` (the target's predictor),
    ``none`` (MetaSchedule's XGBoost model), a predictor name, a :class:`Predictor` or a
    ready cost model. ``mode`` and ``adapt_kwargs`` go to the tunezoo cost model.
    ``settings`` overrides how candidates are built and measured. ``population_size`` is
    the evolutionary search's (MetaSchedule's default: 512); every candidate of every
    generation is scored, so it sets the cost model's work per batch. ``screen`` (with a
    predictor name or ``auto``) puts the trace-token screen in front of the cost model
    (see :func:`tunezoo.loading.load_predictor`).

    ``seconds`` and ``history`` start after the one-off setup (task extraction and TVM's
    import of its tensor intrinsics, about 22 s, which any MetaSchedule session pays).
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    name, mod, model_name = _what(what)
    cores = _cores(num_cores)
    target = get_target(target_key).tvm_target(cores)
    settings = settings or MeasureSettings()
    cost_model, label = _cost_model(predictor, target_key, mode, cores, adapt_kwargs, screen)

    def strategy() -> Any:  # a fresh one per task: a strategy holds its task's state
        if population_size is None:
            return "evolutionary"
        return ms.search_strategy.EvolutionarySearch(population_size=int(population_size))

    common = {
        "work_dir": str(work),
        "max_trials_global": int(trials),
        "num_trials_per_iter": int(num_trials_per_iter),
        "builder": TimedBuilder(make_builder(settings, target)),
        "database": ms.database.JSONDatabase(work_dir=str(work)),
        "cost_model": cost_model,
    }
    setup = time.perf_counter()
    import tvm.s_tir.tensor_intrin  # noqa: F401, PLC0415 - TuneContext's import, paid here

    if model_name is None:
        tasks, task_names, weights = None, ["main"], [1.0]
    else:
        from dataset_builders.tasks import extract_tasks  # noqa: PLC0415

        tasks = extract_tasks(model_name, target)
        task_names = [t.name for t in tasks]
        weights = [float(t.weight) for t in tasks]
    setup = time.perf_counter() - setup
    tracker = _Progress(task_names, weights, int(trials), name, progress)
    tracker.runner = TimedRunner(make_local_runner(settings), tracker.clock)
    common["runner"] = tracker.runner
    callbacks = [*ms.measure_callback.MeasureCallback.create("default"), ProgressCallback(tracker)]
    try:
        if tasks is None:
            ms.tune_tir(
                mod,
                target,
                strategy=strategy(),
                measure_callbacks=callbacks,
                seed=seed,
                num_tuning_cores=cores,
                **common,
            )
        else:
            ms.tune_tasks(
                tasks=_tune_contexts(tasks, target, work, seed, cores, strategy),
                task_weights=weights,
                measure_callbacks=callbacks,
                task_scheduler="gradient",
                **common,
            )
    finally:
        tracker.close()
    seconds = time.perf_counter() - tracker.start
    stats = cost_model.stats() if hasattr(cost_model, "stats") else {}
    if label == "none":
        mode = "xgb"
    elif isinstance(predictor, ms.cost_model.CostModel):  # built by the caller: its own mode
        mode = str(stats.get("mode", mode))
    result = TuneResult(
        what=name,
        target_key=target_key,
        predictor=label,
        mode=mode,
        best_latency_s=tracker.total_latency(),
        trials=tracker.trials,
        seconds=seconds,
        setup_seconds=setup,
        work_dir=work,
        history=list(tracker.history),
        cost_model_stats=stats,
        build_seconds=common["builder"].seconds,
        run_seconds=tracker.runner.seconds,
        task_best_s=dict(zip(task_names, tracker.best, strict=True)),
        task_weights=dict(zip(task_names, weights, strict=True)),
    )
    if progress:
        best = result.best_latency_s
        shown = f"{best * 1e3:.4f} ms" if math.isfinite(best) else "n/a (a task never ran)"
        print(
            f"{name} on {target_key}: best latency {shown} after {result.trials} trials in "
            f"{seconds:.1f} s; cost model ({label}) {result.cost_model_fraction():.1%} of "
            f"the time. Database: {work}"
        )
    return result


def _tune_contexts(
    tasks, target, work: Path, seed: int, cores: int, strategy: Callable[[], Any]
) -> list[ms.TuneContext]:
    """One TuneContext per zoo task, set up as ``ms.tune_relax`` would."""
    from tvm.s_tir.meta_schedule.logging import get_loggers_from_work_dir  # noqa: PLC0415
    from tvm.s_tir.meta_schedule.utils import fork_seed  # noqa: PLC0415

    names = [t.name for t in tasks]
    return [
        ms.TuneContext(
            mod=task.mod,
            target=target,
            space_generator="post-order-apply",
            search_strategy=strategy(),
            task_name=task.name,
            logger=logger,
            rand_state=rand_state,
            num_threads=cores,
        ).clone()
        for task, logger, rand_state in zip(
            tasks,
            get_loggers_from_work_dir(str(work), names),
            fork_seed(seed, len(tasks)),
            strict=True,
        )
    ]


__all__ = [
    "WORKLOADS",
    "NamedWorkload",
    "ProgressCallback",
    "TimedBuilder",
    "TimedRunner",
    "TuneResult",
    "conv2d_nchw",
    "list_workloads",
    "matmul",
    "tune",
]
