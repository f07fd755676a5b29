"""Make real MetaSchedule JSON databases for the tests by tuning tiny workloads.

Kept beside the tests (not committed as blobs) so the databases always come from the TVM
that is installed. Some candidates are made to fail on purpose: the builder refuses every
candidate whose module hashes into a chosen bucket, so the database holds MetaSchedule's
failure records (run time 1e10) next to real measurements.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import cloudpickle
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms

from tunezoo.measure import MeasureSettings, fast_cpu_build, make_local_runner
from tunezoo.pooled_builder import PooledLocalBuilder


def matmul(n: int = 64, m: int = 64, k: int = 64) -> tvm.IRModule:
    a = te.placeholder((n, k), name="A")
    b = te.placeholder((k, m), name="B")
    r = te.reduce_axis((0, k), name="k")
    c = te.compute((n, m), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="C")
    return tvm.IRModule({"main": te.create_prim_func([a, b, c]).with_attr("global_symbol", "main")})


def add_relu(n: int = 4096) -> tvm.IRModule:
    a = te.placeholder((n,), name="A")
    b = te.placeholder((n,), name="B")
    c = te.compute((n,), lambda i: te.max(a[i] + b[i], tvm.tirx.const(0, "float32")), name="C")
    return tvm.IRModule({"main": te.create_prim_func([a, b, c]).with_attr("global_symbol", "main")})


def flaky_build(mod: tvm.IRModule, target: tvm.target.Target, params=None):
    """The fast CPU build, except that about one candidate in four fails to build."""
    digest = hashlib.sha256(mod.script().encode()).digest()
    if digest[0] % 4 == 0:
        raise RuntimeError("tunezoo test: deliberately failed build")
    return fast_cpu_build(mod, target, params)


# The builder's worker processes cannot import this test module: ship it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def cpu_target(num_cores: int = 1) -> tvm.target.Target:
    cpu = tvm.get_global_func("target.llvm_get_system_cpu")()
    return tvm.target.Target({"kind": "llvm", "mcpu": cpu, "num-cores": num_cores})


def tune_small_db(work_dir: str | Path, *, trials: int = 16, seed: int = 1) -> Path:
    """Tune a matmul and an elementwise op into a JSON database at ``work_dir``."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    target = cpu_target()
    settings = MeasureSettings(number=2, repeat=2, min_repeat_ms=1)
    database = ms.database.JSONDatabase(work_dir=str(work))
    # one builder pool and one runner for both workloads: a fresh worker imports TVM and
    # torch (seconds), which LocalBuilder would pay on every batch of this session fixture
    builder = PooledLocalBuilder(max_workers=1, f_build=flaky_build, batches_per_pool=64)
    runner = make_local_runner(settings)
    try:
        for mod in (matmul(), add_relu()):
            ms.tune_tir(
                mod,
                target,
                str(work),
                max_trials_global=trials,
                num_trials_per_iter=8,
                builder=builder,
                runner=runner,
                database=database,
                seed=seed,
            )
    finally:
        builder.shutdown()
    return work
