"""Segment-sum MLP: the TenSet / MetaSchedule cost-model design.

Each store's feature vector goes through a small MLP; the candidate's score is a linear
read-out of the sum over its stores. Summing suits the physics: a program's time is
roughly the sum of its stores' times. It is also the fastest design to score, which
matters when a tuner ranks thousands of candidates per round.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from tunezoo.models.base import StoreSetModel, segment_sum


@dataclass(frozen=True)
class SegSumMLPConfig:
    in_dim: int = 164
    hidden: int = 256
    layers: int = 3
    dropout: float = 0.0


class SegSumMLP(StoreSetModel):
    arch = "segsum-mlp"

    def __init__(self, config: SegSumMLPConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        width = config.in_dim
        for _ in range(config.layers):
            blocks += [nn.Linear(width, config.hidden), nn.ReLU()]
            if config.dropout:
                blocks.append(nn.Dropout(config.dropout))
            width = config.hidden
        self.store_mlp = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Linear(config.hidden, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1)
        )

    def forward(self, values, segment_ids, n_candidates):
        pooled = segment_sum(self.store_mlp(values), segment_ids, n_candidates)
        return self.head(pooled).squeeze(-1)
