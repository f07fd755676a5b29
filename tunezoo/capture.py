"""Turn MetaSchedule measurements into tunezoo record rows, failures included.

MetaSchedule's database keeps only what it needs to tune: a failed candidate becomes a
run time of 1e10 with no message. A :class:`RecordCapture` measure callback sees the
builder's and runner's own results, so failed builds and runs are kept with their error
kind and message, which is what a dataset needs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import tvm
from tvm.s_tir import meta_schedule as ms

from tunezoo.records import record_row


def to_plain_json(obj: Any) -> Any:
    """JSON-ready Python values in MetaSchedule database spelling (bools as 0/1)."""
    if isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, dict):
        return {str(k): to_plain_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple) or type(obj).__name__ == "Array":
        return [to_plain_json(v) for v in obj]
    if isinstance(obj, int | float | str) or obj is None:
        return obj
    if hasattr(obj, "value"):  # IntImm / FloatImm
        return obj.value
    return str(obj)


def dumps(obj: Any) -> str:
    return json.dumps(to_plain_json(obj), separators=(",", ":"))


def trace_json(trace: tvm.s_tir.schedule.Trace) -> str:
    """The trace as a MetaSchedule database writes it (postprocessing kept)."""
    return dumps(trace.as_json(remove_postproc=False))


def args_info_json(args_info) -> str:
    return dumps([a.as_json() for a in args_info])


def target_json(target: tvm.target.Target) -> str:
    return json.dumps(json.loads(str(target)), separators=(",", ":"))


def classify_error(builder_error: str | None, runner_error: str | None) -> str | None:
    """The schema's error kind for one measured candidate (None when it succeeded)."""
    if builder_error is not None:
        return "timeout" if "timeout" in builder_error.lower() else "build"
    if runner_error is not None:
        return "timeout" if "timeout" in runner_error.lower() else "run"
    return None


@tvm.ir.utils.derived_object
class RecordCapture(ms.measure_callback.PyMeasureCallback):
    """A measure callback that appends one record row per measured candidate.

    ``workload_ids`` maps the task index in the scheduler to the tunezoo workload id.
    ``sampling`` can be changed between tuning phases (random, then evolutionary).
    """

    def __init__(
        self,
        *,
        workload_ids: list[str],
        target_key: str,
        target: tvm.target.Target,
        hardware: dict,
        measure_settings: str,
        sampling: str,
        source: str,
        contributor: str | None = None,
    ) -> None:
        super().__init__()
        self.workload_ids = workload_ids
        self.target_key = target_key
        self.target_json = target_json(target)
        self.hardware = hardware
        self.measure_settings = measure_settings
        self.sampling = sampling
        self.source = source
        self.contributor = contributor
        self.rows: list[dict] = []

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        now = dt.datetime.now(dt.UTC)
        for cand, built, ran in zip(
            measure_candidates, builder_results, runner_results, strict=True
        ):
            run_error = ran.error_msg if ran is not None else "not run"
            kind = classify_error(built.error_msg, None if built.error_msg else run_error)
            if kind is None and ran.run_secs is not None:
                run_secs = [float(v.value if hasattr(v, "value") else v) for v in ran.run_secs]
            else:
                run_secs = [1e10]
            message = built.error_msg or run_error
            self.rows.append(
                record_row(
                    workload_id=self.workload_ids[task_id],
                    target_key=self.target_key,
                    target_json=self.target_json,
                    trace_json=trace_json(cand.sch.trace),
                    args_info_json=args_info_json(cand.args_info),
                    run_secs=run_secs,
                    error_kind=kind,
                    error_msg=(message[:4000] if kind else None),
                    hardware=self.hardware,
                    tvm_version=tvm.__version__,
                    measure_settings=self.measure_settings,
                    sampling=self.sampling,
                    source=self.source,
                    created_at=now,
                    contributor=self.contributor,
                )
            )
