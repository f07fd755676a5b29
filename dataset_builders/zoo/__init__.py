"""The tunezoo model zoo: real network architectures whose TIR workloads we tune.

Every model is plain ``torch.nn`` with seeded random weights (no downloads: MetaSchedule
workloads depend only on shapes and dtypes). ``MODELS`` is the one table of what exists;
a name is ``<base>`` for batch 1 and ``<base>-b<batch>`` otherwise, so ``resnet18-b8`` is
ResNet-18 at batch 8. Nothing registers itself on import: add a model by adding a row.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from . import cnn, other, transformer

__all__ = [
    "MODELS",
    "Family",
    "InputSpec",
    "ModelSpec",
    "UnknownModelError",
    "get_model",
    "list_models",
]

Family = Literal["cnn", "transformer", "mlp", "rnn"]


@dataclass(frozen=True)
class InputSpec:
    """One example input: full shape (batch first), dtype, and id range for integer inputs."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    high: int = 100  # integer inputs are token ids drawn from [0, high)

    def example(self, generator: torch.Generator) -> torch.Tensor:
        dtype = getattr(torch, self.dtype)
        if dtype.is_floating_point:
            return torch.randn(self.shape, generator=generator, dtype=dtype)
        return torch.randint(0, self.high, self.shape, generator=generator, dtype=dtype)


@dataclass(frozen=True)
class ModelSpec:
    """A network at one input configuration: what ``extract_tasks`` traces.

    ``base`` names the architecture and input size (``bert_tiny_s64``); ``batch`` is the
    leading dimension of every input. ``notes`` records where we deviate from the published
    model (fewer layers, smaller images) so dataset cards can say so.
    """

    base: str
    family: Family
    constructor: Callable[[], nn.Module]
    inputs: tuple[InputSpec, ...]
    batch: int = 1
    notes: str = ""

    @property
    def name(self) -> str:
        return self.base if self.batch == 1 else f"{self.base}-b{self.batch}"

    def build(self, seed: int = 0) -> nn.Module:
        """Construct the model in eval mode with weights seeded by ``seed``."""
        torch.manual_seed(seed)
        return self.constructor().eval()

    def example_inputs(self, seed: int = 0) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        return tuple(spec.example(generator) for spec in self.inputs)


class UnknownModelError(KeyError):
    """Raised by :func:`get_model` for a name not in ``MODELS``."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _image(batch: int, size: int = 224) -> tuple[InputSpec, ...]:
    return (InputSpec((batch, 3, size, size)),)


def _tokens(batch: int, seq: int) -> tuple[InputSpec, ...]:
    return (InputSpec((batch, seq), "int64"),)


def _hidden(batch: int, seq: int, hidden: int) -> tuple[InputSpec, ...]:
    return (InputSpec((batch, seq, hidden)),)


def _lstm_step(batch: int) -> tuple[InputSpec, ...]:
    """Input, hidden state and cell state of one ``lstm_cell`` step."""
    return tuple(InputSpec((batch, 512)) for _ in range(3))


def _variants(
    base: str,
    family: Family,
    constructor: Callable[[], nn.Module],
    inputs: Callable[[int], tuple[InputSpec, ...]],
    batches: tuple[int, ...] = (1, 8),
    notes: str = "",
) -> list[ModelSpec]:
    """One row of the table, expanded to one spec per batch size."""
    return [ModelSpec(base, family, constructor, inputs(b), b, notes) for b in batches]


# The zoo. One row per architecture/input size; batch sizes listed per row.
_TABLE: list[ModelSpec] = [
    # CNNs at ImageNet resolution (224x224); every row is the published architecture
    *_variants("resnet18", "cnn", cnn.resnet18, _image),
    *_variants("resnet34", "cnn", cnn.resnet34, _image),
    *_variants("resnet50", "cnn", cnn.resnet50, _image),
    *_variants("mobilenet_v2", "cnn", cnn.mobilenet_v2, _image),
    *_variants("mobilenet_v3_small", "cnn", cnn.mobilenet_v3_small, _image),
    *_variants("efficientnet_b0", "cnn", cnn.efficientnet_b0, _image),
    *_variants("densenet121", "cnn", cnn.densenet121, _image),
    *_variants("vgg11", "cnn", cnn.vgg11, _image),
    *_variants("squeezenet1_0", "cnn", cnn.squeezenet1_0, _image),
    # transformers
    *_variants("bert_tiny", "transformer", transformer.bert_tiny, lambda b: _tokens(b, 128)),
    *_variants("bert_tiny_s64", "transformer", transformer.bert_tiny, lambda b: _tokens(b, 64)),
    *_variants("bert_tiny_s256", "transformer", transformer.bert_tiny, lambda b: _tokens(b, 256)),
    *_variants(
        "bert_base_layer",
        "transformer",
        transformer.bert_base_layer,
        lambda b: _hidden(b, 128, 768),
    ),
    *_variants("gpt2_block", "transformer", transformer.gpt2_block, lambda b: _hidden(b, 128, 768)),
    *_variants(
        "llama_block", "transformer", transformer.llama_block, lambda b: _hidden(b, 128, 2048)
    ),
    *_variants("vit_tiny", "transformer", transformer.vit_tiny, _image),
    # others
    *_variants("mlp_mixer_s", "mlp", other.mlp_mixer_s, _image),
    *_variants("lstm", "rnn", other.lstm, lambda b: _hidden(b, 16, 256)),
    *_variants("gru", "rnn", other.gru, lambda b: _hidden(b, 16, 256)),
    *_variants("lstm_cell", "rnn", other.lstm_cell, _lstm_step),
]

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _TABLE}
if len(MODELS) != len(_TABLE):  # pragma: no cover - guards edits to the table
    raise RuntimeError("duplicate model names in dataset_builders.zoo._TABLE")


def list_models() -> list[str]:
    """All model names, sorted."""
    return sorted(MODELS)


def get_model(name: str) -> ModelSpec:
    """Look up a model; an unknown name raises with the closest match and the full list."""
    try:
        return MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, MODELS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Available: {', '.join(list_models())}"
        ) from None
