"""MetaSchedule builders and runners set up for stable, affordable measurement.

Two choices matter on a small shared CPU:

* The builder. MetaSchedule's default build function imports every tensor intrinsic
  (about 22 s) in each fresh worker pool, i.e. on every batch. For LLVM targets whose
  traces use no tensor intrinsics, :func:`fast_cpu_build` does the same build without
  that import. CUDA targets keep the default (their traces may tensorize).
* The runner. Enough repeats and a minimum repeat time so that each run time is an
  average over milliseconds, not a single noisy call; all repeats are stored, so the
  spread is known and noisy records can be filtered later.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import tvm
from tvm.s_tir import meta_schedule as ms


def fast_cpu_build(mod: tvm.IRModule, target: tvm.target.Target, _params=None):
    """MetaSchedule's default build, minus the 22-second tensor-intrinsic import."""
    from tvm.driver import build as tvm_build  # noqa: PLC0415
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock  # noqa: PLC0415

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


@dataclass(frozen=True)
class MeasureSettings:
    """Everything about how a record was measured, stored with every record as JSON."""

    number: int = 3  # calls averaged into one run time
    repeat: int = 5  # run times kept per candidate
    min_repeat_ms: int = 40  # each run time spans at least this long
    enable_cpu_cache_flush: bool = False
    builder: str = "local"  # local | rpc
    runner: str = "local"  # local | rpc
    build_timeout_s: float = 60.0
    run_timeout_s: float = 30.0
    fast_build: bool = True
    builder_workers: int = 1
    # build calls served by one worker pool; 1 = MetaSchedule's LocalBuilder (a new pool,
    # ~5 s of worker start-up, per batch); see tunezoo.pooled_builder
    builder_pool_batches: int = 16
    cpu_affinity: str | None = None  # e.g. "1": the cores the collector was pinned to

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def evaluator_config(self) -> ms.runner.EvaluatorConfig:
        return ms.runner.EvaluatorConfig(
            number=self.number,
            repeat=self.repeat,
            min_repeat_ms=self.min_repeat_ms,
            enable_cpu_cache_flush=self.enable_cpu_cache_flush,
        )


def make_builder(settings: MeasureSettings, target: tvm.target.Target) -> ms.builder.Builder:
    """A local builder (pooled unless ``builder_pool_batches`` is 1); the fast build
    function for LLVM targets when enabled."""
    f_build = fast_cpu_build if settings.fast_build and target.kind.name == "llvm" else None
    if settings.builder_pool_batches == 1:
        return ms.builder.LocalBuilder(
            max_workers=settings.builder_workers,
            timeout_sec=settings.build_timeout_s,
            f_build=f_build,
        )
    from tunezoo.pooled_builder import PooledLocalBuilder  # noqa: PLC0415

    return PooledLocalBuilder(
        max_workers=settings.builder_workers,
        timeout_sec=settings.build_timeout_s,
        f_build=f_build,
        batches_per_pool=settings.builder_pool_batches,
    )


def make_local_runner(settings: MeasureSettings) -> ms.runner.Runner:
    return ms.runner.LocalRunner(
        timeout_sec=settings.run_timeout_s, evaluator_config=settings.evaluator_config()
    )


def make_rpc_runner(
    settings: MeasureSettings,
    tracker_host: str,
    tracker_port: int,
    tracker_key: str,
    *,
    max_workers: int = 1,
) -> ms.runner.Runner:
    """An RPCRunner that asks TVM's RPC tracker for a device with ``tracker_key``."""
    rpc_config = ms.runner.RPCConfig(
        tracker_host=tracker_host,
        tracker_port=tracker_port,
        tracker_key=tracker_key,
        session_timeout_sec=max(60, int(settings.run_timeout_s * 4)),
    )
    return ms.runner.RPCRunner(
        rpc_config=rpc_config,
        evaluator_config=settings.evaluator_config(),
        max_workers=max_workers,
    )
