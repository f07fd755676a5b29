"""Self-attention over a candidate's set of stores (the One-Shot Tuner idea).

Stores interact: a cache-write stage changes what the main compute stage costs. A small
Transformer encoder lets every store's embedding see the others before pooling, which a
plain sum cannot. Padding-masked, no positional encoding (the stores are a set).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from tunezoo.models.base import StoreSetModel, pad_segments


@dataclass(frozen=True)
class StoreAttentionConfig:
    in_dim: int = 164
    dim: int = 128
    heads: int = 4
    layers: int = 2
    ff_mult: int = 2
    dropout: float = 0.0


class StoreAttention(StoreSetModel):
    arch = "store-attention"

    def __init__(self, config: StoreAttentionConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Sequential(
            nn.Linear(config.in_dim, config.dim), nn.ReLU(), nn.Linear(config.dim, config.dim)
        )
        layer = nn.TransformerEncoderLayer(
            d_model=config.dim,
            nhead=config.heads,
            dim_feedforward=config.dim * config.ff_mult,
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=config.layers, enable_nested_tensor=False
        )
        self.head = nn.Sequential(
            nn.LayerNorm(config.dim),
            nn.Linear(config.dim, config.dim),
            nn.ReLU(),
            nn.Linear(config.dim, 1),
        )

    def forward(self, values, segment_ids, n_candidates):
        padded, mask = pad_segments(self.embed(values), segment_ids, n_candidates)
        encoded = self.encoder(padded, src_key_padding_mask=~mask)
        # sum pooling keeps the "time adds up over stores" prior of the MLP model
        pooled = (encoded * mask.unsqueeze(-1)).sum(dim=1)
        return self.head(pooled).squeeze(-1)
