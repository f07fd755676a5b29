"""The pooled builder builds what LocalBuilder builds, reuses its worker pool for the
configured number of batches, and reports failures in LocalBuilder's words."""

from __future__ import annotations

from pathlib import Path

import pytest
from make_tuning_db import cpu_target, matmul
from tvm.s_tir import meta_schedule as ms

from tunezoo.measure import MeasureSettings, fast_cpu_build, make_builder
from tunezoo.pooled_builder import PooledLocalBuilder

pytestmark = pytest.mark.tvm_measure


def inputs(n: int) -> list[ms.builder.BuilderInput]:
    target = cpu_target()
    return [ms.builder.BuilderInput(matmul(16 + 8 * i, 16, 16), target) for i in range(n)]


def test_one_pool_serves_several_batches_then_is_replaced():
    builder = PooledLocalBuilder(timeout_sec=60, f_build=fast_cpu_build, batches_per_pool=2)
    try:
        for call in range(3):
            results = builder.build(inputs(2))
            assert [r.error_msg for r in results] == [None, None]
            assert all(Path(r.artifact_path).stat().st_size > 0 for r in results)
            assert builder.pools_started == (1 if call < 2 else 2)
    finally:
        builder.shutdown()


def test_build_errors_are_reported_per_candidate_and_the_pool_goes_on():
    builder = PooledLocalBuilder(timeout_sec=60, f_build="tunezoo.no_such_build_function")
    try:
        results = builder.build(inputs(2))
        assert all("LocalBuilder: An exception occurred" in r.error_msg for r in results)
        assert all(r.artifact_path is None for r in results)
    finally:
        builder.shutdown()
    good = make_builder(MeasureSettings(), cpu_target())
    assert isinstance(good, PooledLocalBuilder)
    assert [r.error_msg for r in good.build(inputs(1))] == [None]


def test_pool_size_one_is_metaschedules_own_builder():
    builder = make_builder(MeasureSettings(builder_pool_batches=1), cpu_target())
    assert isinstance(builder, ms.builder.LocalBuilder)
    with pytest.raises(ValueError, match="at least 1"):
        PooledLocalBuilder(batches_per_pool=0)
