"""The target registry: tunezoo's short keys for hardware, mapped to TVM targets.

A key (``cuda-a100``, ``llvm-znver4``) names one kind of hardware. Keys are lowercase ASCII
letters, digits and ``-`` only, so they are valid Hub config names and path segments.
Tuning records, predictors and dataset configs are all filed under a key; the full TVM
target (with core counts and the like) is stored beside every record.

GPU keys map to TVM target tags (``nvidia/nvidia-a100``). CPU keys are ``llvm-<LLVM CPU
name>``; their TVM target is built from that CPU name and a core count, because TVM 0.27
rejects the old CLI target strings and MetaSchedule needs ``num-cores``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

KEY_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class UnknownTargetError(KeyError):
    """A target key that is not in the registry; the message lists and suggests keys."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class TargetSpec:
    """One registered kind of hardware.

    ``family`` groups targets whose cost models transfer reasonably (same ISA and
    vector width class); ``isa`` orders CPUs inside a family for nearest-match fallback.
    """

    key: str
    family: str  # "cuda", "llvm-x86", "llvm-arm64", "llvm-riscv64", "metal", "opencl"
    description: str
    tvm_tag: str | None = None  # a TVM target tag, for GPUs
    llvm_cpu: str | None = None  # LLVM CPU name, for CPUs
    isa: tuple[str, ...] = field(default=())  # vector ISA levels, widest last
    aliases: tuple[str, ...] = field(default=())  # device names as drivers report them

    def tvm_target_dict(self, num_cores: int | None = None) -> dict[str, Any]:
        """The TVM target as the dict form TVM 0.27 accepts."""
        if self.tvm_tag is not None:
            import tvm  # noqa: PLC0415 - keep `tunezoo.targets` importable without TVM

            return json.loads(str(tvm.target.Target(self.tvm_tag)))
        if self.llvm_cpu is None:
            raise ValueError(f"target {self.key!r} has neither a TVM tag nor an LLVM CPU")
        if num_cores is None:  # the cores this process may use (taskset), not the machine's
            num_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
        cores = num_cores or os.cpu_count() or 1
        return {"kind": "llvm", "mcpu": self.llvm_cpu, "num-cores": int(cores)}

    def tvm_target(self, num_cores: int | None = None):  # -> tvm.target.Target
        """The TVM ``Target`` object (imports TVM)."""
        import tvm  # noqa: PLC0415

        if self.tvm_tag is not None:
            return tvm.target.Target(self.tvm_tag)
        return tvm.target.Target(self.tvm_target_dict(num_cores))


def _cuda(key: str, tag: str, description: str, *aliases: str) -> TargetSpec:
    return TargetSpec(key, "cuda", description, tvm_tag=tag, aliases=aliases)


def _x86(cpu: str, description: str, isa: tuple[str, ...]) -> TargetSpec:
    return TargetSpec(f"llvm-{cpu}", "llvm-x86", description, llvm_cpu=cpu, isa=isa)


def _arm(cpu: str, description: str, isa: tuple[str, ...]) -> TargetSpec:
    return TargetSpec(f"llvm-{cpu}", "llvm-arm64", description, llvm_cpu=cpu, isa=isa)


_AVX2 = ("sse4.2", "avx2")
_AVX512 = ("sse4.2", "avx2", "avx512")

_REGISTRY: tuple[TargetSpec, ...] = (
    _cuda("cuda-a100", "nvidia/nvidia-a100", "NVIDIA A100 (sm_80)", "A100"),
    _cuda("cuda-h100", "nvidia/nvidia-h100", "NVIDIA H100 (sm_90a)", "H100"),
    _cuda("cuda-t4", "nvidia/nvidia-t4", "NVIDIA T4 (sm_75)", "Tesla T4", "T4"),
    _cuda("cuda-v100", "nvidia/nvidia-v100", "NVIDIA V100 (sm_70)", "V100"),
    _cuda("cuda-a10g", "nvidia/nvidia-a10g", "NVIDIA A10G (sm_86)", "A10G"),
    _cuda("cuda-a10", "nvidia/nvidia-a10", "NVIDIA A10 (sm_86)", "A10"),
    _cuda("cuda-rtx3070", "nvidia/geforce-rtx-3070", "GeForce RTX 3070 (sm_86)", "RTX 3070"),
    _cuda("cuda-rtx3090", "nvidia/geforce-rtx-3090", "GeForce RTX 3090 (sm_86)", "RTX 3090"),
    _cuda("cuda-rtx4090", "nvidia/geforce-rtx-4090", "GeForce RTX 4090 (sm_89)", "RTX 4090"),
    _x86("znver4", "AMD Zen 4 (EPYC 9004, Ryzen 7000), AVX-512", _AVX512),
    _x86("znver3", "AMD Zen 3 (EPYC 7003, Ryzen 5000), AVX2", _AVX2),
    _x86("znver2", "AMD Zen 2 (EPYC 7002, Ryzen 3000), AVX2", _AVX2),
    _x86("skylake-avx512", "Intel Skylake-SP / Xeon Scalable 1st gen, AVX-512", _AVX512),
    _x86("cascadelake", "Intel Cascade Lake (Xeon 2nd gen), AVX-512 VNNI", _AVX512),
    _x86("icelake-server", "Intel Ice Lake-SP (Xeon 3rd gen), AVX-512", _AVX512),
    _x86("rocketlake", "Intel Rocket Lake (Core 11th gen, Xeon E-2300), AVX-512", _AVX512),
    _x86("sapphirerapids", "Intel Sapphire Rapids (Xeon 4th gen), AVX-512 AMX", _AVX512),
    _x86("emeraldrapids", "Intel Emerald Rapids (Xeon 5th gen), AVX-512 AMX", _AVX512),
    _x86("haswell", "Intel Haswell, AVX2", _AVX2),
    _x86("core-avx2", "Generic x86-64 with AVX2", _AVX2),
    _arm("neoverse-n1", "Arm Neoverse N1 (AWS Graviton2, Ampere Altra)", ("neon",)),
    _arm("neoverse-v1", "Arm Neoverse V1 (AWS Graviton3)", ("neon", "sve")),
    _arm("apple-m1", "Apple M1 CPU", ("neon",)),
)


def _registry() -> dict[str, TargetSpec]:
    specs = {spec.key: spec for spec in _REGISTRY}
    local = _local_cpu_spec()
    if local is not None and local.key not in specs:
        specs[local.key] = local
    return specs


def list_targets() -> list[str]:
    """All known target keys, sorted (including this machine's CPU if it is not listed)."""
    return sorted(_registry())


def get_target(key: str) -> TargetSpec:
    """Look up a key; unknown keys raise an error that names the closest known keys."""
    specs = _registry()
    if key in specs:
        return specs[key]
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        hint = " Keys are lowercase letters, digits and '-' (e.g. 'cuda-a100', 'llvm-znver4')."
    else:
        hint = ""
    typed = str(key).strip().lower().replace("_", "-").replace(" ", "-")
    close = difflib.get_close_matches(typed, specs, n=3, cutoff=0.6)
    suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownTargetError(
        f"Unknown target {key!r}.{suggestion}{hint} Available: {', '.join(sorted(specs))}."
    )


def local_llvm_cpu() -> str:
    """The LLVM CPU name of this machine, as TVM's LLVM reports it (e.g. ``znver4``)."""
    import tvm  # noqa: PLC0415

    return str(tvm.get_global_func("target.llvm_get_system_cpu")())


def _local_cpu_spec() -> TargetSpec | None:
    """A spec for this machine's CPU, so an unlisted CPU still gets a usable key."""
    try:
        cpu = local_llvm_cpu()
    except Exception:  # TVM missing or without LLVM: no local CPU target
        return None
    key = "llvm-" + re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-")
    for spec in _REGISTRY:
        if spec.key == key:
            return spec
    family = "llvm-arm64" if os.uname().machine in ("aarch64", "arm64") else "llvm-x86"
    if os.uname().machine.startswith("riscv"):
        family = "llvm-riscv64"
    return TargetSpec(key, family, f"This machine's CPU ({cpu})", llvm_cpu=cpu, isa=_cpu_isa())


def _cpu_isa() -> tuple[str, ...]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((ln for ln in fh if ln.startswith(("flags", "Features"))), "")
    except OSError:
        return ()
    words = set(flags.split())
    if "avx512f" in words:
        return _AVX512
    if "avx2" in words:
        return _AVX2
    if "asimd" in words:
        return ("neon", "sve") if "sve" in words else ("neon",)
    return ()


def detect_gpu_name() -> str | None:
    """The first NVIDIA GPU's product name via ``nvidia-smi``, or None when there is none."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return names[0] if names else None


def gpu_key_for_name(name: str) -> str | None:
    """Map a driver-reported GPU name (``NVIDIA A100-SXM4-80GB``) to a registry key."""
    norm = name.upper().replace("NVIDIA", "").replace("GEFORCE", "")
    best: tuple[int, str] | None = None
    for spec in _REGISTRY:
        for alias in spec.aliases:
            # a trailing variant word (3090 Ti, 4090 D, 2080 SUPER) is another product
            pattern = (
                rf"(^|[^A-Z0-9]){re.escape(alias.upper())}"
                rf"(?!\s*(TI|SUPER|D)\b)($|[^A-Z0-9])"
            )
            if re.search(pattern, norm) and (best is None or len(alias) > best[0]):
                best = (len(alias), spec.key)
    return best[1] if best else None


def detect_target(prefer_gpu: bool = True) -> str:
    """The key of the machine this runs on: its GPU when there is one, else its CPU."""
    if prefer_gpu:
        gpu = detect_gpu_name()
        if gpu is not None:
            key = gpu_key_for_name(gpu)
            if key is not None:
                return key
    local = _local_cpu_spec()
    if local is None:
        raise RuntimeError("Cannot detect this machine's target: TVM with LLVM is needed.")
    return local.key


def nearest_in_family(key: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``key``: same family, then the most shared ISA levels.

    Used when a CPU has no predictor of its own but a sibling does (another AVX-512 x86).
    """
    spec = get_target(key)
    scored: list[tuple[int, str]] = []
    for other in candidates:
        try:
            other_spec = get_target(other)
        except UnknownTargetError:
            continue
        if other_spec.family != spec.family:
            continue
        shared = len(set(spec.isa) & set(other_spec.isa))
        scored.append((shared - (0 if other_spec.isa == spec.isa else 1), other))
    if not scored:
        return None
    return max(scored, key=lambda s: (s[0], s[1]))[1]
