"""XGBoost baselines on the same features and splits as the neural predictors.

* ``xgb-packsum``: MetaSchedule's own XGBoost design: per-store features are summed per
  candidate (its "pack-sum" packs stores this way), regression on normalised throughput
  with MetaSchedule's default hyper-parameters (max_depth 10, gamma 0.001, eta 0.2).
* ``xgb-rank``: the strongest cheap tree baseline we know: summed and max-pooled store
  features plus the store count, LambdaMART (``rank:ndcg``) with one query per workload.

* ``ms-xgb``: MetaSchedule's ``XGBModel`` itself (its pack-sum objective, its early
  stopping), fed our precomputed per-store features through its ``_train``/``_predict``.
  Its labels are the same as ours (best median latency / median latency per workload).

All train on exactly the training candidates the neural models see, in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from tunezoo.features import FeatureSet


def pooled_features(fs: FeatureSet, with_max: bool) -> np.ndarray:
    """Per-candidate features: sum over stores (and max over stores, store count)."""
    n = len(fs)
    seg = np.repeat(np.arange(n), fs.stores_per_record())
    summed = np.zeros((n, fs.values.shape[1]), dtype=np.float32)
    np.add.at(summed, seg, fs.values)
    if not with_max:
        return summed
    maxed = np.full((n, fs.values.shape[1]), -np.inf, dtype=np.float32)
    np.maximum.at(maxed, seg, fs.values)
    maxed[~np.isfinite(maxed)] = 0.0
    return np.concatenate(
        [summed, maxed, fs.stores_per_record()[:, None].astype(np.float32)], axis=1
    )


@dataclass
class XGBBaseline:
    name: str
    booster: xgb.Booster
    with_max: bool

    def score(self, fs: FeatureSet) -> np.ndarray:
        return self.booster.predict(xgb.DMatrix(pooled_features(fs, self.with_max)))


@dataclass
class MetaScheduleXGB:
    """MetaSchedule's own XGBoost cost model, trained offline on the same features."""

    model: object
    name: str = "ms-xgb"

    def score(self, fs: FeatureSet) -> np.ndarray:
        return np.asarray(self.model._predict(xs=[fs.record(i) for i in range(len(fs))]))


def train_ms_xgb(train, *, threads: int = 2) -> MetaScheduleXGB:
    """Train ``tvm.s_tir.meta_schedule.cost_model.XGBModel`` as a tuning session would, but
    on all training workloads at once. ``_train`` is private TVM API: it is the function
    ``XGBModel.update`` calls after extracting features, which we have already."""
    from tvm.s_tir.meta_schedule.cost_model import XGBModel  # noqa: PLC0415

    model = XGBModel(num_tuning_cores=threads, verbose_eval=1_000_000)
    model._train(
        xs=[train.features.record(i) for i in range(len(train))],
        ys=train.labels.astype(np.float32),
    )
    return MetaScheduleXGB(model)


def train_xgb(name: str, train, validation, *, seed: int = 0, threads: int = 2, rounds: int = 400):
    """Train one baseline (``xgb-packsum``, ``xgb-rank`` or ``ms-xgb``)."""
    if name == "ms-xgb":
        return train_ms_xgb(train, threads=threads)
    with_max = name == "xgb-rank"
    x_tr = pooled_features(train.features, with_max)
    x_va = pooled_features(validation.features, with_max)
    if name == "xgb-packsum":
        params = {
            "objective": "reg:squarederror",
            "max_depth": 10,
            "gamma": 0.001,
            "min_child_weight": 0,
            "eta": 0.2,
            "seed": seed,
            "nthread": threads,
        }
        d_tr = xgb.DMatrix(x_tr, label=train.labels)
        d_va = xgb.DMatrix(x_va, label=validation.labels)
    elif name == "xgb-rank":
        params = {
            "objective": "rank:ndcg",
            "max_depth": 8,
            "eta": 0.1,
            "seed": seed,
            "nthread": threads,
            "lambdarank_num_pair_per_sample": 8,
            "lambdarank_pair_method": "topk",
            "eval_metric": "ndcg@5",
        }
        order_tr = np.argsort(train.groups, kind="stable")
        order_va = np.argsort(validation.groups, kind="stable")
        x_tr, x_va = x_tr[order_tr], x_va[order_va]
        # relevance grades 0..31 from normalised throughput
        d_tr = xgb.DMatrix(
            x_tr, label=np.round(train.labels[order_tr] * 31), qid=train.groups[order_tr]
        )
        d_va = xgb.DMatrix(
            x_va, label=np.round(validation.labels[order_va] * 31), qid=validation.groups[order_va]
        )
    else:
        raise ValueError(f"unknown baseline {name!r}: xgb-packsum, xgb-rank or ms-xgb")
    booster = xgb.train(
        params,
        d_tr,
        num_boost_round=rounds,
        evals=[(d_va, "validation")],
        early_stopping_rounds=40,
        verbose_eval=False,
    )
    # xgb.train returns the booster of the last round, up to 40 past the one validation
    # chose; predict() would use every tree. Keep the chosen rounds only.
    booster = booster[: booster.best_iteration + 1]
    return XGBBaseline(name, booster, with_max)
