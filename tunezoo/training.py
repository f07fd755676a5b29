"""Training data and the training loop for ranking cost models.

Labels are normalised throughput per workload (best latency / latency; failed candidates
get 0), because a tuner only ever compares candidates of one workload: absolute latency
across workloads spans six orders of magnitude and would drown the ranking signal. The
loss is LambdaRank (pairwise logistic weighted by the NDCG change of swapping the pair),
which spends the model's capacity on the top of each workload's ranking, where top-k
scores are decided.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from tunezoo.feature_kinds import feature_kind
from tunezoo.features import FEATURE_VERSION, ExtractionStats, FeatureSet
from tunezoo.predictor import Predictor, fit_normalizer
from tunezoo.records import read_records, read_workloads, shards_after
from tunezoo.splits import HELD_OUT_MODELS, is_held_out, split_of


@dataclass
class RankingData:
    """Candidates of several workloads with features, latencies and labels."""

    features: FeatureSet
    latencies: np.ndarray  # seconds; +inf for failed candidates
    labels: np.ndarray  # normalised throughput in [0, 1]
    groups: np.ndarray  # int group index per candidate
    group_ids: list[str]  # workload id of each group
    group_weights: np.ndarray  # task weight of each group

    def __len__(self) -> int:
        return len(self.labels)

    def group_members(self) -> list[np.ndarray]:
        order = np.argsort(self.groups, kind="stable")
        bounds = np.searchsorted(self.groups[order], np.arange(len(self.group_ids) + 1))
        return [order[bounds[g] : bounds[g + 1]] for g in range(len(self.group_ids))]

    def subset_groups(self, keep: list[int]) -> RankingData:
        members = self.group_members()
        idx = np.concatenate([members[g] for g in keep]) if keep else np.zeros(0, np.int64)
        remap = {g: i for i, g in enumerate(keep)}
        return RankingData(
            self.features.subset(idx),
            self.latencies[idx],
            self.labels[idx],
            np.array([remap[g] for g in self.groups[idx]], dtype=np.int64),
            [self.group_ids[g] for g in keep],
            self.group_weights[keep],
        )

    def successful(self) -> np.ndarray:
        return np.isfinite(self.latencies)


SELECTABLE_PARTS = ("train", "validation", "test", "heldout", "all")


def select_workloads(
    workloads: pa.Table, part: str, held_out: tuple[str, ...] = HELD_OUT_MODELS
) -> list[str]:
    """Workload ids of one part: ``train`` / ``validation`` / ``test`` (never a held-out
    model's workload), ``heldout`` (every workload of a held-out model) or ``all`` (every
    workload: evaluating a predictor on another target's data, none of it trained on)."""
    if part not in SELECTABLE_PARTS:
        raise ValueError(f"unknown part {part!r}; choose from {', '.join(SELECTABLE_PARTS)}")
    if part == "all":
        return workloads.column("workload_id").to_pylist()
    out = []
    for wid, models in zip(
        workloads.column("workload_id").to_pylist(),
        workloads.column("models").to_pylist(),
        strict=True,
    ):
        names = [m["model"] for m in models]
        held = is_held_out(names, held_out) or is_held_out(
            [n.rsplit("-b", 1)[0] for n in names], held_out
        )
        if part == "heldout":
            if held:
                out.append(wid)
        elif not held and split_of(wid) == part:
            out.append(wid)
    return out


def load_ranking_data(
    dataset_dir: str | Path,
    part: str,
    *,
    min_candidates: int = 8,
    workers: int = 1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    stats: ExtractionStats | None = None,
    until=None,
    feature_version: str = FEATURE_VERSION,
) -> RankingData:
    """Features (of ``feature_version``, see :mod:`tunezoo.feature_kinds`) and labels of one
    part of a dataset (see :func:`select_workloads`).

    ``until`` (a UTC datetime) cuts a growing dataset back to a snapshot, e.g. the one a
    predictor was trained on, so its metrics can be recomputed later: see
    :func:`tunezoo.records.shards_after`.
    """
    excluded = shards_after(dataset_dir, until) if until is not None else set()
    workloads = read_workloads(dataset_dir, exclude_shards=excluded)
    wanted = select_workloads(workloads, part)
    # typed: an empty part (no held-out model in an imported dataset) must read no rows,
    # and pyarrow cannot match a string column against an untyped empty list
    records = read_records(
        dataset_dir,
        filter=pc.field("workload_id").isin(pa.array(wanted, pa.string())),
        exclude_shards=excluded,
    )
    return ranking_data_from_tables(
        records,
        workloads,
        min_candidates=min_candidates,
        workers=workers,
        cache_dir=cache_dir,
        progress=progress,
        stats=stats,
        feature_version=feature_version,
    )


def ranking_data_from_tables(
    records: pa.Table,
    workloads: pa.Table,
    *,
    min_candidates: int = 8,
    workers: int = 1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    stats: ExtractionStats | None = None,
    feature_version: str = FEATURE_VERSION,
) -> RankingData:
    records = pool_repeated_candidates(records)
    features, mask = feature_kind(feature_version).records(
        records, workloads, workers=workers, cache_dir=cache_dir, progress=progress, stats=stats
    )
    kept = records.filter(pa.array(mask))
    lat = robust_latencies(kept)
    wids = kept.column("workload_id").to_pylist()
    weight_of = {
        w: max(1, sum(m["weight"] for m in models))
        for w, models in zip(
            workloads.column("workload_id").to_pylist(),
            workloads.column("models").to_pylist(),
            strict=True,
        )
    }
    # groups with enough successful candidates to rank
    ok_counts: dict[str, int] = {}
    for w, v in zip(wids, lat, strict=True):
        ok_counts[w] = ok_counts.get(w, 0) + int(np.isfinite(v))
    group_ids = sorted(w for w, c in ok_counts.items() if c >= min_candidates)
    index = {w: i for i, w in enumerate(group_ids)}
    keep = np.array([w in index for w in wids], dtype=bool)
    idx = np.nonzero(keep)[0]
    groups = np.array([index[wids[i]] for i in idx], dtype=np.int64)
    lat = lat[idx]
    best = np.full(len(group_ids), np.inf)
    np.minimum.at(best, groups, lat)
    labels = np.where(np.isfinite(lat), best[groups] / lat, 0.0)
    return RankingData(
        features.subset(idx),
        lat,
        labels.astype(np.float32),
        groups,
        group_ids,
        np.array([weight_of.get(w, 1) for w in group_ids], dtype=np.float64),
    )


def pool_repeated_candidates(records: pa.Table) -> pa.Table:
    """One row per record id, with the run times of every measurement of it pooled.

    Random sampling with replacement measured some schedules many times; as separate rows
    they would be "candidates" whose order is pure measurement noise. Failed measurements
    of a candidate that also succeeded elsewhere are dropped from the pool.
    """
    ids = records.column("record_id").to_pylist()
    if len(set(ids)) == len(ids):
        return records
    secs = records.column("run_secs").to_pylist()
    errors = records.column("error_kind").to_pylist()
    first: dict[str, int] = {}
    pooled: dict[str, list[float]] = {}
    for i, rid in enumerate(ids):
        if rid not in first:
            first[rid] = i
            pooled[rid] = list(secs[i]) if errors[i] is None else []
        elif errors[i] is None:
            pooled[rid].extend(secs[i])
    keep = list(first.values())
    out = records.take(pa.array(keep))
    new_secs = [pooled[ids[i]] or secs[i] for i in keep]
    new_errors = [None if pooled[ids[i]] else errors[i] for i in keep]
    out = out.set_column(
        out.schema.get_field_index("run_secs"),
        "run_secs",
        pa.array(new_secs, type=out.schema.field("run_secs").type),
    )
    return out.set_column(
        out.schema.get_field_index("error_kind"),
        "error_kind",
        pa.array(new_errors, type=pa.string()),
    )


def robust_latencies(records: pa.Table) -> np.ndarray:
    """The median of each record's repeats (+inf for failed records).

    On a shared machine most of the repeat spread is one interference spike (dropping the
    fastest and slowest of five repeats shrinks the median spread from 3.9% to 0.6% in the
    llvm-znver4 data), so the median ranks candidates more reliably than the mean, which
    ``latency_s`` keeps for agreement with MetaSchedule. All repeats stay in the records.
    """
    out = np.full(records.num_rows, math.inf)
    errors = records.column("error_kind").to_pylist()
    for i, secs in enumerate(records.column("run_secs").to_pylist()):
        if errors[i] is None and secs:
            out[i] = float(np.median(secs))
    return out


# ------------------------------------------------------------------------------ loss


def lambdarank_loss(
    scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, gain_scale: float = 4.0
) -> torch.Tensor:
    """LambdaRank over padded groups: scores/labels/mask are (groups, candidates)."""
    gains = torch.exp2(labels * gain_scale) - 1.0
    gains = gains * mask
    with torch.no_grad():
        masked = scores.masked_fill(~mask, -1e9)
        ranks = torch.argsort(torch.argsort(masked, dim=1, descending=True), dim=1) + 1
        discount = 1.0 / torch.log2(ranks.float() + 1.0)
        ideal = torch.sort(gains, dim=1, descending=True).values
        positions = torch.arange(1, scores.shape[1] + 1, dtype=torch.float32)
        idcg = (ideal / torch.log2(positions + 1.0)).sum(dim=1).clamp_min(1e-9)
        delta = (
            (gains.unsqueeze(2) - gains.unsqueeze(1)).abs()
            * (discount.unsqueeze(2) - discount.unsqueeze(1)).abs()
            / idcg[:, None, None]
        )
        better = (labels.unsqueeze(2) > labels.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
        weight = delta * better
    diff = scores.unsqueeze(2) - scores.unsqueeze(1)
    loss = torch.nn.functional.softplus(-diff) * weight
    return loss.sum() / weight.sum().clamp_min(1e-9)


def pairwise_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RankNet: logistic loss on every ordered pair, unweighted."""
    better = (labels.unsqueeze(2) > labels.unsqueeze(1)) & mask.unsqueeze(2) & mask.unsqueeze(1)
    diff = scores.unsqueeze(2) - scores.unsqueeze(1)
    return (torch.nn.functional.softplus(-diff) * better).sum() / better.sum().clamp_min(1)


LOSSES = {"lambdarank": lambdarank_loss, "pairwise": pairwise_loss}


# ------------------------------------------------------------------------- batching


class PackedBatcher:
    """Gathers the packed store rows of chosen candidates quickly (numpy index tricks)."""

    def __init__(self, features: FeatureSet) -> None:
        self.values = torch.from_numpy(np.ascontiguousarray(features.values))
        self.offsets = features.offsets
        self.counts = np.diff(features.offsets)

    def gather(self, candidates: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        counts = self.counts[candidates]
        starts = self.offsets[candidates]
        total = int(counts.sum())
        new_offsets = np.concatenate([[0], np.cumsum(counts)])
        rows = np.repeat(starts - new_offsets[:-1], counts) + np.arange(total)
        return self.values[torch.from_numpy(rows)], torch.from_numpy(new_offsets)


# ------------------------------------------------------------------------- training


@dataclass
class TrainConfig:
    arch: str = "segsum-mlp"
    arch_config: dict = field(default_factory=dict)
    loss: str = "lambdarank"
    epochs: int = 60
    lr: float = 1e-3
    weight_decay: float = 1e-5
    batch_groups: int = 16
    max_per_group: int = 64
    patience: int = 10
    # Epochs before this one are never chosen and never count against the patience: the
    # validation split's top-1 is noisy (its task weights make 30 workloads count as about
    # 6), so a lucky, barely trained epoch 0 could otherwise win and stop the run
    # (seed 3 of the 2026-11-25 10:00 snapshot stopped at epoch 10 keeping epoch 0, loss
    # 0.52 against the others' 0.07, held-out top-1 0.48).
    min_epochs: int = 10
    seed: int = 0
    threads: int = 2


def _padded_batch(
    data: RankingData,
    batcher: PackedBatcher,
    members: list[np.ndarray],
    chosen_groups: np.ndarray,
    rng: np.random.Generator,
    max_per_group: int,
):
    picks = []
    for g in chosen_groups:
        m = members[g]
        if len(m) > max_per_group:
            m = rng.choice(m, size=max_per_group, replace=False)
        picks.append(m)
    flat = np.concatenate(picks)
    values, offsets = batcher.gather(flat)
    width = max(len(p) for p in picks)
    mask = torch.zeros((len(picks), width), dtype=torch.bool)
    labels = torch.zeros((len(picks), width))
    slots = []
    for i, p in enumerate(picks):
        mask[i, : len(p)] = True
        labels[i, : len(p)] = torch.from_numpy(data.labels[p])
        slots.append((i, len(p)))
    return values, offsets, labels, mask, slots


def scores_to_padded(scores: torch.Tensor, slots, width: int) -> torch.Tensor:
    out = scores.new_zeros((len(slots), width))
    pos = 0
    for i, n in slots:
        out[i, :n] = scores[pos : pos + n]
        pos += n
    return out


def train_predictor(
    train: RankingData,
    validation: RankingData,
    config: TrainConfig,
    *,
    target_key: str,
    evaluate_fn,
    log=print,
) -> tuple[Predictor, dict]:
    """Train with early stopping on the validation metric ``evaluate_fn`` returns.

    An epoch can be chosen only once ``config.min_epochs`` epochs have been trained (see
    :class:`TrainConfig`).

    ``evaluate_fn(predictor, data) -> dict`` must hold ``"selection"`` (higher is better).
    """
    from tunezoo.models import build_model, with_input_dim  # noqa: PLC0415

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    mean, std = fit_normalizer(train.features.values)
    model = build_model(
        config.arch, with_input_dim(config.arch, config.arch_config, train.features.dim)
    )
    predictor = Predictor(model, mean, std, target_key, train.features.feature_version)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    loss_fn = LOSSES[config.loss]
    batcher = PackedBatcher(train.features)
    members = train.group_members()
    best_state, best_metric, best_epoch, bad = None, -math.inf, -1, 0
    history: list[dict] = []
    t0 = time.time()
    for epoch in range(config.epochs):
        model.train()
        order = rng.permutation(len(members))
        losses = []
        for start in range(0, len(order), config.batch_groups):
            chosen = order[start : start + config.batch_groups]
            values, offsets, labels, mask, slots = _padded_batch(
                train, batcher, members, chosen, rng, config.max_per_group
            )
            scores = predictor.forward_packed(values, offsets)
            loss = loss_fn(scores_to_padded(scores, slots, mask.shape[1]), labels, mask)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            losses.append(float(loss.detach()))
        scheduler.step()
        metrics = evaluate_fn(predictor, validation)
        entry = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            **metrics,
            "seconds": round(time.time() - t0, 1),
        }
        history.append(entry)
        log(
            f"epoch {epoch:3d} loss {entry['loss']:.4f} "
            + " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        )
        if epoch + 1 < min(config.min_epochs, config.epochs):
            continue
        if metrics["selection"] > best_metric + 1e-5:
            best_metric, best_epoch, bad = metrics["selection"], epoch, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    predictor.metadata = {
        "train_config": asdict(config),
        "best_epoch": best_epoch,
        "best_validation": best_metric,
        "epochs_run": len(history),
        "train_seconds": round(time.time() - t0, 1),
    }
    return predictor, {"history": history, "best_epoch": best_epoch}
