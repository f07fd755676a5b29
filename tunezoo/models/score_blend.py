"""Score blend: a fixed weighted sum of models of different architectures.

Measured on the llvm-znver4 snapshot of 2026-11-25 01:47, the seed ensemble of MLPs and
MetaSchedule's XGBoost model trained on the same data make different ranking mistakes:
summing their scores, each scaled by the typical spread of that model's scores within one
workload, raised validation top-5 from 0.937 to 0.954 at equal top-1, and on the test
and held-out parts top-1 more than either model alone. The weights are fixed numbers
stored in the config, never statistics of the batch being scored, so one candidate keeps
one score whatever it is scored with (MetaSchedule's evolutionary search compares scores
across generations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from tunezoo.models.base import StoreSetModel


@dataclass(frozen=True)
class ScoreBlendConfig:
    # one {"arch": name, "config": {...}} per member
    members: list[dict[str, Any]] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


class ScoreBlend(StoreSetModel):
    arch = "score-blend"

    def __init__(self, config: ScoreBlendConfig) -> None:
        from tunezoo.models import build_model  # noqa: PLC0415 - the table imports this module

        super().__init__()
        if not config.members or len(config.members) != len(config.weights):
            raise ValueError(
                f"a score blend needs one weight per member, got {len(config.members)} "
                f"member(s) and {len(config.weights)} weight(s)"
            )
        self.config = config
        self.members = nn.ModuleList(
            build_model(m["arch"], m.get("config", {})) for m in config.members
        )

    def forward(self, values, segment_ids, n_candidates):
        return sum(
            weight * member(values, segment_ids, n_candidates)
            for weight, member in zip(self.config.weights, self.members, strict=True)
        )

    @classmethod
    def of(cls, models: Sequence[StoreSetModel], weights: Sequence[float]) -> ScoreBlend:
        """A blend holding copies of the weights of ``models``."""
        config = ScoreBlendConfig(
            [{"arch": m.arch, "config": asdict(m.config)} for m in models],
            [float(w) for w in weights],
        )
        blend = cls(config)
        for slot, model in zip(blend.members, models, strict=True):
            slot.load_state_dict(model.state_dict())
        return blend.eval()
