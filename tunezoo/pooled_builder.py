"""A MetaSchedule local builder whose worker pool outlives one batch.

MetaSchedule's ``LocalBuilder`` starts a fresh ``PopenPoolExecutor`` on every ``build``
call (TVM's comment: long-lived workers leak memory). A fresh worker imports TVM, and
through ``tvm_ffi`` also torch: about 5 s before the first candidate is built, on every
batch of 32. On this 2-core machine that is a fifth of a 128-candidate collection task.
:class:`PooledLocalBuilder` keeps the pool for ``batches_per_pool`` calls, then replaces
it, so the leak stays bounded and the start-up is paid that many times less. Timeouts and
exceptions are reported exactly as ``LocalBuilder`` reports them (a timed-out worker is
killed and restarted by the pool itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.builder import BuilderInput, BuilderResult, PyBuilder

# the function LocalBuilder's workers run (build, then export to a temporary file); private
# in TVM, so a rename there fails the builder tests here rather than silently diverging
from tvm.s_tir.meta_schedule.builder.local_builder import _serialize_params, _worker_func
from tvm.support.popen_pool import PopenPoolExecutor, StatusKind


@derived_object
class PooledLocalBuilder(PyBuilder):
    """``LocalBuilder`` semantics with a worker pool reused for ``batches_per_pool`` calls."""

    def __init__(
        self,
        *,
        max_workers: int = 1,
        timeout_sec: float = 30.0,
        f_build: Callable | str | None = None,
        f_export: Callable | str | None = None,
        batches_per_pool: int = 16,
    ) -> None:
        if batches_per_pool < 1 or max_workers < 1:
            raise ValueError("batches_per_pool and max_workers must be at least 1")
        self.max_workers = max_workers
        self.timeout_sec = timeout_sec
        self.f_build = f_build
        self.f_export = f_export
        self.batches_per_pool = batches_per_pool
        self.pools_started = 0
        self._pool: PopenPoolExecutor | None = None
        self._calls_on_pool = 0

    def build(self, build_inputs: list[BuilderInput]) -> list[BuilderResult]:
        pool = self._current_pool()
        args = [
            (self.f_build, self.f_export, b.mod, b.target, _serialize_params(b.params))
            for b in build_inputs
        ]
        results: list[BuilderResult] = []
        for item in pool.map_with_error_catching(lambda x: _worker_func(*x), args):
            if item.status == StatusKind.COMPLETE:
                results.append(BuilderResult(item.value, None))
            elif item.status == StatusKind.TIMEOUT:
                message = f"LocalBuilder: Timeout, killed after {self.timeout_sec} seconds"
                results.append(BuilderResult(None, message))
            elif item.status == StatusKind.EXCEPTION:
                message = "LocalBuilder: An exception occurred\n" + str(item.value)
                results.append(BuilderResult(None, message))
            else:
                raise ValueError(f"unexpected builder result status: {item.status}")
        return results

    def shutdown(self) -> None:
        """Stop the workers now (they also stop when the builder is garbage-collected)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _current_pool(self) -> PopenPoolExecutor:
        if self._pool is None or self._calls_on_pool >= self.batches_per_pool:
            self.shutdown()
            self._pool = PopenPoolExecutor(max_workers=self.max_workers, timeout=self.timeout_sec)
            self._calls_on_pool = 0
            self.pools_started += 1
        self._calls_on_pool += 1
        return self._pool

    def __getstate__(self) -> dict[str, Any]:  # a pool cannot be pickled; start a new one
        state = dict(self.__dict__)
        state["_pool"], state["_calls_on_pool"] = None, 0
        return state


__all__ = ["PooledLocalBuilder"]
