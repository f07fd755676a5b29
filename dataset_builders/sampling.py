"""Candidate sampling for one task: random coverage, then cost-model-guided search.

Ranking metrics live or die in the fast region of the space, which random samples rarely
reach; a cost model trained only on evolutionary samples never sees the slow bulk. So each
task gets both: first ``n_random`` uniform samples of the design space, then
``n_evolutionary`` candidates from ``EvolutionarySearch`` guided by an XGBoost cost model
that is first trained on the random phase's measurements. Both phases share one in-memory
database, so the evolutionary phase starts from the best measured candidates. It does not
skip schedules the random phase measured, though (its search remembers only its own), so on
a small design space it measures some of them again: the datasheet counts these per
workload (e.g. 52 of a `mean` reduction's 130 records); on the large spaces of convolutions
and matmuls the overlap is nil or one schedule.

The random phase is sampling *without replacement*: MetaSchedule's ``ReplayTrace`` draws
with replacement, which on small design spaces measured the same schedule many times (21%
of the first records were repeats). ``EvolutionarySearch`` with ``eps_greedy=1`` picks
every candidate at random from its randomly sampled initial population, skipping any
schedule already measured, which is the same distribution without the repeats.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass

import tvm
from tvm.s_tir import meta_schedule as ms

from tunezoo.capture import RecordCapture


@dataclass(frozen=True)
class SamplingPlan:
    n_random: int = 64
    n_evolutionary: int = 64
    batch: int = 16  # candidates per build/measure round
    seed: int = 0


@tvm.ir.utils.derived_object
class _KeepForCostModel(ms.measure_callback.PyMeasureCallback):
    """Keeps measured candidates so the next phase's cost model can learn from them."""

    def __init__(self) -> None:
        super().__init__()
        self.candidates: list = []
        self.results: list = []

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        self.candidates.extend(measure_candidates)
        self.results.extend(runner_results)


def random_without_replacement() -> ms.search_strategy.SearchStrategy:
    """Uniform samples of the design space, never the same schedule twice (see above)."""
    return ms.search_strategy.EvolutionarySearch(
        population_size=256, init_measured_ratio=0.0, genetic_num_iters=1, eps_greedy=1.0
    )


def _quiet_logger() -> logging.Logger:
    logger = logging.getLogger("tunezoo.sampling")
    logger.setLevel(logging.WARNING)
    return logger


def _context(mod, target, strategy, name: str, seed: int) -> ms.TuneContext:
    return ms.TuneContext(
        mod=mod,
        target=target,
        space_generator="post-order-apply",
        search_strategy=strategy,
        task_name=name,
        rand_state=seed,
        num_threads=int(target.attrs.get("num-cores", 1)) if target.kind.name == "llvm" else 1,
        logger=_quiet_logger(),
    )


def _run_phase(
    ctx: ms.TuneContext,
    *,
    trials: int,
    plan: SamplingPlan,
    builder,
    runner,
    database,
    cost_model,
    callbacks: list,
) -> None:
    if trials <= 0:
        return
    with tempfile.TemporaryDirectory(prefix="tunezoo-sample-") as work_dir:
        ms.tune_tasks(
            tasks=[ctx],
            task_weights=[1.0],
            work_dir=work_dir,
            max_trials_global=trials,
            max_trials_per_task=trials,
            num_trials_per_iter=plan.batch,
            builder=builder,
            runner=runner,
            database=database,
            cost_model=cost_model,
            measure_callbacks=[*ms.MeasureCallback.create("default"), *callbacks],
            task_scheduler="round-robin",
        )


def sample_task(
    mod: tvm.IRModule,
    name: str,
    target: tvm.target.Target,
    *,
    plan: SamplingPlan,
    builder,
    runner,
    capture: RecordCapture,
) -> list[dict]:
    """Measure ``plan.n_random + plan.n_evolutionary`` candidates of one workload.

    Returns the record rows of this task (failed candidates included).
    """
    capture.rows = []
    database = ms.database.MemoryDatabase()
    kept = _KeepForCostModel()

    capture.sampling = "random"
    random_ctx = _context(mod, target, random_without_replacement(), name, plan.seed)
    _run_phase(
        random_ctx,
        trials=plan.n_random,
        plan=plan,
        builder=builder,
        runner=runner,
        database=database,
        cost_model=ms.cost_model.RandomModel(),
        callbacks=[capture, kept],
    )

    if plan.n_evolutionary <= 0 or len(capture.rows) < plan.n_random:
        # random sampling without replacement ran out: the whole design space is measured,
        # so an evolutionary phase could only pay its start-up cost and find nothing new
        return list(capture.rows)

    capture.sampling = "evolutionary"
    evo_ctx = _context(mod, target, "evolutionary", name, plan.seed + 1)
    cost_model = ms.cost_model.XGBModel(num_tuning_cores=1, verbose_eval=1000)
    if kept.candidates:
        cost_model.update(evo_ctx, kept.candidates, kept.results)
    _run_phase(
        evo_ctx,
        trials=plan.n_evolutionary,
        plan=plan,
        builder=builder,
        runner=runner,
        database=database,
        cost_model=cost_model,
        callbacks=[capture],
    )
    return list(capture.rows)
