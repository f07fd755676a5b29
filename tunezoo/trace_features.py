"""Trace tokens: features read off a candidate's schedule trace, without lowering it.

MetaSchedule's ``PerStoreFeature`` lowers a deep copy of every candidate before it counts
anything: 1.4-2.5 ms per distinct candidate on this project's 2-core Xeon, about 3 ms on
its Zen 4, and 95% of a frozen per-store cost model's time in tuning (13-15% of the wall
time). The schedule trace already says what the search decided: tile sizes, loop order,
where stages are computed, what is parallel, vectorised and unrolled. Printing it costs
about 0.12 ms (``str(trace)``, in C++), and this module turns the printed text into one
token per instruction in 0.1-0.3 ms, in the spirit of TLP (Zhai et al., ASPLOS 2023),
which ranks Ansor's schedules from their primitive sequences alone. What the trace cannot
say is the extent of loops that postprocessing and ``compute_at`` create, so a predictor
on these tokens ranks worse than one on per-store features (mostly on reductions); it is
tunezoo's cheap screen (:mod:`tunezoo.cascade_cost_model`) and its cheapest predictor.

Train/serve consistency: training replays each record's stored trace and prints it, tune
time prints the candidate's trace; both go through :func:`trace_tokens`. A replayed record
prints exactly the text of the candidate that was measured (checked in the tests).

A token is ``TOKEN_DIM`` numbers: the instruction kind (one-hot), the annotation key for
(un)annotations (one-hot), and ``NUMERIC`` kind-specific numbers, mostly log2 of loop
extents and tile factors, which the parser tracks through ``sample_perfect_tile``,
``split``, ``fuse`` and ``reorder`` (see :class:`_Extents`).
"""

from __future__ import annotations

import functools
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tunezoo.features import (
    ExtractionStats,
    FeatureSet,
    cache_root,
    cached_per_group,
    mod_json_by_workload,
)

# Bump when the token layout or what fills it changes.
TRACE_FEATURE_VERSION = "trace-tokens.v1"
# Bump when what a record's cached text is changes (the printer, the replay).
TRACE_TEXT_VERSION = "trace-text.tvm-0.27.v1"

KINDS: tuple[str, ...] = (
    "get_sblock",
    "get_loops",
    "get_child_blocks",
    "get_consumers",
    "get_producers",
    "sample_perfect_tile",
    "sample_categorical",
    "sample_compute_location",
    "split",
    "fuse",
    "reorder",
    "parallel",
    "vectorize",
    "unroll",
    "bind",
    "annotate",
    "unannotate",
    "compute_inline",
    "reverse_compute_inline",
    "compute_at",
    "reverse_compute_at",
    "cache_write",
    "cache_read",
    "rfactor",
    "decompose_reduction",
    "enter_postproc",
    "tensorize",
    "blockize",
    "storage_align",
    "set_scope",
    "transform_layout",
    "nest_summary",  # not an instruction: one per reordered (tiled) loop nest, at the end
)
ANN_KEYS: tuple[str, ...] = (
    "meta_schedule.tiling_structure",
    "meta_schedule.parallel",
    "meta_schedule.vectorize",
    "meta_schedule.unroll_explicit",
    "meta_schedule.unroll_implicit",
    "pragma_auto_unroll_max_step",
    "pragma_unroll_explicit",
    "meta_schedule.random_compute_producer",
    "schedule_rule",
    "meta_schedule.cooperative_fetch",
    "meta_schedule.thread_extent_low_inclusive",
    "meta_schedule.thread_extent_high_inclusive",
)
NUMERIC = 12
_KIND_INDEX = {k: i for i, k in enumerate(KINDS)}
_ANN_INDEX = {k: i for i, k in enumerate(ANN_KEYS)}
_OTHER_KIND = len(KINDS)
ANN_OFFSET = len(KINDS) + 1
_OTHER_ANN = ANN_OFFSET + len(ANN_KEYS)
NUM_OFFSET = _OTHER_ANN + 1
TOKEN_DIM = NUM_OFFSET + NUMERIC

_LINE = re.compile(r"^\s+(?:([\w, ]+?) = )?sch\.(\w+)\((.*)\)\s*$")


class TraceParseError(ValueError):
    """A trace text this module cannot read; the message quotes the line."""


# ----------------------------------------------------------------------------- parsing


def _split_args(text: str) -> list[str]:
    """Top-level comma split (brackets and quoted strings nest)."""
    out, depth, start, quote = [], 0, 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _value(text: str) -> Any:
    """A printed argument: a variable name (kept as str), int, float, string, list, None."""
    head = text[:1]
    if head in "blv" and text[1:].isdigit():
        return text
    if head == '"' or head == "'":
        return text[1:-1]
    if head == "[":
        inner = text[1:-1].strip()
        return [_value(p) for p in _split_args(inner)] if inner else []
    if text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text  # an expression MetaSchedule printed verbatim; kept as text


def _arguments(text: str) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments of one call (a bracket-aware split, then values)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for part in _split_args(text):
        key, eq, rest = part.partition("=")
        if eq and key.isidentifier() and not rest.startswith("="):
            kwargs[key] = _value(rest.strip())
        else:
            args.append(_value(part))
    return args, kwargs


Call = tuple[str, tuple[str, ...], tuple[Any, ...], dict[str, Any]]


@functools.lru_cache(maxsize=1 << 16)
def _parse_line(line: str) -> Call | None:
    """One trace line; cached because nearly every line of a workload's traces repeats
    across its candidates (only the decisions differ), which makes a whole trace's parse
    mostly dictionary lookups. Callers must not mutate the result."""
    m = _LINE.match(line)
    if m is None:
        return None
    outs, method, arg_text = m.groups()
    outputs = tuple(o.strip() for o in outs.split(",") if o.strip()) if outs else ()
    args, kwargs = _arguments(arg_text)
    return method, outputs, tuple(args), kwargs


def clear_line_cache() -> None:
    """Forget every parsed line (a benchmark's cold start; the cache is bounded anyway)."""
    _parse_line.cache_clear()


def parse_trace(text: str) -> list[Call]:
    """``str(trace)`` as ``(method, outputs, positional args, keyword args)`` per line."""
    out = []
    for line in text.splitlines():
        if not line[:1].isspace() or not line.strip():
            continue  # the header comment and ``def apply_trace(...)``
        call = _parse_line(line)
        if call is None:
            raise TraceParseError(f"cannot read trace line {line.strip()!r}")
        out.append(call)
    return out


# ----------------------------------------------------------------- workload context

BlockLoops = dict[str, tuple[list[int], str]]


def workload_blocks(mod: Any) -> BlockLoops:
    """Each block of an unscheduled workload: its loop extents and iterator kinds
    (``S`` spatial, ``R`` reduction, ``O`` other), e.g. ``{"matmul": ([32, 128, 64],
    "SSR")}``. The trace names blocks but not their loops' extents; this fills them in
    (about 1 ms per workload, once per task)."""
    import tvm  # noqa: PLC0415

    sch = tvm.s_tir.Schedule(mod)
    func = mod.get_global_vars()[0].name_hint
    out: BlockLoops = {}
    for block in sch.get_child_blocks(sch.get_sblock("root", func_name=func)):
        node = sch.get(block)
        extents = []
        for loop in sch.get_loops(block):
            extent = sch.get(loop).extent
            extents.append(int(extent) if hasattr(extent, "value") else 0)
        kinds = "".join({0: "S", 2: "R"}.get(int(iv.iter_type), "O") for iv in node.iter_vars)
        out[str(node.name_hint)] = (extents, kinds)
    return out


# -------------------------------------------------------------------------- features


def _log2(x: float) -> float:
    return math.log2(x) if x > 0 else 0.0


class _Extents:
    """Loop extents the trace reveals, by variable name.

    ``sample_perfect_tile`` decides factors (``v`` names), ``split`` gives its output loops
    those factors, ``fuse`` multiplies known extents, ``reorder`` fixes a loop nest whose
    prefix products are the iterations outside each loop. Loops never tiled keep no
    extent; the model sees a "known" flag instead of a guess.
    """

    def __init__(self) -> None:
        self.extent: dict[str, int] = {}
        self.level: dict[str, tuple[int, int]] = {}  # split output -> (level, of n)
        self.outer: dict[str, int] = {}  # reordered loop -> iterations outside and at it
        self.nest_order: list[str] = []  # the last reorder's loops
        self.kind: dict[str, str] = {}  # workload loop -> "S" | "R" | "O"

    def value(self, v: Any) -> int | None:
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return v
        if isinstance(v, str):
            return self.extent.get(v)
        return None

    def split(self, loop: str, factors: list[Any], outputs: list[str]) -> list[int | None]:
        values = [self.value(f) for f in factors]
        total = self.extent.get(loop)
        if values.count(None) == 1 and total is not None:
            known = math.prod(v for v in values if v is not None)
            if known > 0:
                values[values.index(None)] = max(1, total // known)
        for i, (name, val) in enumerate(zip(outputs, values, strict=False)):
            if val is not None:
                self.extent[name] = val
            self.level[name] = (i, len(outputs))
        return values

    def reorder(self, loops: list[str]) -> None:
        self.nest_order = list(loops)
        running = 1
        for name in loops:
            ext = self.extent.get(name)
            if ext is None:
                break
            running *= ext
            self.outer[name] = running

    def adopt_nest(self, loops: list[str]) -> None:
        """Postprocessing re-reads the tiled block's loops under new names: when a block
        has exactly as many loops as the last reorder, they are those loops, in order."""
        if self.nest_order and len(loops) == len(self.nest_order):
            for new, old in zip(loops, self.nest_order, strict=True):
                if old in self.extent:
                    self.extent[new] = self.extent[old]
                if old in self.outer:
                    self.outer[new] = self.outer[old]
                if old in self.level:
                    self.level[new] = self.level[old]


def _nest_summary(ext: _Extents, nest: list[str]) -> list[float]:
    """Tile volumes of a reordered loop nest (log2 of products of extents).

    Multi-level tiling splits spatial loops into 4 levels and reduction loops into 2 on
    CPUs (``SSRSRS``), so a loop's split arity tells its kind. The products say how much
    work is parallel (level 0), the footprints of the inner tiles and the innermost loop,
    i.e. what the per-store features learn from the lowered program.
    """
    spatial: dict[int, int] = {}
    reduce: dict[int, int] = {}
    known = 0
    for name in nest:
        e = ext.extent.get(name)
        level, of = ext.level.get(name, (0, 0))
        if e is None:
            continue
        known += 1
        table = reduce if of == 2 else spatial
        table[level] = table.get(level, 1) * e
    num = [0.0] * NUMERIC
    num[2] = known / max(len(nest), 1)
    num[3] = _log2(spatial.get(0, 1))
    num[4] = _log2(math.prod(v for k, v in spatial.items() if k >= 1))
    num[5] = _log2(math.prod(v for k, v in spatial.items() if k >= 2))
    num[6] = _log2(spatial.get(3, 1))
    num[7] = _log2(reduce.get(0, 1))
    num[8] = _log2(reduce.get(1, 1))
    last = ext.extent.get(nest[-1]) if nest else None
    num[9] = _log2(last) if last else 0.0
    num[10] = _log2(math.prod(spatial.values()) * math.prod(reduce.values()))
    num[11] = len(nest) / 16
    return num


def trace_tokens(text: str, blocks: BlockLoops | None = None) -> np.ndarray:
    """One ``TOKEN_DIM`` vector per instruction of a printed trace (see module docstring),
    then one summary token per tiled loop nest. ``blocks`` (:func:`workload_blocks` of the
    workload) gives the extents of loops the trace does not tile."""
    blocks = blocks or {}
    block_of: dict[str, str] = {}  # block variable -> block name
    fresh: set[str] = set()  # block variables whose loops are still the workload's
    lines = parse_trace(text)
    n = len(lines)
    nests: list[list[str]] = []
    kind_ids: list[int] = []
    anns: list[tuple[int, int]] = []
    nums: list[list[float]] = []
    ext = _Extents()
    loops_of: dict[str, tuple[int, int]] = {}  # loop name -> (index, count) in get_loops
    decided: dict[str, Any] = {}  # sample_categorical output -> chosen value
    post = 0.0
    for i, (method, outputs, args, kw) in enumerate(lines):
        kind_ids.append(_KIND_INDEX.get(method, _OTHER_KIND))
        num = [0.0] * NUMERIC
        num[0] = post
        num[1] = i / max(n - 1, 1)
        if method == "enter_postproc":
            post = 1.0
        elif method == "get_sblock":
            name = kw.get("name", "")
            info = blocks.get(name)
            if outputs:
                block_of[outputs[0]] = name
                if not post:
                    fresh.add(outputs[0])
            if info is not None:
                extents, kinds = info
                spatial = math.prod(e for e, k in zip(extents, kinds, strict=False) if k == "S")
                reduce = math.prod(e for e, k in zip(extents, kinds, strict=False) if k == "R")
                num[2], num[3], num[4] = len(extents) / 8, _log2(spatial), _log2(reduce)
                num[5], num[6] = float("R" in kinds), 1.0
        elif method == "get_loops":
            block = kw.get("block", args[0] if args else None)
            info = blocks.get(block_of.get(block, ""))
            if block in fresh and info is not None and len(info[0]) == len(outputs):
                fresh.discard(block)  # later reads of its loops may follow transformations
                for name, e, k in zip(outputs, info[0], info[1], strict=False):
                    if e > 0:
                        ext.extent[name] = e
                    ext.kind[name] = k
                num[3] = _log2(math.prod(e for e in info[0] if e > 0))
                num[4] = 1.0
            for j, name in enumerate(outputs):
                loops_of[name] = (j, len(outputs))
            if post:
                ext.adopt_nest(outputs)
            num[2] = len(outputs) / 16
        elif method in ("get_child_blocks", "get_consumers", "get_producers"):
            num[2] = len(outputs) / 8
        elif method == "sample_perfect_tile":
            loop = kw.get("loop", args[0] if args else None)
            factors = [int(f) for f in kw.get("decision") or []]
            for name, f in zip(outputs, factors, strict=False):
                ext.extent[name] = f
            num[2] = kw.get("n", len(factors)) / 4
            for j, f in enumerate(factors[-4:]):
                num[3 + (4 - len(factors[-4:])) + j] = _log2(f)
            num[7] = _log2(math.prod(factors)) if factors else 0.0
            num[8] = _log2(kw.get("max_innermost_factor", 0) or 0) / 6
            idx, count = loops_of.get(loop, (0, 0))
            num[9], num[10] = idx / 8, count / 8
            num[11] = {"S": 1.0, "R": -1.0}.get(ext.kind.get(loop, ""), 0.0)
            if isinstance(loop, str) and factors:
                ext.extent.setdefault(loop, math.prod(factors))
        elif method == "split":
            loop = kw.get("loop", args[0] if args else None)
            factors = kw.get("factors", args[1:] if args else [])
            values = ext.split(loop, list(factors), outputs)
            num[2] = len(values) / 4
            for j, v in enumerate(values[-4:]):
                num[3 + (4 - len(values[-4:])) + j] = _log2(v) if v else -1.0
            total = ext.extent.get(loop)
            num[7] = _log2(total) if total else -1.0
            num[8] = float(post)
        elif method == "fuse":
            loops = [a for a in args if isinstance(a, str)]
            known = [ext.extent.get(a) for a in loops]
            num[2] = len(loops) / 8
            if loops and all(k is not None for k in known):
                ext.extent[outputs[0]] = math.prod(known)  # type: ignore[arg-type]
                num[3], num[4] = _log2(ext.extent[outputs[0]]), 1.0
            if loops and loops[0] in ext.outer and outputs:
                num[5] = _log2(ext.outer.get(loops[-1], 0))
        elif method == "reorder":
            loops = [a for a in args if isinstance(a, str)]
            ext.reorder(loops)
            nests.append(loops)
            num[2] = len(loops) / 16
        elif method in ("parallel", "vectorize", "unroll", "bind"):
            loop = kw.get("loop", args[0] if args else None)
            e = ext.extent.get(loop)
            num[2], num[3] = (_log2(e), 1.0) if e else (0.0, 0.0)
        elif method in ("annotate", "unannotate"):
            key = kw.get("ann_key", "")
            anns.append((i, ANN_OFFSET + _ANN_INDEX.get(key, len(ANN_KEYS))))
            val = kw.get("ann_val")
            if isinstance(val, str) and val in decided:
                val = decided[val]
            if isinstance(val, int | float) and not isinstance(val, bool):
                num[2] = _log2(1 + float(val))
            elif isinstance(val, str):
                num[3] = 1.0
            target = kw.get("block_or_loop")
            if isinstance(target, str) and target.startswith("l"):
                e = ext.extent.get(target)
                num[4], num[5] = (_log2(e), 1.0) if e else (0.0, 0.0)
        elif method == "sample_categorical":
            cands = list(kw.get("candidates") or [])
            d = kw.get("decision")
            if isinstance(d, int) and 0 <= d < len(cands):
                chosen = cands[d]
                if outputs:
                    decided[outputs[0]] = chosen
                num[2] = _log2(1 + float(chosen)) if isinstance(chosen, int | float) else 0.0
                num[3] = d / max(len(cands) - 1, 1)
        elif method == "sample_compute_location":
            d = kw.get("decision")
            d = int(d) if isinstance(d, int) else 0
            num[2], num[3] = float(d == -1), float(d == -2)
            num[4] = d / 8 if d >= 0 else 0.0
        elif method in ("compute_at", "reverse_compute_at"):
            loop = kw.get("loop", args[1] if len(args) > 1 else None)
            if loop in ext.level:
                level, of = ext.level[loop]
                num[2], num[3] = (level + 1) / 4, of / 4
            if loop in ext.outer:
                num[4], num[5] = _log2(ext.outer[loop]), 1.0
            idx, count = loops_of.get(loop, (0, 0))
            num[6] = idx / 16
            e = ext.extent.get(loop)
            num[7], num[8] = (_log2(e), 1.0) if e else (0.0, 0.0)
        elif method == "rfactor":
            num[2] = float(kw.get("factor_axis", 0) or 0) / 4
            loop = kw.get("loop", args[0] if args else None)
            e = ext.extent.get(loop)
            num[3], num[4] = (_log2(e), 1.0) if e else (0.0, 0.0)
        elif method == "decompose_reduction":
            loop = kw.get("loop", args[1] if len(args) > 1 else None)
            idx, count = loops_of.get(loop, (0, 0))
            num[2], num[3] = idx / 16, count / 16
        elif method in ("cache_write", "cache_read"):
            idx = kw.get("write_buffer_index", kw.get("read_buffer_index", 0))
            num[2] = float(idx or 0) / 4
        nums.append(num)
    for nest in nests:
        kind_ids.append(_KIND_INDEX["nest_summary"])
        nums.append(_nest_summary(ext, nest))
        nums[-1][0] = post
    out = np.zeros((max(len(kind_ids), 1), TOKEN_DIM), dtype=np.float32)
    if kind_ids:
        out[np.arange(len(kind_ids)), kind_ids] = 1.0
        out[:, NUM_OFFSET:] = nums
    for i, col in anns:
        out[i, col] = 1.0
    return out


# ----------------------------------------------------------------- records (training)


def _replay_texts_chunk(
    job: tuple[str, list[tuple[str, str]]],
) -> list[tuple[str, str | None, str | None]]:
    """Worker: replay some records of one workload; (record id, trace text | None, error)."""
    import json  # noqa: PLC0415

    import tvm  # noqa: PLC0415
    from tvm.s_tir.schedule import Trace  # noqa: PLC0415

    mod_json, items = job
    if any('"Tensorize"' in trace for _, trace in items):
        import tvm.s_tir.tensor_intrin  # noqa: F401, PLC0415 - registers what Tensorize needs
    mod = tvm.ir.load_json(mod_json)
    out: list[tuple[str, str | None, str | None]] = []
    for record_id, trace in items:
        try:
            sch = tvm.s_tir.Schedule(mod)
            Trace.apply_json_to_schedule(json.loads(trace), sch)
            out.append((record_id, str(sch.trace), None))
        except Exception as exc:  # a trace that no longer replays: no text, say why
            out.append((record_id, None, str(exc).strip().splitlines()[-1][:200]))
    return out


def default_text_cache_dir() -> Path:
    return cache_root() / "trace-text" / TRACE_TEXT_VERSION


def _text_cache_path(cache_dir: Path, workload_id: str) -> Path:
    return cache_dir / f"{workload_id}.parquet"


def _load_texts(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    table = pq.read_table(path)
    return dict(
        zip(table.column("record_id").to_pylist(), table.column("text").to_pylist(), strict=True)
    )


def _save_texts(path: Path, texts: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"record_id": list(texts), "text": list(texts.values())})
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
    os.close(fd)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def trace_texts(
    records: pa.Table,
    workloads: pa.Table,
    *,
    workers: int = 1,
    cache_dir: str | Path | None = None,
    chunk_size: int = 512,
    progress: bool = True,
    stats: ExtractionStats | None = None,
) -> dict[str, str]:
    """``str(trace)`` of every record that replays, by record id (cached on disk).

    Replaying is the only TVM work in this feature path (3-16 ms a record); the texts are
    cached per workload, and tokens are recomputed from them in well under a millisecond.
    """
    stats = stats if stats is not None else ExtractionStats()
    cache = (
        Path(cache_dir) / "trace-text" / TRACE_TEXT_VERSION
        if cache_dir is not None
        else default_text_cache_dir()
    )
    mod_json = mod_json_by_workload(workloads)
    rids = records.column("record_id").to_pylist()
    wids = records.column("workload_id").to_pylist()
    traces = records.column("trace").to_pylist()
    groups: dict[str, list[int]] = {}
    for i, wid in enumerate(wids):
        groups.setdefault(wid, []).append(i)
    t0 = time.time()
    found = cached_per_group(
        groups,
        rids,
        path_of=lambda wid: _text_cache_path(cache, wid),
        load=_load_texts,
        save=_save_texts,
        job_of=lambda wid, part: (mod_json[wid], [(rids[i], traces[i]) for i in part]),
        worker=_replay_texts_chunk,
        workers=workers,
        chunk_size=chunk_size,
        stats=stats,
        progress=progress,
        desc="traces",
    )
    stats.seconds += time.time() - t0
    return found


def _blocks_of_json(mod_json: str) -> BlockLoops:
    import tvm  # noqa: PLC0415

    return workload_blocks(tvm.ir.load_json(mod_json))


def extract_trace_features(
    records: pa.Table,
    workloads: pa.Table,
    *,
    workers: int = 1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    stats: ExtractionStats | None = None,
) -> tuple[FeatureSet, np.ndarray]:
    """Trace tokens of every record in ``records`` (row order kept), as
    :func:`tunezoo.features.extract_features` gives per-store features: the packed set and
    a mask of the records that have them (a trace that no longer replays has none)."""
    texts = trace_texts(
        records, workloads, workers=workers, cache_dir=cache_dir, progress=progress, stats=stats
    )
    rids = records.column("record_id").to_pylist()
    wids = records.column("workload_id").to_pylist()
    mask = np.array([r in texts for r in rids], dtype=bool)
    keep = np.nonzero(mask)[0]
    mod_json = mod_json_by_workload(workloads)
    blocks = {wid: _blocks_of_json(mod_json[wid]) for wid in {wids[i] for i in keep}}
    mats = [trace_tokens(texts[rids[i]], blocks[wids[i]]) for i in keep]
    fs = FeatureSet.from_list(
        [rids[i] for i in keep], [wids[i] for i in keep], mats, TRACE_FEATURE_VERSION, TOKEN_DIM
    )
    return fs, mask
