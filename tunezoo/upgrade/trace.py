"""Rewrite old MetaSchedule traces into the instruction set TVM 0.27 registers.

A trace is ``[instructions, decisions]``; an instruction is ``[kind, inputs, attrs,
outputs]`` and a decision ``[instruction index, value]``. Between TVM 0.12 and 0.27 the
changes that touch stored traces are few and are all listed here, each with the old and
new form, so the upgrade is auditable:

* ``GetBlock`` was renamed ``GetSBlock`` (blocks became ``s_tir.SBlock``); same inputs,
  attrs (block name, function name) and outputs.
* ``Split`` gained a second attribute, ``disable_predication`` (TVM 0.14); old traces
  carry only ``preserve_unit_iters``. The old behaviour is ``disable_predication=False``.
* Inputs that embed a TIR object as a JSON graph (``TransformLayout``'s ``IndexMap``) are
  in the old graph format; ``convert_graph`` (see :mod:`tunezoo.upgrade.objects`)
  rebuilds them for 0.27.

Anything else is passed through unchanged: TVM 0.27 parses it or says why not, and the
record is set aside with that reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tunezoo.upgrade.objects import looks_like_old_graph

INSTRUCTION_RENAMES = {"GetBlock": "GetSBlock"}
# instruction kind -> (attrs count in old traces, defaults appended to reach 0.27's count)
ATTR_DEFAULTS: dict[str, tuple[int, list[Any]]] = {"Split": (1, [0])}


class TraceError(ValueError):
    """A trace that is not shaped like a MetaSchedule trace; the message says where."""


def upgrade_trace(
    trace: Any, convert_graph: Callable[[str], str] | None = None
) -> tuple[list[Any], list[str]]:
    """(the trace in TVM 0.27's form, the list of changes made) without touching the input.

    ``convert_graph`` rewrites an embedded old object graph (a string input); without it
    such inputs pass through and TVM 0.27 will refuse them at parse time.
    """
    if not (isinstance(trace, list) and len(trace) == 2 and isinstance(trace[0], list)):
        raise TraceError("trace is not [instructions, decisions]")
    insts, decisions = copy.deepcopy(trace)
    changes: set[str] = set()
    for n, inst in enumerate(insts):
        if not (isinstance(inst, list) and len(inst) == 4 and isinstance(inst[0], str)):
            raise TraceError(f"instruction {n} is not [kind, inputs, attrs, outputs]")
        kind = inst[0]
        if kind in INSTRUCTION_RENAMES:
            inst[0] = INSTRUCTION_RENAMES[kind]
            changes.add(f"{kind}->{inst[0]}")
        if convert_graph is not None and isinstance(inst[1], list):
            for k, value in enumerate(inst[1]):
                if looks_like_old_graph(value):
                    try:
                        inst[1][k] = convert_graph(value)
                    except ValueError as exc:
                        raise TraceError(
                            f"instruction {n} ({kind}) input {k}: embedded object ({exc})"
                        ) from exc
                    changes.add(f"{kind}:graph")
        if kind in ATTR_DEFAULTS:
            old_count, defaults = ATTR_DEFAULTS[kind]
            if isinstance(inst[2], list) and len(inst[2]) == old_count:
                inst[2] = inst[2] + list(defaults)
                changes.add(f"{kind}+attrs{defaults}")
    if not isinstance(decisions, list):
        raise TraceError("trace decisions are not a list")
    return [insts, decisions], sorted(changes)


def uses_tensorize(trace: list[Any]) -> list[str]:
    """Names of the tensor intrinsics a trace applies (they must be registered first)."""
    names = []
    for inst in trace[0]:
        if inst[0] == "Tensorize" and inst[2] and isinstance(inst[2][0], str):
            names.append(inst[2][0])
    return names
