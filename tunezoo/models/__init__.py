"""Cost-model architectures, one module each, in one explicit table."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tunezoo.models.base import StoreSetModel
from tunezoo.models.packsum_trees import PackSumTrees, PackSumTreesConfig
from tunezoo.models.score_blend import ScoreBlend, ScoreBlendConfig
from tunezoo.models.seed_ensemble import SeedEnsemble, SeedEnsembleConfig
from tunezoo.models.segsum_mlp import SegSumMLP, SegSumMLPConfig
from tunezoo.models.store_attention import StoreAttention, StoreAttentionConfig

ARCHITECTURES: dict[str, tuple[type[StoreSetModel], type]] = {
    "segsum-mlp": (SegSumMLP, SegSumMLPConfig),
    "store-attention": (StoreAttention, StoreAttentionConfig),
    "seed-ensemble": (SeedEnsemble, SeedEnsembleConfig),
    "packsum-trees": (PackSumTrees, PackSumTreesConfig),
    "score-blend": (ScoreBlend, ScoreBlendConfig),
}


class UnknownArchitectureError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def build_model(arch: str, config: dict[str, Any] | None = None) -> StoreSetModel:
    """Instantiate an architecture from its name and a plain-dict config."""
    if arch not in ARCHITECTURES:
        raise UnknownArchitectureError(
            f"Unknown architecture {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}"
        )
    cls, config_cls = ARCHITECTURES[arch]
    fields = set(config_cls.__dataclass_fields__)
    unknown = set(config or {}) - fields
    if unknown:
        raise ValueError(
            f"{arch}: unknown config fields {sorted(unknown)}; known: {sorted(fields)}"
        )
    return cls(config_cls(**(config or {})))


def with_input_dim(arch: str, config: dict[str, Any] | None, dim: int) -> dict[str, Any]:
    """``config`` with ``in_dim`` set to the data's row width, for architectures that read
    feature rows (a composite has none). An explicit ``in_dim`` that disagrees is refused:
    the model would fail at its first batch, far from the cause."""
    out = dict(config or {})
    if arch not in ARCHITECTURES or "in_dim" not in ARCHITECTURES[arch][1].__dataclass_fields__:
        return out
    if out.setdefault("in_dim", dim) != dim:
        raise ValueError(f"{arch}: arch_config in_dim {out['in_dim']} but the features have {dim}")
    return out


def model_config(model: StoreSetModel) -> dict[str, Any]:
    return asdict(model.config)


__all__ = [
    "ARCHITECTURES",
    "PackSumTrees",
    "ScoreBlend",
    "SeedEnsemble",
    "StoreSetModel",
    "build_model",
    "model_config",
    "with_input_dim",
]
