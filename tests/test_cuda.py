"""CUDA paths: what works without a GPU runs everywhere; measuring needs one (marked gpu).

Sampling CUDA schedules, extracting their features and building them to CUDA source need
no device, so those checks run in CI; measuring runs only on a machine with an NVIDIA GPU
(``pytest -m gpu``), where it collects a few real records through the same collector.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tvm
from make_tuning_db import matmul
from tvm.s_tir import meta_schedule as ms

from tunezoo.features import PER_STORE_DIM, features_of_candidates, light_tune_context
from tunezoo.targets import detect_gpu_name, get_target


def _cuda_candidates(n: int):
    target = get_target("cuda-a100").tvm_target()
    ctx = ms.TuneContext(
        mod=matmul(128, 128, 128),
        target=target,
        space_generator="post-order-apply",
        search_strategy="replay-trace",
        task_name="mm",
        rand_state=1,
        num_threads=1,
    )
    spaces = ctx.generate_design_space()
    ctx.pre_tuning(
        max_trials=n,
        num_trials_per_iter=n,
        design_spaces=spaces,
        database=ms.database.MemoryDatabase(),
        cost_model=ms.cost_model.RandomModel(),
    )
    candidates = ctx.generate_measure_candidates() or []
    ctx.post_tuning()
    return target, candidates


@pytest.fixture(scope="module")
def cuda_candidates():
    return _cuda_candidates(8)


def test_cuda_schedules_have_features_without_a_gpu(cuda_candidates):
    target, candidates = cuda_candidates
    assert candidates, "no CUDA candidates sampled"
    feats = features_of_candidates(light_tune_context(candidates[0].sch.mod, target), candidates)
    assert len(feats) == len(candidates)
    assert all(f.ndim == 2 and f.shape[1] == PER_STORE_DIM and len(f) >= 1 for f in feats)
    assert len({f.tobytes() for f in feats}) > 1
    assert all(np.isfinite(f).all() for f in feats)


def test_cuda_schedule_builds_to_cuda_source_without_a_gpu(cuda_candidates):
    target, candidates = cuda_candidates
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(candidates[0].sch.mod)
    built = tvm.compile(mod, target=target)
    source = "\n".join(m.inspect_source() for m in built.mod.imports)
    assert "__global__" in source


@pytest.mark.gpu
def test_collect_measures_cuda_records_on_a_gpu(tmp_path):
    if shutil.which("nvidia-smi") is None or detect_gpu_name() is None:
        pytest.skip("no NVIDIA GPU on this machine")
    from types import SimpleNamespace

    from dataset_builders.collect import collect_tasks
    from dataset_builders.sampling import SamplingPlan
    from tunezoo.measure import MeasureSettings
    from tunezoo.records import info, validate
    from tunezoo.targets import detect_target
    from tunezoo.workloads import workload_id

    key = detect_target()
    mod = matmul(256, 256, 256)
    task = SimpleNamespace(
        name="matmul256", mod=mod, workload_id=workload_id(mod), sources=(("handmade", 1),)
    )
    summary = collect_tasks(
        [task],
        target_key=key,
        out_dir=tmp_path,
        progress=False,
        plan=SamplingPlan(n_random=8, n_evolutionary=8, batch=8),
        settings=MeasureSettings(fast_build=False),
    )
    assert summary.records >= 8
    assert validate(tmp_path) == []
    assert info(tmp_path)["targets"] == {key: summary.records}
