"""Transformer encoders and decoder blocks in plain ``torch.nn``.

Attention is written out as matmul/softmax instead of ``scaled_dot_product_attention`` so the
TIR that MetaSchedule sees is the batched matmul + softmax a framework-agnostic compiler gets,
not whatever one torch version's decomposition of SDPA happens to be. Dimensions are those
of the published models (BERT, GPT-2, TinyLlama, ViT, cited per class).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "bert_base_layer",
    "bert_tiny",
    "gpt2_block",
    "llama_block",
    "vit_tiny",
]


class Attention(nn.Module):
    """Multi-head self-attention with optional causal mask, grouped KV heads and RoPE."""

    def __init__(
        self,
        hidden: int,
        heads: int,
        *,
        kv_heads: int | None = None,
        causal: bool = False,
        bias: bool = True,
        rotary: bool = False,
        max_positions: int = 2048,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.kv_heads = kv_heads or heads
        self.head_dim = hidden // heads
        self.causal = causal
        self.q = nn.Linear(hidden, heads * self.head_dim, bias=bias)
        self.k = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=bias)
        self.v = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=bias)
        self.o = nn.Linear(heads * self.head_dim, hidden, bias=bias)
        self.rotary = rotary
        if rotary:
            # Llama's rotary tables, precomputed like HF's LlamaRotaryEmbedding cache.
            inv = 1.0 / (10000 ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
            freqs = torch.outer(torch.arange(max_positions).float(), inv)
            emb = torch.cat([freqs, freqs], -1)
            self.register_buffer("cos", emb.cos(), persistent=False)
            self.register_buffer("sin", emb.sin(), persistent=False)
        if causal:
            mask = torch.triu(torch.full((max_positions, max_positions), float("-inf")), 1)
            self.register_buffer("mask", mask, persistent=False)

    @staticmethod
    def _rotate_half(x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return torch.cat([-x[..., half:], x[..., :half]], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.rotary:
            cos, sin = self.cos[:t], self.sin[:t]
            q = q * cos + self._rotate_half(q) * sin
            k = k * cos + self._rotate_half(k) * sin
        if self.kv_heads != self.heads:
            rep = self.heads // self.kv_heads
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if self.causal:
            scores = scores + self.mask[:t, :t]
        out = torch.matmul(scores.softmax(-1), v)
        return self.o(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class PostLNEncoderLayer(nn.Module):
    """BERT's post-LayerNorm encoder layer (GELU MLP, erf form)."""

    def __init__(self, hidden: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.attn = Attention(hidden, heads)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.fc1 = nn.Linear(hidden, mlp)
        self.fc2 = nn.Linear(mlp, hidden)
        self.act = nn.GELU()
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.fc2(self.act(self.fc1(x))))


class PreLNBlock(nn.Module):
    """Pre-LayerNorm block shared by GPT-2 (causal, tanh GELU) and ViT (bidirectional)."""

    def __init__(
        self, hidden: int, heads: int, mlp: int, *, causal: bool, gelu: str, eps: float
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden, eps=eps)
        self.attn = Attention(hidden, heads, causal=causal)
        self.ln2 = nn.LayerNorm(hidden, eps=eps)
        self.fc1 = nn.Linear(hidden, mlp)
        self.act = nn.GELU(approximate=gelu)
        self.fc2 = nn.Linear(mlp, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class BertEncoder(nn.Module):
    """BERT embeddings + encoder, taking token ids (``(batch, seq)`` int64)."""

    def __init__(self, hidden: int, layers: int, heads: int, mlp: int, vocab: int = 30522) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(512, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.Sequential(
            *[PostLNEncoderLayer(hidden, heads, mlp) for _ in range(layers)]
        )
        self.pooler = nn.Linear(hidden, hidden)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        pos = torch.arange(t, device=ids.device).unsqueeze(0)
        x = self.word(ids) + self.pos(pos) + self.token_type(torch.zeros_like(ids))
        x = self.layers(self.ln(x))
        return torch.tanh(self.pooler(x[:, 0]))


def bert_tiny() -> nn.Module:
    """BERT-Tiny (google/bert_uncased_L-2_H-128_A-2): 2 layers, hidden 128, 2 heads."""
    return BertEncoder(hidden=128, layers=2, heads=2, mlp=512)


def bert_base_layer() -> nn.Module:
    """One BERT-base encoder layer (hidden 768, 12 heads, MLP 3072) on hidden states."""
    return PostLNEncoderLayer(768, 12, 3072)


def gpt2_block() -> nn.Module:
    """One GPT-2 (124M) block: hidden 768, 12 heads, causal attention, tanh-GELU MLP 3072."""
    return PreLNBlock(768, 12, 3072, causal=True, gelu="tanh", eps=1e-5)


class RMSNorm(nn.Module):
    def __init__(self, hidden: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LlamaBlock(nn.Module):
    """Llama decoder layer: RMSNorm, rotary GQA attention without biases, SwiGLU MLP."""

    def __init__(self, hidden: int, heads: int, kv_heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = RMSNorm(hidden)
        self.attn = Attention(
            hidden, heads, kv_heads=kv_heads, causal=True, bias=False, rotary=True
        )
        self.norm2 = RMSNorm(hidden)
        self.gate = nn.Linear(hidden, mlp, bias=False)
        self.up = nn.Linear(hidden, mlp, bias=False)
        self.down = nn.Linear(mlp, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        h = self.norm2(x)
        return x + self.down(nn.functional.silu(self.gate(h)) * self.up(h))


def llama_block() -> nn.Module:
    """One TinyLlama-1.1B layer: hidden 2048, 32 heads, 4 KV heads, SwiGLU MLP 5632."""
    return LlamaBlock(2048, 32, 4, 5632)


class ViT(nn.Module):
    """Vision transformer: conv patch embedding, class token, pre-LN encoder, linear head."""

    def __init__(
        self, image: int, patch: int, hidden: int, depth: int, heads: int, mlp: int
    ) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, hidden, patch, patch)
        tokens = (image // patch) ** 2 + 1
        self.cls = nn.Parameter(torch.zeros(1, 1, hidden))
        self.pos = nn.Parameter(torch.randn(1, tokens, hidden) * 0.02)
        self.blocks = nn.Sequential(
            *[
                PreLNBlock(hidden, heads, mlp, causal=False, gelu="none", eps=1e-6)
                for _ in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.head = nn.Linear(hidden, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


def vit_tiny() -> nn.Module:
    """ViT-Ti/16 at 224: hidden 192, 12 layers, 3 heads, MLP 768."""
    return ViT(224, 16, 192, 12, 3, 768)
