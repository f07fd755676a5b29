"""A trained cost model with its feature normalisation: ``config.json`` + ``model.safetensors``.

The normalisation (per-feature mean and standard deviation of the training stores) is part
of the artifact and fixed at training time. TVM's in-tree MLP model rescales by the maximum
of each prediction batch and does not save it, so the same candidate scores differently
depending on its neighbours; a tunezoo predictor gives one candidate one score.

Loading is strict: unknown architecture, another feature version, missing or unexpected
tensors are refused with a message that says what to do. Nothing is unpickled.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tunezoo.feature_kinds import UnknownFeatureVersionError, feature_kind
from tunezoo.features import FEATURE_VERSION, FeatureSet
from tunezoo.models import PackSumTrees, ScoreBlend, SeedEnsemble, build_model, model_config
from tunezoo.models.base import StoreSetModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1


class PredictorFormatError(ValueError):
    """An artifact that is not a usable tunezoo predictor; the message says why."""


class FeatureVersionError(PredictorFormatError):
    """The predictor was trained on features of another version."""


def check_feature_version(version: Any, what: str) -> None:
    """Refuse (``FeatureVersionError`` naming ``what``) a feature version this tunezoo
    cannot compute, for training, evaluation or at tune time."""
    try:
        feature_kind(str(version))
    except UnknownFeatureVersionError as exc:
        raise FeatureVersionError(f"{what}: {exc}") from None


@dataclass
class Predictor:
    model: StoreSetModel
    mean: torch.Tensor  # (feature_dim,)
    std: torch.Tensor  # (feature_dim,)
    target_key: str
    feature_version: str = FEATURE_VERSION
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def arch(self) -> str:
        return self.model.arch

    @property
    def feature_dim(self) -> int:
        """Numbers per feature row of this predictor's feature version."""
        return feature_kind(self.feature_version).dim

    # ------------------------------------------------------------------- scoring

    def _normalize(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / self.std

    def forward_packed(self, values: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Differentiable scores of packed candidates (used by training and adaptation)."""
        n = offsets.numel() - 1
        counts = offsets[1:] - offsets[:-1]
        segment_ids = torch.repeat_interleave(torch.arange(n), counts)
        return self.model(self._normalize(values), segment_ids, n)

    @torch.no_grad()
    def score_packed(
        self, values: np.ndarray, offsets: np.ndarray, chunk: int = 16384
    ) -> np.ndarray:
        """Scores (higher = predicted faster) for packed features, in chunks of candidates."""
        dim = self.feature_dim
        if values.ndim != 2 or values.shape[1] != dim:
            raise ValueError(
                f"{self.feature_version} features must be (rows, {dim}), got {values.shape}"
            )
        self.model.eval()
        n = len(offsets) - 1
        out = np.empty(n, dtype=np.float32)
        v = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        o = torch.from_numpy(np.asarray(offsets, dtype=np.int64))
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            part = o[start : stop + 1]
            scores = self.forward_packed(v[part[0] : part[-1]], part - part[0])
            out[start:stop] = scores.numpy()
        return out

    def score(self, features: FeatureSet) -> np.ndarray:
        if features.feature_version != self.feature_version:
            raise FeatureVersionError(
                f"features are {features.feature_version!r}, this predictor was trained on "
                f"{self.feature_version!r}"
            )
        return self.score_packed(features.values, features.offsets)

    def score_matrices(self, mats: list[np.ndarray]) -> np.ndarray:
        """Scores for a list of per-candidate (stores, dim) matrices."""
        if not mats:
            return np.zeros(0, dtype=np.float32)
        counts = np.array([len(m) for m in mats], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        return self.score_packed(np.concatenate(mats).astype(np.float32), offsets)

    # ----------------------------------------------------------------- persistence

    def config_dict(self) -> dict[str, Any]:
        return {
            "tunezoo_predictor_format": FORMAT_VERSION,
            "arch": self.arch,
            "arch_config": model_config(self.model),
            "feature_version": self.feature_version,
            "feature_dim": self.feature_dim,
            "target_key": self.target_key,
            "score": "higher is faster; trained on normalised throughput per workload",
            "metadata": self.metadata,
        }

    def copy(self) -> Predictor:
        """An independent copy (weights, normaliser, metadata): what a cost model trains or
        loads into, leaving the caller's predictor as it was."""
        return Predictor(
            copy.deepcopy(self.model),
            self.mean.detach().clone(),
            self.std.detach().clone(),
            self.target_key,
            self.feature_version,
            copy.deepcopy(self.metadata),
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        """Weights and normaliser as the flat dict every tunezoo safetensors file holds."""
        out = {
            f"model.{k}": v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()
        }
        out["normalizer.mean"] = self.mean.detach().contiguous()
        out["normalizer.std"] = self.std.detach().contiguous()
        return out

    def save(self, directory: str | Path) -> dict[str, str]:
        """Write the artifact; returns {file name: sha256}."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = self.tensors()
        # one metadata key: safetensors writes several in varying order, changing the sha256
        save_file(tensors, out / WEIGHTS_FILE, metadata={"format": "pt"})
        (out / CONFIG_FILE).write_text(
            json.dumps(self.config_dict(), indent=2, sort_keys=True) + "\n"
        )
        return {name: sha256_file(out / name) for name in (CONFIG_FILE, WEIGHTS_FILE)}

    @classmethod
    def load(cls, directory: str | Path, *, feature_version: str | None = None) -> Predictor:
        """Load strictly: a feature version this tunezoo computes (``feature_version``: that
        one only), the architecture's exact tensors, the normaliser."""
        path = Path(directory)
        config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
        for p in (config_path, weights_path):
            if not p.exists():
                raise PredictorFormatError(f"{p} is missing: not a tunezoo predictor directory")
        try:
            config = json.loads(config_path.read_text())
        except ValueError as exc:
            raise PredictorFormatError(f"{config_path}: invalid JSON ({exc})") from exc
        if config.get("tunezoo_predictor_format") != FORMAT_VERSION:
            raise PredictorFormatError(
                f"{config_path}: format {config.get('tunezoo_predictor_format')!r}, expected "
                f"{FORMAT_VERSION}; upgrade tunezoo"
            )
        saved = config.get("feature_version")
        if feature_version is not None and saved != feature_version:
            raise FeatureVersionError(
                f"{path} was trained on features {saved!r}, but {feature_version!r} was asked "
                "for; use a predictor trained for that version (tunezoo download) or retrain "
                "it (tunezoo train)"
            )
        check_feature_version(saved, str(path))
        try:
            model = build_model(config["arch"], config["arch_config"])
        except (KeyError, ValueError, TypeError) as exc:
            raise PredictorFormatError(f"{config_path}: {exc}") from exc
        tensors = load_file(weights_path)
        state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PredictorFormatError(
                f"{weights_path}: weights do not fit {config['arch']} ({str(exc).splitlines()[0]})"
            ) from exc
        for key in ("normalizer.mean", "normalizer.std"):
            if key not in tensors:
                raise PredictorFormatError(f"{weights_path}: no {key} tensor")
        model.eval()
        return cls(
            model,
            tensors["normalizer.mean"],
            tensors["normalizer.std"],
            config["target_key"],
            config["feature_version"],
            config.get("metadata", {}),
        )


def ensemble_of(members: list[Predictor]) -> Predictor:
    """One predictor scoring the mean of ``members`` (same normaliser, target, features)."""
    first = members[0]
    for m in members[1:]:
        if (
            m.target_key != first.target_key
            or m.feature_version != first.feature_version
            or not torch.equal(m.mean, first.mean)
            or not torch.equal(m.std, first.std)
        ):
            raise ValueError(
                "ensemble members must share target, feature version and normaliser "
                "(train them on the same snapshot)"
            )
    metadata = {
        "ensemble_of": [m.metadata for m in members],
        "train_seconds": round(sum(m.metadata.get("train_seconds", 0.0) for m in members), 1),
    }
    return Predictor(
        SeedEnsemble.of([m.model for m in members]),
        first.mean,
        first.std,
        first.target_key,
        first.feature_version,
        metadata,
    )


def blend_with_xgboost(
    predictor: Predictor, booster: Any, weights: tuple[float, float], *, note: str = ""
) -> Predictor:
    """``predictor`` plus XGBoost trees trained on the same per-store features, scored as
    ``weights[0] * predictor + weights[1] * trees`` (see :mod:`tunezoo.models.score_blend`).

    ``booster`` is MetaSchedule's ``XGBModel.booster`` (raw per-store rows, pack-sum); its
    trees become tensors in the predictor's normalised feature space."""
    trees = PackSumTrees.from_xgboost(booster, predictor.mean, predictor.std)
    metadata = {
        "blend_of": [predictor.metadata, {"xgboost_trees": trees.config.trees, "note": note}],
        "blend_weights": [float(w) for w in weights],
        "train_seconds": predictor.metadata.get("train_seconds", 0.0),
    }
    return Predictor(
        ScoreBlend.of([predictor.model, trees], weights),
        predictor.mean,
        predictor.std,
        predictor.target_key,
        predictor.feature_version,
        metadata,
    )


def fit_normalizer(values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std of training stores; constant features get std 1."""
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[std < 1e-6] = 1.0
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
