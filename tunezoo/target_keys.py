"""Target keys for imported tuning records, derived from the record's TVM target dict.

Records imported from other people's databases carry a TVM target dict but rarely the
name of the device. :func:`derive_target_key` gives the most specific key the data
support, and never more: ``cuda`` with ``arch: sm_86`` is ``cuda-sm86`` (an RTX 3070, an
A10 and an A40 all have sm_86), unless the contributor names the device (``device=
"rtx3070"`` gives ``cuda-rtx3070``). The dict itself is stored unchanged beside the key.
"""

from __future__ import annotations

import re
from typing import Any

from tunezoo.targets import _REGISTRY, KEY_PATTERN, _registry, gpu_key_for_name


class TargetKeyError(ValueError):
    """A key that cannot be derived or is not a valid key; the message says why."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def validate_key(key: str) -> str:
    """Return ``key`` if it is lowercase ASCII letters, digits and single ``-``; else raise."""
    if not KEY_PATTERN.match(key):
        raise TargetKeyError(
            f"target key {key!r} is invalid: use lowercase letters, digits and '-' "
            "(e.g. 'cuda-rtx3070', 'llvm-core-avx2')"
        )
    return key


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]


def _tag_key(tag: str) -> str | None:
    """A registry key for a TVM tag (``nvidia/geforce-rtx-3070``), or a slug of it."""
    for spec in _REGISTRY:
        if spec.tvm_tag == tag:
            return spec.key
    return None


def _device_key(kind: str, device: str) -> str:
    slug = _slug(device)
    if not slug:
        raise TargetKeyError(f"device name {device!r} has no letters or digits")
    return validate_key(slug if slug.startswith(kind + "-") else f"{kind}-{slug}")


def derive_target_key(target: dict[str, Any], device: str | None = None) -> str:
    """The best tunezoo target key for a TVM target dict (see the module docstring).

    ``device`` is what the contributor says the hardware is (``"rtx3070"``); it wins over
    anything inferred. Raises :class:`TargetKeyError` for a dict without ``kind`` or a
    resulting key that is not valid.
    """
    if not isinstance(target, dict) or not target.get("kind"):
        raise TargetKeyError(f"target {target!r} has no 'kind'")
    kind = _slug(str(target["kind"]))
    if device:
        if kind == "cuda":  # a driver-style name ("GeForce RTX 3070") -> its registry key
            known = gpu_key_for_name(device)
            if known:
                return known
        return _device_key(kind, device)
    tag = str(target.get("tag") or "")
    if tag:
        known = _tag_key(tag)
        if known:
            return known
    if kind == "cuda":
        if tag:
            return validate_key(f"cuda-{_slug(tag.split('/')[-1])}")
        arch = str(target.get("arch") or "")
        match = re.fullmatch(r"sm_(\d+[a-z]?)", arch)
        return validate_key(f"cuda-sm{match.group(1)}" if match else "cuda")
    if kind in ("metal", "opencl", "vulkan", "webgpu"):
        for field in ("device", "model"):
            value = target.get(field)
            if value:
                return _device_key(kind, str(value))
        if tag:  # e.g. apple/m1-gpu -> metal-apple-m1
            name = re.sub(r"-gpu.*$", "", tag.replace("/", "-"))
            return validate_key(f"{kind}-{_slug(name)}")
        return kind
    if kind == "rocm":
        mcpu = target.get("mcpu")
        return validate_key(f"rocm-{_slug(str(mcpu))}") if mcpu else "rocm"
    if kind in ("llvm", "c"):
        return _llvm_key(target)
    return validate_key(kind)


def _llvm_key(target: dict[str, Any]) -> str:
    mtriple = str(target.get("mtriple") or "")
    mcpu = str(target.get("mcpu") or "")
    mattr = _as_list(target.get("mattr"))
    arch = mtriple.split("-")[0] if mtriple else ""
    if arch.startswith("riscv"):
        key = f"llvm-{_slug(arch)}"
        return validate_key(key + "-rvv" if "+v" in mattr else key)
    if mcpu and not mcpu.startswith("generic") and mcpu not in ("native",):
        return validate_key(f"llvm-{_slug(mcpu)}")
    if arch:
        return validate_key(f"llvm-{_slug(arch)}")
    return "llvm"


def target_mismatch(target: Any, key: str, *, cpu: bool = True) -> str | None:
    """Why records whose TVM target dict is ``target`` cannot be filed under ``key``
    (None: they can). The key may be more specific than the dict says (a device named at
    import: ``cuda-rtx3070`` for ``arch: sm_86``), never different: another kind of
    hardware, another CPU, another GPU architecture. ``cpu=False`` lets a CPU's records go
    under another CPU's key: a local import files them where its user says (records keep
    their full target dict), a contribution to a shared dataset may not."""
    try:
        derived = derive_target_key(target)
    except (TargetKeyError, TypeError, AttributeError) as exc:
        return f"its target cannot be read ({exc})"
    if derived == key:
        return None
    kind = derived.split("-")[0]
    if key.split("-")[0] != kind:
        return f"its target is {kind} ({derived}), not {key}"
    spec = _registry().get(key)
    if spec is not None and spec.llvm_cpu is not None and cpu:
        mcpu = str(target.get("mcpu") or "")
        if mcpu != spec.llvm_cpu:
            return f"its target is for the CPU {mcpu or 'unnamed'!r} ({derived}), not {key}"
    elif spec is not None and spec.tvm_tag is not None and re.fullmatch(r"cuda-sm\d+\w?", derived):
        arch = _tag_arch(spec)
        if arch is not None and f"cuda-{arch.replace('_', '')}" != derived:
            return f"its target is {derived}, but {key} is {arch}"
    return None


def _tag_arch(spec: Any) -> str | None:
    """The ``arch`` (``sm_86``) of a GPU target's TVM tag, or None if TVM cannot say."""
    try:
        return str(spec.tvm_target_dict().get("arch") or "") or None
    except Exception:  # noqa: BLE001 - no TVM, or a tag it lacks: nothing to compare
        return None


__all__ = ["TargetKeyError", "derive_target_key", "target_mismatch", "validate_key"]
