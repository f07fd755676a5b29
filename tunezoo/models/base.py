"""What every tunezoo cost-model architecture shares.

A model scores a batch of candidates given their per-store features packed as one matrix
(``values``: all stores of all candidates stacked) and ``segment_ids`` (the candidate each
store row belongs to). Higher score means predicted faster. Architectures differ only in
how they turn a variable-size set of stores into one score.
"""

from __future__ import annotations

import torch
from torch import nn


class StoreSetModel(nn.Module):
    """Base class: ``forward(values, segment_ids, n_candidates) -> scores``."""

    arch: str = ""

    def forward(  # pragma: no cover - abstract
        self, values: torch.Tensor, segment_ids: torch.Tensor, n_candidates: int
    ) -> torch.Tensor:
        raise NotImplementedError


def segment_sum(x: torch.Tensor, segment_ids: torch.Tensor, n: int) -> torch.Tensor:
    """Sum the rows of ``x`` that share a segment id (one row out per segment)."""
    out = x.new_zeros((n, x.shape[1]))
    return out.index_add_(0, segment_ids, x)


def pad_segments(
    x: torch.Tensor, segment_ids: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed rows to a padded (n, max_len, dim) batch and a (n, max_len) validity mask.

    Rows of one segment must be contiguous and in order (as FeatureSet packs them).
    """
    counts = torch.bincount(segment_ids, minlength=n)
    max_len = int(counts.max()) if n else 0
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(x.shape[0], device=x.device) - starts[segment_ids]
    padded = x.new_zeros((n, max(max_len, 1), x.shape[1]))
    padded[segment_ids, position] = x
    mask = torch.zeros((n, max(max_len, 1)), dtype=torch.bool, device=x.device)
    mask[segment_ids, position] = True
    return padded, mask
