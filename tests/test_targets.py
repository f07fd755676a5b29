"""The target registry: key rules, lookups and their errors, detection, TVM targets.

Table-driven: each table row is one case a user or a driver really produces. Tests
marked ``xfail(strict=True)`` pin known defects of ``tunezoo/targets.py``; when a defect
is fixed the test passes, strict mode fails it, and the marker is to be removed.
"""

from __future__ import annotations

import json

import pytest

from tunezoo import targets
from tunezoo.targets import (
    KEY_PATTERN,
    UnknownTargetError,
    detect_target,
    get_target,
    gpu_key_for_name,
    list_targets,
    nearest_in_family,
)

# ------------------------------------------------------------------------------- keys


def test_keys_match_the_pattern_and_are_unique():
    keys = [spec.key for spec in targets._REGISTRY]
    assert len(keys) == len(set(keys)), "duplicate registry keys"
    bad = [k for k in list_targets() if not KEY_PATTERN.match(k)]
    assert bad == [], "keys must be lowercase ASCII letters, digits and '-'"
    assert list_targets() == sorted(set(list_targets()))


def test_aliases_name_one_target_each():
    owners: dict[str, str] = {}
    for spec in targets._REGISTRY:
        for alias in spec.aliases:
            assert alias.upper() not in owners, f"{alias} claimed by {owners.get(alias.upper())}"
            owners[alias.upper()] = spec.key


@pytest.mark.parametrize(
    ("key", "family"),
    [
        ("cuda-a100", "cuda"),
        ("cuda-h100", "cuda"),
        ("llvm-znver4", "llvm-x86"),
        ("llvm-skylake-avx512", "llvm-x86"),
        ("llvm-neoverse-v1", "llvm-arm64"),
    ],
)
def test_get_target_returns_the_spec(key, family):
    spec = get_target(key)
    assert (spec.key, spec.family) == (key, family)
    assert (spec.tvm_tag is None) != (spec.llvm_cpu is None), "exactly one of tag / LLVM CPU"


@pytest.mark.parametrize(
    ("key", "suggested", "hint"),
    [
        ("cuda-a10o", "cuda-a100", False),  # a typo: 0 typed as o
        ("llvm-znver5", "llvm-znver4", False),
        ("cuda_a100", "cuda-a100", True),  # not a valid key: say what keys look like
        ("", None, True),
    ],
)
def test_unknown_key_suggests_and_lists_keys(key, suggested, hint):
    with pytest.raises(UnknownTargetError) as info:
        get_target(key)
    message = str(info.value)
    assert message.startswith(f"Unknown target {key!r}.")
    if suggested is not None:
        assert "Did you mean" in message
        assert repr(suggested) in message.split("?")[0]
    assert ("lowercase letters, digits and '-'" in message) is hint
    available = message.split("Available: ", 1)[1].rstrip(".").split(", ")
    assert available == list_targets()
    assert isinstance(info.value, KeyError), "UnknownTargetError stays a KeyError"


def test_uppercase_key_suggests_the_lowercase_key():
    with pytest.raises(UnknownTargetError, match=r"Did you mean 'cuda-a100'"):
        get_target("CUDA-A100")


# ---------------------------------------------------------------------- GPU detection


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NVIDIA A100-SXM4-80GB", "cuda-a100"),
        ("NVIDIA A100-PCIE-40GB", "cuda-a100"),
        ("NVIDIA A100 80GB PCIe", "cuda-a100"),
        ("NVIDIA H100 80GB HBM3", "cuda-h100"),
        ("NVIDIA H100 PCIe", "cuda-h100"),
        ("Tesla T4", "cuda-t4"),
        ("Tesla V100-SXM2-16GB", "cuda-v100"),
        ("NVIDIA A10G", "cuda-a10g"),  # not cuda-a10: the longest alias wins
        ("NVIDIA A10", "cuda-a10"),
        ("NVIDIA GeForce RTX 3090", "cuda-rtx3090"),
        ("NVIDIA GeForce RTX 3070", "cuda-rtx3070"),
        ("NVIDIA GeForce RTX 4090", "cuda-rtx4090"),
        # other products whose names contain a known one
        ("Tesla V100S-PCIE-32GB", None),
        ("NVIDIA A10M", None),
        ("NVIDIA A30", None),
        ("NVIDIA L4", None),
        ("NVIDIA H200", None),
        ("NVIDIA RTX A6000", None),
        ("", None),
    ],
)
def test_gpu_key_for_driver_names(name, key):
    assert gpu_key_for_name(name) == key


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA GeForce RTX 3090 Ti",
        "NVIDIA GeForce RTX 3070 Ti",
        "NVIDIA GeForce RTX 4090 D",
    ],
)
def test_gpu_variants_are_not_their_base_card(name):
    assert gpu_key_for_name(name) is None


def test_detect_target_here_is_a_key_get_target_accepts():
    key = detect_target()
    assert get_target(key).key == key
    if targets.detect_gpu_name() is None:  # the CPU-only development machine
        assert key.startswith("llvm-")
        assert get_target(key).llvm_cpu == targets.local_llvm_cpu()
    assert detect_target(prefer_gpu=False).startswith("llvm-")


@pytest.mark.parametrize(
    ("gpu_name", "expected"),
    [
        ("NVIDIA A100-SXM4-80GB", "cuda-a100"),
        ("NVIDIA H100 80GB HBM3", "cuda-h100"),
        ("Some Future GPU", None),  # unknown GPU: fall back to this machine's CPU
        (None, None),  # no GPU at all
    ],
)
def test_detect_target_prefers_a_known_gpu(monkeypatch, gpu_name, expected):
    monkeypatch.setattr(targets, "detect_gpu_name", lambda: gpu_name)
    key = detect_target()
    if expected is None:
        assert key == detect_target(prefer_gpu=False)
        assert key.startswith("llvm-")
    else:
        assert key == expected


# --------------------------------------------------------------------------- TVM targets


@pytest.mark.parametrize(
    ("key", "arch"),
    [
        ("cuda-a100", "sm_80"),
        ("cuda-h100", "sm_90a"),
        ("cuda-t4", "sm_75"),
        ("cuda-v100", "sm_70"),
        ("cuda-a10g", "sm_86"),
        ("cuda-rtx4090", "sm_89"),
    ],
)
def test_gpu_keys_build_real_tvm_targets(key, arch):
    target = get_target(key).tvm_target()
    assert target.kind.name == "cuda"
    assert json.loads(str(target))["arch"] == arch
    assert f'"arch":"{arch}"' in str(target).replace(" ", "")
    assert get_target(key).tvm_target_dict()["arch"] == arch


@pytest.mark.parametrize("key", ["llvm-znver4", "llvm-skylake-avx512", "llvm-neoverse-v1"])
def test_cpu_keys_build_dict_form_tvm_targets_with_num_cores(key):
    spec = get_target(key)
    as_dict = spec.tvm_target_dict(num_cores=3)
    assert as_dict == {"kind": "llvm", "mcpu": spec.llvm_cpu, "num-cores": 3}
    target = spec.tvm_target(num_cores=3)
    assert target.kind.name == "llvm"
    assert str(target.attrs["mcpu"]) == spec.llvm_cpu
    assert int(target.attrs["num-cores"]) == 3  # MetaSchedule refuses a target without it


def test_cpu_target_defaults_to_a_positive_core_count():
    assert get_target("llvm-znver4").tvm_target_dict()["num-cores"] >= 1


# ------------------------------------------------------------------------ nearest match


@pytest.mark.parametrize(
    ("key", "candidates", "expected"),
    [
        # an AVX-512 sibling beats an AVX2 one, and a GPU is never a match for a CPU
        ("llvm-skylake-avx512", ["llvm-znver4", "llvm-znver3", "cuda-a100"], "llvm-znver4"),
        ("llvm-znver3", ["llvm-znver4", "llvm-haswell"], "llvm-haswell"),  # same ISA: AVX2
        ("llvm-znver4", ["llvm-znver4", "llvm-znver3"], "llvm-znver4"),  # itself, if present
        ("llvm-neoverse-v1", ["llvm-znver4"], None),  # other family
        ("llvm-skylake-avx512", [], None),
        ("llvm-znver4", ["no-such-key", "llvm-znver3"], "llvm-znver3"),  # unknown skipped
    ],
)
def test_nearest_in_family(key, candidates, expected):
    assert nearest_in_family(key, candidates) == expected


def test_nearest_in_family_refuses_an_unknown_key():
    with pytest.raises(UnknownTargetError):
        nearest_in_family("llvm-znver9", ["llvm-znver4"])
