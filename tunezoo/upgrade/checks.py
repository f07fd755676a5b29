"""Prove an upgraded record works in TVM 0.27: it parses, replays and yields features.

Each check is the real thing, not an imitation: ``TuningRecord.from_json`` against the
upgraded workload, ``Trace.apply_to_schedule(remove_postproc=False)`` on a fresh
``Schedule`` and ``PerStoreFeature`` on a ``TuneContext`` whose target is the record's own
target (metal, opencl and cuda features differ from CPU ones). Contexts and targets are
cached, so the once-per-process import of TVM's tensor intrinsics (about 22 s, see
FACTS.md) is paid once, and only when a check needs it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tunezoo.upgrade.trace import uses_tensorize
from tunezoo.upgrade.workload import UpgradedWorkload

STAGE_PARSE = "trace-parse"
STAGE_TARGET = "target"
STAGE_REPLAY = "replay"
STAGE_FEATURES = "features"


class CheckError(RuntimeError):
    """A record failed one check in TVM 0.27; ``stage`` says which."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


_PRIMITIVE = re.compile(r"error occurred in the schedule primitive '([^']+)'")
_SCHEDULE_MESSAGE = re.compile(r"Error message: (.*)", re.DOTALL)


def short_error(exc: BaseException, limit: int = 300) -> str:
    """The informative part of a TVM error (its message, not its C++ backtrace or the
    whole IR a ScheduleError prints)."""
    text = str(exc)
    message = _SCHEDULE_MESSAGE.search(text)
    if message:
        primitive = _PRIMITIVE.search(text)
        where = f"schedule primitive '{primitive.group(1)}': " if primitive else ""
        return re.sub(r"\s+", " ", where + message.group(1)).strip()[:limit]
    lines = []
    for line in str(exc).splitlines():
        text = line.strip()
        if not text or text.startswith(("File ", "^", "-->", "|")) or line.startswith("  "):
            continue
        lines.append(text)
    text = " ".join(lines) or type(exc).__name__
    text = re.sub(r"\s+", " ", text)
    return text[:limit]


def light_tune_context(mod: Any, target: Any) -> Any:
    """A ``TuneContext`` for feature extraction without importing every tensor intrinsic.

    ``TuneContext.__init__`` starts with ``import tvm.s_tir.tensor_intrin`` (22 s on an idle
    machine, over 2 minutes on a loaded one), which feature extraction does not need: it
    only reads ``mod`` and ``target``. This builds the same object through the same FFI
    constructor the Python ``__init__`` calls, with no space generator or search strategy.
    If that private constructor ever changes, it falls back to the public one.
    """
    from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

    try:
        from tvm.s_tir.meta_schedule import _ffi_api  # noqa: PLC0415
        from tvm.s_tir.meta_schedule.logging import (  # noqa: PLC0415
            get_logger,
            get_logging_func,
        )

        ctx = ms.TuneContext.__new__(ms.TuneContext)
        ctx.__init_handle_by_constructor__(
            _ffi_api.TuneContext,
            mod,
            target,
            None,  # space generator
            None,  # search strategy
            "main",
            1,  # threads
            -1,  # random state
            get_logging_func(get_logger(__name__)),
        )
        _ffi_api.TuneContextInitialize(ctx)
        return ctx
    except (ImportError, AttributeError, TypeError):
        return ms.TuneContext(mod=mod, target=target)


@dataclass
class CheckedRecord:
    """What the checks learnt about a record that passed them all."""

    n_stores: int  # rows of its PerStoreFeature matrix


class RecordChecker:
    """Runs the checks, caching targets, tune contexts and intrinsic registration."""

    def __init__(self) -> None:
        self._targets: dict[str, Any] = {}
        self._contexts: dict[tuple[str, str], Any] = {}
        self._rvv_registered: set[str] = set()
        self._extractor = None

    def target(self, target: dict[str, Any]) -> Any:
        """The ``tvm.target.Target`` of a record's target dict (cached)."""
        import tvm  # noqa: PLC0415

        key = json.dumps(target, sort_keys=True)
        if key not in self._targets:
            try:
                self._targets[key] = tvm.target.Target(target)
            except Exception as exc:  # TVM raises several error types for bad targets
                self._targets[key] = CheckError(
                    STAGE_TARGET,
                    f"TVM 0.27 cannot construct target kind {target.get('kind')!r} "
                    f"({short_error(exc)})",
                )
        value = self._targets[key]
        if isinstance(value, CheckError):
            raise value
        return value

    def _context(self, workload: UpgradedWorkload, target: dict[str, Any]) -> Any:
        key = (workload.shash, json.dumps(target, sort_keys=True))
        if key not in self._contexts:
            self._contexts[key] = light_tune_context(workload.mod, self.target(target))
        return self._contexts[key]

    def _register_intrinsics(self, names: list[str], target: dict[str, Any]) -> None:
        """Make the tensor intrinsics a trace uses known to TVM (Tensorize needs them)."""
        import tvm.s_tir.tensor_intrin  # noqa: F401, PLC0415 - registers the static ones

        if any(n.startswith("rvv_") for n in names):
            key = json.dumps(target, sort_keys=True)
            if key not in self._rvv_registered:
                from tvm.s_tir.tensor_intrin.riscv_cpu import (  # noqa: PLC0415
                    register_rvv_isa_intrinsics,
                )

                try:
                    register_rvv_isa_intrinsics(self.target(target))
                except Exception as exc:
                    raise CheckError(
                        STAGE_PARSE,
                        f"cannot register RISC-V vector intrinsics ({short_error(exc)})",
                    ) from exc
                self._rvv_registered.add(key)

    @staticmethod
    def _diagnose(trace: Any, workload: UpgradedWorkload) -> str:
        """The detailed reason a trace does not replay (TVM's rendered ScheduleError)."""
        import tvm  # noqa: PLC0415

        sch = tvm.s_tir.Schedule(workload.mod, error_render_level="detail")
        try:
            tvm.s_tir.schedule.Trace.apply_json_to_schedule(trace, sch)
        except Exception as exc:
            return short_error(exc)
        return "the trace does not replay (TVM gave no details)"

    def check(self, record: list[Any], workload: UpgradedWorkload) -> CheckedRecord:
        """Parse, replay and featurise one upgraded record ``[trace, run_secs, target,
        args_info]``; raise :class:`CheckError` at the first failing stage."""
        import tvm  # noqa: PLC0415
        from tvm.s_tir import meta_schedule as ms  # noqa: PLC0415

        trace, _, target, _ = record
        if not isinstance(target, dict):
            raise CheckError(STAGE_TARGET, f"target is {type(target).__name__}, expected a dict")
        tvm_target = self.target(target)
        try:
            intrinsics = uses_tensorize(trace)
        except (TypeError, AttributeError, KeyError, IndexError) as exc:  # a malformed shape
            raise CheckError(STAGE_PARSE, f"malformed trace ({type(exc).__name__}: {exc})") from exc
        if intrinsics:  # parsing a Tensorize instruction looks the intrinsic up already
            self._register_intrinsics(intrinsics, target)
        try:
            rec = ms.database.TuningRecord.from_json(record, ms.database.Workload(workload.mod))
        except Exception as exc:
            # from_json replays the trace with error rendering off ("(not rendered)"):
            # replay it again with details to say which primitive failed and why
            if "not rendered" in str(exc):
                raise CheckError(STAGE_REPLAY, self._diagnose(trace, workload)) from exc
            raise CheckError(STAGE_PARSE, short_error(exc)) from exc
        context = self._context(workload, target)
        try:
            sch = tvm.s_tir.Schedule(workload.mod)
            rec.trace.apply_to_schedule(sch, remove_postproc=False)
        except Exception as exc:
            raise CheckError(STAGE_REPLAY, short_error(exc)) from exc
        try:
            if self._extractor is None:
                self._extractor = ms.feature_extractor.PerStoreFeature()
            candidate = ms.MeasureCandidate(sch, list(rec.args_info))
            feats = self._extractor.extract_from(context, [candidate])
            rows = int(feats[0].numpy().shape[0])
        except Exception as exc:
            message = short_error(exc)
            if "vscale" in message:
                message += (
                    " (TVM 0.27's PerStoreFeature cannot size the scalable vectors that its"
                    " rvv_* tensor intrinsics use; parse and replay passed)"
                )
            raise CheckError(STAGE_FEATURES, message) from exc
        if rows == 0:
            raise CheckError(STAGE_FEATURES, "feature extractor found no buffer stores")
        del tvm_target
        # not rec.as_json(): in 0.27 it fails on traces holding an IndexMap
        # (TransformLayout); the JSON that was just parsed is the record's 0.27 form
        return CheckedRecord(rows)
