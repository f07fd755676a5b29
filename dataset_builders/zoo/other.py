"""Non-convolutional, non-attention families: MLP-Mixer and recurrent networks."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["gru", "lstm", "lstm_cell", "mlp_mixer_s"]


class MixerBlock(nn.Module):
    def __init__(self, tokens: int, hidden: int, token_mlp: int, channel_mlp: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden, eps=1e-6)
        self.tok = nn.Sequential(
            nn.Linear(tokens, token_mlp), nn.GELU(), nn.Linear(token_mlp, tokens)
        )
        self.ln2 = nn.LayerNorm(hidden, eps=1e-6)
        self.chan = nn.Sequential(
            nn.Linear(hidden, channel_mlp), nn.GELU(), nn.Linear(channel_mlp, hidden)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.tok(self.ln1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.chan(self.ln2(x))


class MlpMixer(nn.Module):
    def __init__(
        self, image: int, patch: int, hidden: int, depth: int, token_mlp: int, channel_mlp: int
    ) -> None:
        super().__init__()
        tokens = (image // patch) ** 2
        self.stem = nn.Conv2d(3, hidden, patch, patch)
        self.blocks = nn.Sequential(
            *[MixerBlock(tokens, hidden, token_mlp, channel_mlp) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.head = nn.Linear(hidden, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(x)).mean(1))


def mlp_mixer_s() -> nn.Module:
    """Mixer-S/16 at 224 (hidden 512, token MLP 256, channel MLP 2048, 8 layers)."""
    return MlpMixer(224, 16, 512, 8, 256, 2048)


class _Recurrent(nn.Module):
    """Runs ``nn.LSTM``/``nn.GRU`` over a ``(batch, seq, feature)`` input, returns all outputs.

    The torch frontend unrolls the recurrence, so each time step's gate matmuls appear in
    the graph; MetaSchedule deduplicates them into a handful of weighted tasks.
    """

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def lstm() -> nn.Module:
    """One-layer LSTM, 256 inputs, 512 hidden units."""
    return _Recurrent(nn.LSTM(256, 512, batch_first=True))


def gru() -> nn.Module:
    """One-layer GRU, 256 inputs, 512 hidden units."""
    return _Recurrent(nn.GRU(256, 512, batch_first=True))


class _LSTMCell(nn.Module):
    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(features, hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.cell(x, (h, c))[0]


def lstm_cell() -> nn.Module:
    """A single ``nn.LSTMCell`` step (512 inputs, 512 hidden): one decoding step of an LSTM."""
    return _LSTMCell(512, 512)
