"""Seed ensemble: the mean score of models of one architecture trained with different seeds.

On the llvm-znver4 data one training run's ranking quality moves with its seed about as
much as with 40% more training workloads (held-out top-1 over five seeds: std 0.04 at 166
training workloads, 0.09 at 122), and a validation split of 20 workloads cannot tell a good
seed from a lucky one. Averaging the members' scores removes most of that variance without
choosing among them. Members share the predictor's feature normaliser (it is fitted on the
training data, which all members see), so their raw scores are comparable and a plain mean
ranks the same as a mean of per-workload standardised scores (measured: identical top-1 and
top-5 on every part). Scoring costs k member passes, still small next to feature extraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from tunezoo.models.base import StoreSetModel


@dataclass(frozen=True)
class SeedEnsembleConfig:
    member_arch: str = "segsum-mlp"
    member_config: dict[str, Any] = field(default_factory=dict)
    members: int = 5


class SeedEnsemble(StoreSetModel):
    arch = "seed-ensemble"

    def __init__(self, config: SeedEnsembleConfig) -> None:
        from tunezoo.models import build_model  # noqa: PLC0415 - the table imports this module

        super().__init__()
        if config.members < 1:
            raise ValueError(f"a seed ensemble needs >= 1 member, got {config.members}")
        if config.member_arch == self.arch:
            raise ValueError("the members of a seed ensemble cannot be ensembles themselves")
        self.config = config
        self.members = nn.ModuleList(
            build_model(config.member_arch, config.member_config) for _ in range(config.members)
        )

    def forward(self, values, segment_ids, n_candidates):
        scores = [member(values, segment_ids, n_candidates) for member in self.members]
        return torch.stack(scores).mean(0)

    @classmethod
    def of(cls, models: Sequence[StoreSetModel]) -> SeedEnsemble:
        """An ensemble holding copies of the weights of ``models`` (one architecture)."""
        if not models:
            raise ValueError("a seed ensemble needs >= 1 member")
        first = models[0]
        configs = {(m.arch, repr(asdict(m.config))) for m in models}
        if len(configs) != 1:
            raise ValueError(f"members differ in architecture or config: {sorted(configs)}")
        ensemble = cls(SeedEnsembleConfig(first.arch, asdict(first.config), len(models)))
        for slot, model in zip(ensemble.members, models, strict=True):
            slot.load_state_dict(model.state_dict())
        return ensemble.eval()
