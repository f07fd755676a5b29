"""Trace tokens: parsing printed traces, what the tokens say, and train/serve consistency.

The hand-made trace below is a 64x64x64 matmul tiled the way MetaSchedule's multi-level
tiling does it on CPUs (``SSRSRS``), so every expected number can be worked out by hand.
The consistency test tunes for real: the texts the cost model saw for the candidates it was
given must be exactly the texts that replaying the stored records prints.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch
import tvm_ffi
from tvm.s_tir import meta_schedule as ms

from tunezoo.cost_model import TunezooCostModel
from tunezoo.feature_kinds import PER_STORE, TRACE, UnknownFeatureVersionError, feature_kind
from tunezoo.features import ExtractionStats
from tunezoo.measure import MeasureSettings
from tunezoo.models import build_model
from tunezoo.predictor import FeatureVersionError, Predictor
from tunezoo.records import read_records, read_workloads
from tunezoo.targets import detect_target
from tunezoo.trace_features import (
    ANN_KEYS,
    ANN_OFFSET,
    KINDS,
    NUM_OFFSET,
    TOKEN_DIM,
    TraceParseError,
    extract_trace_features,
    parse_trace,
    trace_tokens,
    workload_blocks,
)
from tunezoo.tuning import matmul, tune

MATMUL_TRACE = """\
# from tvm import s_tir
def apply_trace(sch: s_tir.Schedule) -> None:
  b0 = sch.get_sblock(name="C", func_name="main")
  b1 = sch.get_sblock(name="root", func_name="main")
  l2, l3, l4 = sch.get_loops(block=b0)
  v5, v6, v7, v8 = sch.sample_perfect_tile(loop=l2, n=4, max_innermost_factor=64, decision=[2, 4, 1, 8])
  l9, l10, l11, l12 = sch.split(loop=l2, factors=[v5, v6, v7, v8], preserve_unit_iters=True, disable_predication=False)
  v13, v14, v15, v16 = sch.sample_perfect_tile(loop=l3, n=4, max_innermost_factor=64, decision=[1, 2, 2, 16])
  l17, l18, l19, l20 = sch.split(loop=l3, factors=[v13, v14, v15, v16], preserve_unit_iters=True, disable_predication=False)
  v21, v22 = sch.sample_perfect_tile(loop=l4, n=2, max_innermost_factor=64, decision=[16, 4])
  l23, l24 = sch.split(loop=l4, factors=[v21, v22], preserve_unit_iters=True, disable_predication=False)
  sch.reorder(l9, l17, l10, l18, l23, l11, l19, l24, l12, l20)
  v25 = sch.sample_categorical(candidates=[0, 16, 64, 512], probs=[0.25, 0.25, 0.25, 0.25], decision=2)
  sch.annotate(block_or_loop=b1, ann_key="meta_schedule.unroll_explicit", ann_val=v25)
  sch.enter_postproc()
  b26 = sch.get_sblock(name="C", func_name="main")
  l27, l28, l29, l30, l31, l32, l33, l34, l35, l36 = sch.get_loops(block=b26)
  l37 = sch.fuse(l27, l28, preserve_unit_iters=True)
  sch.parallel(loop=l37)
  sch.vectorize(loop=l36)
"""  # noqa: E501 - MetaSchedule prints one instruction per line
MATMUL_BLOCKS = {"C": ([64, 64, 64], "SSR"), "root": ([], "")}


def kind_of(row: np.ndarray) -> str:
    return (*KINDS, "other")[int(np.argmax(row[: len(KINDS) + 1]))]


def num(row: np.ndarray, i: int) -> float:
    return float(row[NUM_OFFSET + i])


@pytest.fixture(scope="module")
def tokens() -> np.ndarray:
    return trace_tokens(MATMUL_TRACE, MATMUL_BLOCKS)


def test_one_token_per_instruction_then_one_per_tiled_nest(tokens):
    assert tokens.shape == (18 + 1, TOKEN_DIM) and tokens.dtype == np.float32
    kinds = [kind_of(r) for r in tokens]
    assert kinds[:3] == ["get_sblock", "get_sblock", "get_loops"]
    assert kinds[-1] == "nest_summary" and kinds.count("sample_perfect_tile") == 3
    # every token has exactly one kind; only the annotation has an annotation key
    assert (tokens[:, : len(KINDS) + 1].sum(axis=1) == 1).all()
    ann = tokens[:, ANN_OFFSET : ANN_OFFSET + len(ANN_KEYS) + 1]
    assert ann.sum() == 1 and ann[kinds.index("annotate"), 3] == 1  # unroll_explicit
    # after enter_postproc every token says so
    post = kinds.index("enter_postproc")
    assert [num(r, 0) for r in tokens[: post + 1]] == [0.0] * (post + 1)
    assert all(num(r, 0) == 1.0 for r in tokens[post + 1 :])


def test_tile_decisions_extents_and_loop_kinds(tokens):
    tiles = [r for r in tokens if kind_of(r) == "sample_perfect_tile"]
    i_tile, j_tile, k_tile = tiles
    # factors right-aligned as log2, then log2 of the loop's extent
    assert [num(i_tile, s) for s in (3, 4, 5, 6, 7)] == [1.0, 2.0, 0.0, 3.0, 6.0]
    assert [num(k_tile, s) for s in (3, 4, 5, 6, 7)] == [0.0, 0.0, 4.0, 2.0, 6.0]
    assert num(i_tile, 2) == 1.0 and num(k_tile, 2) == 0.5  # n / 4
    # spatial or reduction, from the workload's iterators
    assert (num(i_tile, 11), num(j_tile, 11), num(k_tile, 11)) == (1.0, 1.0, -1.0)
    sblock = tokens[0]
    assert num(sblock, 3) == 12.0 and num(sblock, 4) == 6.0 and num(sblock, 5) == 1.0


def test_the_nest_summary_holds_the_tile_volumes(tokens):
    summary = tokens[-1]
    assert num(summary, 2) == 1.0  # every loop of the nest has a known extent
    assert num(summary, 3) == 1.0  # level-0 spatial tiles: 2 * 1 = 2 parallel chunks
    assert num(summary, 4) == 11.0  # spatial tile below level 0: (4*1*8) * (2*2*16)
    assert num(summary, 5) == 8.0  # below level 1: (1*8) * (2*16)
    assert num(summary, 6) == 7.0  # innermost (register) tile: 8 * 16
    assert (num(summary, 7), num(summary, 8)) == (4.0, 2.0)  # reduction 16 x 4
    assert num(summary, 9) == 4.0  # innermost loop: j's last factor, 16
    assert num(summary, 10) == 18.0  # the whole iteration space, 64^3


def test_postprocessing_loops_inherit_the_tiled_nest(tokens):
    kinds = [kind_of(r) for r in tokens]
    fuse = tokens[kinds.index("fuse")]
    assert num(fuse, 2) == 2 / 8 and (num(fuse, 3), num(fuse, 4)) == (1.0, 1.0)  # 2 * 1
    parallel, vectorize = tokens[kinds.index("parallel")], tokens[kinds.index("vectorize")]
    assert (num(parallel, 2), num(parallel, 3)) == (1.0, 1.0)  # extent 2, known
    assert (num(vectorize, 2), num(vectorize, 3)) == (4.0, 1.0)  # j's innermost 16
    annotate = tokens[kinds.index("annotate")]
    assert num(annotate, 2) == pytest.approx(math.log2(65))  # unroll 64, the decision


def test_without_workload_loops_only_the_trace_extents_are_known():
    bare = trace_tokens(MATMUL_TRACE)
    tiles = [r for r in bare if kind_of(r) == "sample_perfect_tile"]
    assert num(tiles[0], 7) == 6.0 and num(tiles[0], 11) == 0.0  # kind unknown
    assert num(bare[0], 6) == 0.0  # the block's loops are not known


def test_unknown_instructions_are_tokens_of_kind_other_and_bad_lines_are_named():
    text = (
        "def apply_trace(sch):\n"
        "  b0 = sch.get_sblock(name='C', func_name='main')\n"
        '  sch.some_future_primitive(b0, [1, [2, 3]], note="a, b")\n'
    )
    out = trace_tokens(text)
    assert [kind_of(r) for r in out] == ["get_sblock", "other"]
    method, outputs, args, kwargs = parse_trace(text)[1]
    assert (method, outputs, args, kwargs) == (
        "some_future_primitive",
        (),
        ("b0", [1, [2, 3]]),  # nested lists survive
        {"note": "a, b"},  # so do commas inside strings
    )
    with pytest.raises(TraceParseError, match="not a schedule call"):
        parse_trace("def apply_trace(sch):\n  not a schedule call\n")


def test_workload_blocks_read_the_loops_of_every_block():
    blocks = workload_blocks(matmul(32, 48, 16))
    assert blocks == {"C": ([32, 48, 16], "SSR")}


def test_feature_kinds_are_one_table():
    assert feature_kind("trace") is TRACE and feature_kind(TRACE.version) is TRACE
    assert feature_kind("per-store") is PER_STORE and PER_STORE.dim == 164
    assert TRACE.dim == TOKEN_DIM
    with pytest.raises(UnknownFeatureVersionError, match="Did you mean 'trace'"):
        feature_kind("trac")


def test_records_replay_to_tokens_and_the_texts_are_cached(imported_dataset, tmp_path):
    records, workloads = read_records(imported_dataset), read_workloads(imported_dataset)
    first = ExtractionStats()
    fs, mask = extract_trace_features(
        records, workloads, cache_dir=tmp_path, stats=first, progress=False
    )
    assert mask.all() and len(fs) == records.num_rows and first.computed == records.num_rows
    assert fs.feature_version == TRACE.version and fs.values.shape[1] == TOKEN_DIM
    again = ExtractionStats()
    fs2, _ = extract_trace_features(
        records, workloads, cache_dir=tmp_path, stats=again, progress=False
    )
    assert again.computed == 0 and again.from_cache == records.num_rows
    assert np.array_equal(fs.values, fs2.values)
    # a trace that no longer replays: no tokens, counted, nothing else lost
    traces = records.column("trace").to_pylist()
    traces[0] = traces[0].replace('"GetSBlock"', '"NoSuchInstruction"', 1)
    broken = records.set_column(records.schema.get_field_index("trace"), "trace", pa.array(traces))
    ids = broken.column("record_id").to_pylist()
    broken = broken.set_column(
        broken.schema.get_field_index("record_id"), "record_id", pa.array(["x", *ids[1:]])
    )
    bad = ExtractionStats()
    fs3, mask3 = extract_trace_features(
        broken, workloads, cache_dir=tmp_path, stats=bad, progress=False
    )
    assert not mask3[0] and mask3[1:].all() and bad.failed == 1 and len(fs3) == len(ids) - 1


def tiny_trace_predictor(key: str) -> Predictor:
    torch.manual_seed(0)
    model = build_model("segsum-mlp", {"in_dim": TOKEN_DIM, "hidden": 32, "layers": 2})
    return Predictor(model, torch.zeros(TOKEN_DIM), torch.ones(TOKEN_DIM), key, TRACE.version)


def test_a_trace_predictor_round_trips_and_checks_its_rows(tmp_path):
    predictor = tiny_trace_predictor("llvm-znver4")
    assert predictor.feature_dim == TOKEN_DIM
    predictor.save(tmp_path)
    loaded = Predictor.load(tmp_path)
    mats = [trace_tokens(MATMUL_TRACE, MATMUL_BLOCKS), trace_tokens(MATMUL_TRACE)]
    assert np.array_equal(predictor.score_matrices(mats), loaded.score_matrices(mats))
    with pytest.raises(FeatureVersionError, match="per-store-164"):
        Predictor.load(tmp_path, feature_version=PER_STORE.version)
    with pytest.raises(ValueError, match=f"trace-tokens.v1 features must be \\(rows, {TOKEN_DIM}"):
        loaded.score_matrices([np.zeros((3, 164), np.float32)])


@pytest.mark.tvm_measure
def test_tuning_sees_the_texts_that_replaying_its_records_prints(tmp_path):
    """Train/serve consistency: a real session with a trace predictor (adaptive, so the
    measured candidates' tokens go through its cache too); every record MetaSchedule
    stored, replayed and printed, is a text the cost model tokenised during the session,
    and its tokens are the ones training would compute."""
    from tunezoo.convert import import_database  # noqa: PLC0415

    key = detect_target(prefer_gpu=False)
    model = TunezooCostModel(tiny_trace_predictor(key), mode="adaptive", steps=2)
    result = tune(
        "matmul-64",
        target_key=key,
        trials=16,
        predictor=model,
        work_dir=tmp_path / "db",
        num_trials_per_iter=8,
        num_cores=1,
        settings=MeasureSettings(number=2, repeat=2, min_repeat_ms=1),
        population_size=32,
        progress=False,
    )
    stats = result.cost_model_stats
    assert stats["update_calls"] == 2 and stats["feature_cache_hits"] > 0
    assert stats["train_steps"] == 4
    cached = {key_[1]: mat for key_, mat in model._features._entries.items()}
    out = tmp_path / "dataset"
    import_database(tmp_path / "db", out, target_key=key)
    records, workloads = read_records(out), read_workloads(out)
    fs, mask = extract_trace_features(
        records, workloads, cache_dir=tmp_path / "cache", progress=False
    )
    assert mask.all() and len(fs) == 16
    import hashlib  # noqa: PLC0415

    from tunezoo.trace_features import trace_texts  # noqa: PLC0415

    texts = trace_texts(records, workloads, cache_dir=tmp_path / "cache", progress=False)
    for i, rid in enumerate(fs.record_ids):
        digest = hashlib.blake2b(texts[rid].encode(), digest_size=16).digest()
        assert digest in cached, "a stored record prints a text tuning never saw"
        assert np.array_equal(cached[digest], fs.record(i))
    # the database's workload is the task the cost model keyed its entries by
    db = ms.database.JSONDatabase(work_dir=str(tmp_path / "db"))
    task = int(tvm_ffi.structural_hash(db.get_all_tuning_records()[0].workload.mod))
    assert {key_[0] for key_ in model._features._entries} == {task}
