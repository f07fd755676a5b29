"""Deterministic, workload-disjoint train/validation/test splits.

A workload's split is a pure function of its id (a hash bucket), so every machine, every
dataset version and every contributor puts the same workload in the same split, and no
workload ever appears on both sides of a train/test boundary. Whole source models can also
be held out: their workloads are kept out of training whatever their bucket.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")
# percent of the hash space per split
SPLIT_PERCENT = {"train": 80, "validation": 10, "test": 10}

# Models whose workloads never enter training, so evaluation can ask "does it transfer
# to a network it has never seen?". Chosen to cover a CNN, a transformer and a mixer.
HELD_OUT_MODELS = ("mobilenet_v3_small", "vit_tiny", "mlp_mixer_s")


def split_of(workload_id: str) -> str:
    """The split of one workload id: 80% train, 10% validation, 10% test."""
    bucket = int.from_bytes(hashlib.sha256(workload_id.encode()).digest()[:8], "big") % 100
    if bucket < SPLIT_PERCENT["train"]:
        return "train"
    if bucket < SPLIT_PERCENT["train"] + SPLIT_PERCENT["validation"]:
        return "validation"
    return "test"


def is_held_out(models: list[str], held_out: tuple[str, ...] = HELD_OUT_MODELS) -> bool:
    """Whether a workload belongs to a held-out model (then it must not be trained on)."""
    return any(m in held_out for m in models)
