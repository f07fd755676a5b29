"""Gradient-boosted trees over per-store features, summed per candidate, as tensors.

MetaSchedule's XGBoost cost model predicts a value for every store of a candidate and
sums them ("pack-sum"). On the llvm-znver4 data its ranking errors differ from the
segment-sum MLP's, so a blend of the two ranks better than either (see
:mod:`tunezoo.models.score_blend`). To ship it inside a tunezoo predictor the trees are
converted to flat tensors: split feature, threshold, children and leaf value per node,
all trees back to back, so they live in ``model.safetensors`` like every other weight
(no XGBoost model file, nothing unpickled) and score in the same torch forward pass.

Thresholds are moved into the predictor's normalised feature space when converting
(``(t - mean) / std`` per split feature, in float32, the same operations the predictor
applies to the features), so the trees see the normalised values every model receives
and still split exactly where XGBoost did. Features are never missing (NaN) in
``PerStoreFeature`` output, so XGBoost's default directions are not kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from tunezoo.models.base import StoreSetModel


@dataclass(frozen=True)
class PackSumTreesConfig:
    in_dim: int = 164
    trees: int = 1
    nodes: int = 1  # all trees' nodes, stored one tree after another
    depth: int = 0  # the deepest leaf: traversal steps needed
    base_score: float = 0.0  # added for every store, as XGBoost does


class PackSumTrees(StoreSetModel):
    """Fixed trees (buffers, no parameters): adaptive fine-tuning leaves them unchanged.

    Nodes of all trees are stored back to back (no padding) with 32-bit indices: the 130
    trees of the llvm-znver4 model take about 1 MB."""

    arch = "packsum-trees"

    def __init__(self, config: PackSumTreesConfig) -> None:
        super().__init__()
        if config.trees < 1 or config.nodes < config.trees or config.depth < 0:
            raise ValueError(f"invalid tree shape {config}")
        self.config = config
        n = config.nodes
        self.register_buffer("root", torch.zeros(config.trees, dtype=torch.int32))
        self.register_buffer("feature", torch.zeros(n, dtype=torch.int32))
        self.register_buffer("threshold", torch.zeros(n, dtype=torch.float32))
        self.register_buffer("left", torch.zeros(n, dtype=torch.int32))  # node index, all trees
        self.register_buffer("right", torch.zeros(n, dtype=torch.int32))
        self.register_buffer("leaf_value", torch.zeros(n, dtype=torch.float32))

    def store_scores(self, values: torch.Tensor) -> torch.Tensor:
        """One value per store row: the sum of every tree's leaf, plus the base score."""
        feature = self.feature.long()
        # children side by side: node 2i is i's left child, 2i + 1 its right one
        children = torch.stack((self.left, self.right), 1).reshape(-1).long()
        node = self.root.long().expand(values.shape[0], self.config.trees)
        for _ in range(self.config.depth):
            go_right = ~(values.gather(1, feature[node]) < self.threshold[node])
            node = children[node * 2 + go_right]
        return self.leaf_value[node].sum(1) + self.config.base_score

    def forward(self, values, segment_ids, n_candidates):
        per_store = self.store_scores(values.to(torch.float32))
        return per_store.new_zeros(n_candidates).index_add_(0, segment_ids, per_store)

    @classmethod
    def from_xgboost(
        cls, booster: Any, mean: torch.Tensor, std: torch.Tensor, *, rounds: int | None = None
    ) -> PackSumTrees:
        """Convert an XGBoost booster trained on raw per-store rows (MetaSchedule's
        ``XGBModel.booster``). ``rounds``: keep the first n boosting rounds (default: all,
        which is what ``booster.predict`` and so ``XGBModel`` use, even where MetaSchedule's
        early-stopping callback recorded an earlier ``best_iteration``).
        """
        model = json.loads(bytes(booster.save_raw("json")))
        learner = model["learner"]
        objective = learner.get("objective", {}).get("name", "")
        if objective not in ("reg:squarederror", ""):
            raise ValueError(f"only identity-link boosters convert, this one is {objective!r}")
        trees = learner["gradient_booster"]["model"]["trees"]
        trees = trees[: rounds or len(trees)]
        base_score = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        in_dim = int(mean.numel())
        sizes = [len(t["left_children"]) for t in trees]
        depth = max(_tree_depth(t["left_children"], t["right_children"]) for t in trees)
        out = cls(PackSumTreesConfig(in_dim, len(trees), sum(sizes), depth, base_score))
        mean32, std32 = mean.to(torch.float32), std.to(torch.float32)
        start = 0
        for i, tree in enumerate(trees):
            n = sizes[i]
            nodes = slice(start, start + n)
            left = torch.tensor(tree["left_children"], dtype=torch.int64)
            right = torch.tensor(tree["right_children"], dtype=torch.int64)
            feat = torch.tensor(tree["split_indices"], dtype=torch.int64)
            cond = torch.tensor(tree["split_conditions"], dtype=torch.float32)
            if int(feat.max()) >= in_dim:
                raise ValueError(f"tree {i} splits on feature {int(feat.max())} >= {in_dim}")
            leaf = left < 0
            own = torch.arange(n, dtype=torch.int64)
            # leaves point at themselves, so extra traversal steps stay put
            out.root[i] = start
            out.left[nodes] = (torch.where(leaf, own, left) + start).to(torch.int32)
            out.right[nodes] = (torch.where(leaf, own, right) + start).to(torch.int32)
            out.feature[nodes] = torch.where(leaf, 0, feat).to(torch.int32)
            normalised = (cond - mean32[feat]) / std32[feat]
            out.threshold[nodes] = torch.where(leaf, torch.inf, normalised)
            out.leaf_value[nodes] = torch.where(leaf, cond, 0.0)
            start += n
        return out.eval()


def _tree_depth(left: list[int], right: list[int]) -> int:
    """Edges from the root to the deepest leaf."""
    depth, frontier = 0, [0]
    while True:
        nxt = [c for node in frontier for c in (left[node], right[node]) if c >= 0]
        if not nxt:
            return depth
        depth, frontier = depth + 1, nxt
