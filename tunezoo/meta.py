"""Meta-learning over workloads as tasks, and few-shot adaptation of a cost model.

A tuner meets a new workload (or new hardware) with no measurements, then measures a few
dozen candidates. A predictor pretrained on other workloads is a good start; a
*meta-initialisation* is trained for exactly that situation: weights from which a few
gradient steps on K measured candidates of one workload give a good ranking of the rest.

Tasks are workloads. Each meta-training task draws a *support* set of ``support_k``
candidates of one workload and a *query* set from the rest; labels are normalised
throughput (best latency / latency) *within the given candidates*, because at tuning time
only those are known. The inner loop is plain SGD on the support set, run functionally with
:func:`torch.func.functional_call` over a dict of parameters, so the module itself is never
mutated and there is no hand-kept parameter list. Algorithms:

* ``fomaml``: first-order MAML. The meta-gradient is the query-loss gradient at the
  *adapted* parameters, applied to the initialisation.
* ``maml``: second-order MAML (the inner loop keeps its graph; costlier).
* ``reptile``: the meta-gradient is ``init - adapted`` (no query set needed).

The well-known bug in public MAML code is evaluating the query set with the module (whose
parameters the inner loop never touched) instead of the adapted parameters: the inner loop
then does nothing. Here the query loss is always computed from the adapted parameter dict,
and ``tests/test_meta.py`` checks that it differs from the un-adapted loss.

The artifact is a :class:`~tunezoo.predictor.Predictor` (``config.json`` +
``model.safetensors``) whose ``metadata["meta"]`` holds the algorithm, inner learning rate,
inner steps, support size and loss: :func:`adapt` uses those unless told otherwise, since
the initialisation was optimised for that exact adaptation procedure.
"""

from __future__ import annotations

import copy
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.func import functional_call

from tunezoo.evaluate import evaluate_ranking
from tunezoo.predictor import FeatureVersionError, Predictor, PredictorFormatError, fit_normalizer
from tunezoo.training import LOSSES, PackedBatcher, RankingData, ranking_data_from_tables

ALGORITHMS = ("fomaml", "maml", "reptile")
META_KEY = "meta"  # the key of Predictor.metadata that makes a predictor a meta-init
Params = dict[str, torch.Tensor]


class NotAMetaInitError(PredictorFormatError):
    """A predictor artifact without the ``meta`` metadata a meta-initialisation carries."""


# ------------------------------------------------------------------------------ config


@dataclass
class MetaConfig:
    """Everything meta-training needs; saved (as a dict) in the artifact's metadata.

    ``inner_lr``/``inner_steps``/``support_k``/``loss`` define the adaptation procedure the
    initialisation is optimised for, and are what :func:`adapt` uses by default.
    """

    arch: str = "segsum-mlp"
    arch_config: dict[str, Any] = field(default_factory=dict)
    algorithm: str = "fomaml"
    loss: str = "lambdarank"
    inner_lr: float = 1e-2
    inner_steps: int = 5
    support_k: int = 16
    query_size: int = 64  # query candidates per task (a sample of the rest of the workload)
    meta_lr: float = 1e-3
    meta_batch: int = 4  # tasks per outer step
    meta_steps: int = 400
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    eval_every: int = 50
    eval_draws: int = 3  # support draws per validation workload
    patience: int = 0  # evaluations without improvement before stopping; 0 = never stop early
    # successful candidates a workload needs to be a task; a task with n < 2 * support_k
    # candidates uses a support of n // 2, so the query is never empty
    min_candidates: int = 16
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm {self.algorithm!r} is not one of {ALGORITHMS}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is not one of {sorted(LOSSES)}")
        if self.inner_steps < 1 or self.inner_lr <= 0 or self.support_k < 2:
            raise ValueError("need inner_steps >= 1, inner_lr > 0 and support_k >= 2")
        if self.min_candidates < 4:
            raise ValueError("min_candidates must be >= 4 (a support and a query of 2 each)")

    def meta_fields(self) -> dict[str, Any]:
        """What the artifact's ``metadata["meta"]`` records about adaptation."""
        return {
            "algorithm": self.algorithm,
            "inner_lr": self.inner_lr,
            "inner_steps": self.inner_steps,
            "support_k": self.support_k,
            "loss": self.loss,
        }


# ------------------------------------------------------------------- functional core


@dataclass
class Shots:
    """Candidates of one or more workloads ready for the loss: normalised store rows,
    segment ids, and left-aligned padded labels/mask (one row per workload, candidates in
    row-major order of the mask, which is the order of the packed rows)."""

    values: torch.Tensor
    segment_ids: torch.Tensor
    n: int
    labels: torch.Tensor  # (workloads, width)
    mask: torch.Tensor  # (workloads, width) bool


def within_labels(latencies: np.ndarray) -> np.ndarray:
    """Normalised throughput inside the given candidates: best / latency, failures 0.

    Only the candidates given are known at adaptation time, so the best of them, not of the
    whole workload, is the reference."""
    lat = np.asarray(latencies, dtype=np.float64)
    finite = np.isfinite(lat)
    if not finite.any():
        return np.zeros(len(lat), dtype=np.float32)
    best = lat[finite].min()
    return np.where(finite, best / np.where(finite, lat, 1.0), 0.0).astype(np.float32)


def make_shots(
    predictor: Predictor,
    batcher: PackedBatcher,
    groups: Sequence[np.ndarray],
    latencies: np.ndarray,
) -> Shots:
    """Gather ``groups`` (candidate indices per workload) into one normalised batch."""
    flat = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups])
    values, offsets = batcher.gather(flat)
    width = max(len(g) for g in groups)
    labels = torch.zeros((len(groups), width))
    mask = torch.zeros((len(groups), width), dtype=torch.bool)
    for row, g in enumerate(groups):
        labels[row, : len(g)] = torch.from_numpy(within_labels(latencies[g]))
        mask[row, : len(g)] = True
    n = len(flat)
    counts = offsets[1:] - offsets[:-1]
    segment_ids = torch.repeat_interleave(torch.arange(n), counts)
    normed = (values - predictor.mean) / predictor.std
    return Shots(normed, segment_ids, n, labels, mask)


def detached_params(model: torch.nn.Module) -> Params:
    """A copy of the module's parameters as a plain dict (the inner loop's starting point)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def functional_scores(model: torch.nn.Module, params: Params, shots: Shots) -> torch.Tensor:
    """Scores of ``shots`` under ``params`` (the module's own parameters are not used)."""
    return functional_call(model, params, (shots.values, shots.segment_ids, shots.n))


def shots_loss(model: torch.nn.Module, params: Params, shots: Shots, loss: str) -> torch.Tensor:
    scores = functional_scores(model, params, shots)
    padded = scores.new_zeros(shots.mask.shape)
    padded = padded.masked_scatter(shots.mask, scores)
    return LOSSES[loss](padded, shots.labels, shots.mask)


def inner_loop(
    model: torch.nn.Module,
    params: Params,
    support: Shots,
    *,
    lr: float,
    steps: int,
    loss: str,
    first_order: bool = True,
) -> Params:
    """``steps`` SGD steps of ``loss`` on ``support``, functionally; returns new parameters.

    ``params`` is not modified. With ``first_order`` every step starts from detached leaves
    (FOMAML, Reptile, plain fine-tuning); otherwise the graph through the steps is kept so
    the query loss can be differentiated with respect to ``params`` (MAML).
    """
    fast = {
        name: (p.detach().requires_grad_(True) if first_order else p) for name, p in params.items()
    }
    for _ in range(steps):
        value = shots_loss(model, fast, support, loss)
        grads = torch.autograd.grad(
            value, list(fast.values()), create_graph=not first_order, allow_unused=True
        )
        new: Params = {}
        for (name, p), g in zip(fast.items(), grads, strict=True):
            q = p if g is None else p - lr * g
            new[name] = q.detach().requires_grad_(True) if first_order else q
        fast = new
    return fast


# --------------------------------------------------------------------------- tasks


class TaskPool:
    """The workloads of a :class:`RankingData` as few-shot tasks (fixed normaliser)."""

    def __init__(self, data: RankingData, predictor: Predictor, min_successful: int = 2) -> None:
        self.data = data
        self.predictor = predictor
        self.batcher = PackedBatcher(data.features)
        ok = data.successful()
        self.members = [m for m in data.group_members() if int(ok[m].sum()) >= min_successful]
        self.groups = [int(data.groups[m[0]]) for m in self.members]

    def __len__(self) -> int:
        return len(self.members)

    def shots(self, groups: Sequence[np.ndarray]) -> Shots:
        return make_shots(self.predictor, self.batcher, groups, self.data.latencies)

    def split(
        self, task: int, k: int, rng: np.random.Generator, query_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random support of ``k`` candidates and the query (the rest, or a sample)."""
        m = self.members[task]
        perm = rng.permutation(m)
        support, rest = perm[:k], perm[k:]
        if query_size is not None and len(rest) > query_size:
            rest = rest[:query_size]
        return np.sort(support), np.sort(rest)


def _task_seed(seed: int, workload_id: str, k: int, draw: int) -> np.random.Generator:
    """The same support for one (workload, K, draw) whichever method is evaluated."""
    return np.random.default_rng([seed, zlib.crc32(workload_id.encode()), k, draw])


# ----------------------------------------------------------------------- evaluation


def few_shot_eval(
    start: Predictor | Callable[[int], Predictor],
    data: RankingData,
    *,
    k: int,
    draws: int,
    steps: int,
    lr: float,
    loss: str = "lambdarank",
    seed: int = 0,
    min_query: int = 2,
) -> dict[str, Any]:
    """Adapt on K random candidates of each workload, rank the rest; repeat ``draws`` times.

    ``start`` is the predictor every adaptation begins from, or ``draw -> predictor`` (for
    training from scratch with a fresh initialisation per draw); it is never modified.
    Workloads with fewer than ``k + min_query`` candidates are skipped. Metrics (top-1,
    top-5, pairwise accuracy, ...) are computed per draw over the successful query
    candidates of all workloads (task-weighted), then summarised as mean and std over draws.
    """
    per_draw: list[dict[str, float]] = []
    for draw in range(draws):
        predictor = start(draw) if callable(start) else start
        if predictor.feature_version != data.features.feature_version:
            raise PredictorFormatError(
                f"the predictor reads {predictor.feature_version!r} features, the data holds "
                f"{data.features.feature_version!r}; load the data with feature_version="
                f"{predictor.feature_version!r}"
            )
        model = predictor.model
        pool = TaskPool(data, predictor)
        params = detached_params(model)
        lat_all, scores_all, groups_all = [], [], []
        for t, members in enumerate(pool.members):
            if len(members) < k + min_query:
                continue
            wid = data.group_ids[pool.groups[t]]
            support, query = pool.split(t, k, _task_seed(seed, wid, k, draw))
            fast = params
            if k > 0 and steps > 0:
                model.train()
                fast = inner_loop(
                    model, params, pool.shots([support]), lr=lr, steps=steps, loss=loss
                )
            model.eval()
            with torch.no_grad():
                scores = functional_scores(model, fast, pool.shots([query])).numpy()
            ok = np.isfinite(data.latencies[query])
            lat_all.append(data.latencies[query][ok])
            scores_all.append(scores[ok])
            groups_all += [wid] * int(ok.sum())
        if not groups_all:
            raise ValueError(f"no workload has {k} + {min_query} candidates to evaluate on")
        weights = dict(zip(data.group_ids, data.group_weights.tolist(), strict=True))
        lat_cat, scores_cat = np.concatenate(lat_all), np.concatenate(scores_all)
        if np.isfinite(scores_cat).all():
            metrics = evaluate_ranking(lat_cat, scores_cat, groups_all, weights)
        else:  # a diverged adaptation: NaN metrics (the worst in selection), not a crash
            keys = evaluate_ranking(lat_cat, np.zeros_like(scores_cat), groups_all, weights)
            metrics = {key: float("nan") for key in keys}
        per_draw.append({key: float(v) for key, v in metrics.items()})
    return summarise_draws(per_draw)


def summarise_draws(per_draw: list[dict[str, float]]) -> dict[str, Any]:
    """``{metric: {"mean", "std", "draws"}}`` over support draws (std with ddof=0)."""
    out: dict[str, Any] = {}
    for key in per_draw[0]:
        values = np.array([d[key] for d in per_draw], dtype=np.float64)
        out[key] = {
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
            "draws": values.tolist(),
        }
    return out


def selection_score(summary: dict[str, Any]) -> tuple[float, float]:
    """Few-shot top-1 (mean over draws), ties broken by pairwise accuracy; NaN is worst."""

    def clean(x: float) -> float:
        return -math.inf if not math.isfinite(x) else x

    return clean(summary["top1_score"]["mean"]), clean(summary["pairwise_accuracy"]["mean"])


# -------------------------------------------------------------------- meta-training


def meta_train(
    train: RankingData,
    validation: RankingData,
    config: MetaConfig,
    *,
    target_key: str,
    start_from: Predictor | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Predictor, dict[str, Any]]:
    """Meta-train an initialisation on ``train``'s workloads; keep the one with the best
    few-shot top-1 on ``validation`` (support of ``support_k``, adapted as saved).

    From scratch, the normaliser is fitted on the meta-training stores, like a predictor's.
    ``start_from`` (a pretrained predictor of ``config.arch``) starts from its weights and
    normaliser instead: a random start spends the meta-training budget relearning what the
    pretrained ranking already knows, and with a few thousand outer steps it ends below
    the pretrained predictor before any adaptation. Step 0 (the predictor itself) is a
    candidate of the validation selection, so the result is never worse on validation.
    """
    from tunezoo.models import build_model, with_input_dim  # noqa: PLC0415

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    if start_from is None:
        mean, std = fit_normalizer(train.features.values)
        arch_config = with_input_dim(config.arch, config.arch_config, train.features.dim)
        model = build_model(config.arch, arch_config)
    else:
        if start_from.arch != config.arch:
            raise ValueError(
                f"start_from is a {start_from.arch} predictor but the meta config asks for "
                f"{config.arch}; pass --arch {start_from.arch}"
            )
        if start_from.feature_version != train.features.feature_version:
            raise FeatureVersionError(
                f"start_from was trained on features {start_from.feature_version!r}, the "
                f"meta-training data are {train.features.feature_version!r}"
            )
        mean, std = start_from.mean.detach().clone(), start_from.std.detach().clone()
        model = copy.deepcopy(start_from.model)
    predictor = Predictor(model, mean, std, target_key, train.features.feature_version)
    pool = TaskPool(train, predictor, min_successful=config.min_candidates)
    if not len(pool):
        raise ValueError(
            f"no training workload has {config.min_candidates} successful candidates; "
            "collect more records or lower min_candidates"
        )
    log(f"meta-training {config.algorithm} {config.arch} on {len(pool)} workloads")
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.meta_lr, weight_decay=config.weight_decay
    )
    names = [n for n, _ in model.named_parameters()]
    first_order = config.algorithm != "maml"

    def evaluate() -> dict[str, Any]:
        return few_shot_eval(
            predictor,
            validation,
            k=config.support_k,
            draws=config.eval_draws,
            steps=config.inner_steps,
            lr=config.inner_lr,
            loss=config.loss,
            seed=config.seed,
        )

    history: list[dict[str, Any]] = []
    best = evaluate()
    best_key, best_step = selection_score(best), 0
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    history.append(_history_entry(0, math.nan, math.nan, best))
    log(_log_line(history[-1]))
    t0, bad = time.time(), 0
    pre, post = [], []
    for step in range(1, config.meta_steps + 1):
        model.train()
        theta = dict(model.named_parameters())
        meta_grads = {n: torch.zeros_like(p) for n, p in theta.items()}
        for task in rng.choice(len(pool), size=config.meta_batch, replace=True):
            k = min(config.support_k, len(pool.members[int(task)]) // 2)
            support, query = pool.split(int(task), k, rng, config.query_size)
            s_shots, q_shots = pool.shots([support]), pool.shots([query])
            start = {n: p.detach() for n, p in theta.items()} if first_order else theta
            fast = inner_loop(
                model,
                start,
                s_shots,
                lr=config.inner_lr,
                steps=config.inner_steps,
                loss=config.loss,
                first_order=first_order,
            )
            q_loss = shots_loss(model, fast, q_shots, config.loss)
            if config.algorithm == "fomaml":
                grads = torch.autograd.grad(q_loss, [fast[n] for n in names], allow_unused=True)
            elif config.algorithm == "maml":
                grads = torch.autograd.grad(q_loss, [theta[n] for n in names], allow_unused=True)
            else:  # reptile: move the initialisation towards the adapted weights
                grads = tuple((theta[n] - fast[n]).detach() for n in names)
            for n, g in zip(names, grads, strict=True):
                if g is not None:
                    meta_grads[n] += g.detach() / config.meta_batch
            post.append(float(q_loss.detach()))
            with torch.no_grad():  # the same query, un-adapted: what the inner loop bought
                pre.append(float(shots_loss(model, start, q_shots, config.loss)))
        optimizer.zero_grad()
        for n, p in theta.items():
            p.grad = meta_grads[n]
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if step % config.eval_every == 0 or step == config.meta_steps:
            metrics = evaluate()
            entry = _history_entry(step, float(np.mean(post)), _mean(pre), metrics)
            entry["seconds"] = round(time.time() - t0, 1)
            history.append(entry)
            log(_log_line(entry))
            pre, post = [], []
            if selection_score(metrics) > best_key:
                best, best_key, best_step, bad = metrics, selection_score(metrics), step, 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
                if config.patience and bad >= config.patience:
                    break
    model.load_state_dict(best_state)
    model.eval()
    predictor.metadata = {
        META_KEY: config.meta_fields(),
        "meta_config": asdict(config),
        "best_step": best_step,
        # config.json must stay strict JSON: an undefined metric is null, not NaN
        "best_validation": {
            k: (v["mean"] if math.isfinite(v["mean"]) else None) for k, v in best.items()
        },
        "steps_run": history[-1]["step"],
        "train_seconds": round(time.time() - t0, 1),
        "train_workloads": len(pool),
        "started_from": "random" if start_from is None else "pretrained predictor",
    }
    return predictor, {"history": history, "best_step": best_step, "validation": best}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _history_entry(step: int, query_loss: float, pre_loss: float, metrics: dict) -> dict:
    return {
        "step": step,
        "query_loss_adapted": query_loss,
        "query_loss_unadapted": pre_loss,
        "val_top1": metrics["top1_score"]["mean"],
        "val_top5": metrics["top5_score"]["mean"],
        "val_pairwise": metrics["pairwise_accuracy"]["mean"],
    }


def _log_line(e: dict) -> str:
    return (
        f"step {e['step']:4d} query loss {e['query_loss_unadapted']:.4f} -> "
        f"{e['query_loss_adapted']:.4f}  val few-shot top1 {e['val_top1']:.4f} "
        f"top5 {e['val_top5']:.4f} pairwise {e['val_pairwise']:.4f}"
    )


# ------------------------------------------------------------------- load and adapt


def is_meta_init(predictor: Predictor) -> bool:
    return isinstance(predictor.metadata.get(META_KEY), dict)


def load_init(
    target_or_dir: str | Path,
    *,
    arch: str | None = None,
    artifacts_dir: str | Path | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    catalog: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> Predictor:
    """Load a meta-initialisation.

    ``target_or_dir`` is a folder (a :class:`~pathlib.Path`, or a string ``local-dir:PATH``),
    a meta-init name (``score-blend.meta-llvm-x86``, ``name@revision``) or a target key
    (``llvm-znver4``, which means ``<arch>.meta-<its family>``: the given ``arch``, or else
    the family's meta-init that is bundled, or else published, first by name). Names resolve like
    predictors: the bundled artifacts (``tunezoo/artifacts/`` or ``$TUNEZOO_ARTIFACTS_DIR``)
    unless a revision is asked for, then the catalog, downloaded from the Hub at its pinned
    revision with sha256 checks (``local_files_only``: from the cache only). A bare string
    is never guessed to be a path.
    """
    from tunezoo import catalog as cat  # noqa: PLC0415
    from tunezoo.loading import artifacts_dir as _artifacts_dir  # noqa: PLC0415
    from tunezoo.loading import verify_bundled  # noqa: PLC0415
    from tunezoo.targets import UnknownTargetError, get_target  # noqa: PLC0415

    source: dict[str, Any] = {"source": "local-dir"}
    if isinstance(target_or_dir, Path):
        folder = target_or_dir
    elif target_or_dir.startswith("local-dir:"):
        folder = Path(target_or_dir[len("local-dir:") :])
    else:
        name, from_name = cat.split_revision(target_or_dir)
        if revision and from_name and revision != from_name:
            raise ValueError(f"two revisions given: {target_or_dir!r} and revision={revision!r}")
        revision = revision or from_name
        try:
            kind = cat.parse_name(name)["kind"]
        except cat.CatalogError:
            kind = None
        published = {a.name: a for a in cat.load_catalog(catalog).list("meta-init")}
        if kind != "meta-init":
            try:
                family = get_target(name).family
            except UnknownTargetError as exc:
                raise UnknownTargetError(
                    f"{name!r} is neither a meta-init name ('<arch>.meta-<family>') nor a "
                    f"target key ({exc}). For a folder pass pathlib.Path({name!r}) or "
                    f"'local-dir:{name}'."
                ) from None
            name = _meta_init_name(family, arch, _artifacts_dir(artifacts_dir), published)
        folder = _artifacts_dir(artifacts_dir) / name
        if name in published and (revision is not None or not folder.is_dir()):
            from tunezoo import hub  # noqa: PLC0415 - the Hub client only when it is needed

            folder = hub.download_artifact(
                published[name],
                revision=revision,
                local_files_only=local_files_only,
                cache_dir=cache_dir,
            )
            source = {"source": "hub", "revision": revision or published[name].revision}
        elif folder.is_dir() and revision is None:
            # like a bundled predictor: the installed files must be the ones the catalog pins
            verify_bundled(folder, published.get(name))
            entry = published.get(name)
            source = {"source": "bundled", "revision": entry.revision if entry else None}
        else:
            where = "published in the catalog" if revision is not None else "bundled"
            raise cat.UnknownArtifactError(
                f"no meta-initialisation {name!r} {where} (looked in {folder.parent} and the "
                "catalog). Train one: python scripts/train_meta.py --dataset data/<target> "
                f"--out {folder}"
            )
    predictor = Predictor.load(folder)
    if not is_meta_init(predictor):
        raise NotAMetaInitError(
            f"{folder} is a predictor, not a meta-initialisation (its config has no "
            f"metadata.{META_KEY}); adapt it with explicit steps= and lr=, or train a "
            "meta-init with scripts/train_meta.py"
        )
    if source["source"] != "local-dir":  # a folder the caller named needs no provenance
        predictor.metadata["tunezoo_source"] = {"name": name, "path": str(folder), **source}
    return predictor


def _meta_init_name(family: str, arch: str | None, bundled_dir: Path, published) -> str:
    """``<arch>.meta-<family>``; without ``arch``, the family's bundled meta-init, else its
    published one (first by name), else the default architecture's name (for the error)."""
    if arch is not None:
        return f"{arch}.meta-{family}"
    suffix = f".meta-{family}"
    bundled = sorted(
        p.name for p in bundled_dir.glob(f"*{suffix}") if (p / "config.json").is_file()
    )
    return (
        bundled or sorted(n for n in published if n.endswith(suffix)) or [f"segsum-mlp{suffix}"]
    )[0]


def adapt(
    init: Predictor,
    data: RankingData | pa.Table,
    *,
    workloads: pa.Table | None = None,
    steps: int | None = None,
    lr: float | None = None,
    loss: str | None = None,
    cache_dir: str | Path | None = None,
) -> Predictor:
    """A fine-tuned copy of ``init`` on measured candidates (``init`` is not modified).

    ``data`` is a :class:`RankingData` or a records table (with ``workloads``, the table of
    their workloads, for the features; latencies are the median of repeats, see
    :func:`tunezoo.training.robust_latencies`). Labels are normalised throughput within
    the given candidates of each workload (all of them in one full-batch step, as in the
    inner loop). ``steps``/``lr``/``loss`` default to the ones
    the meta-initialisation was trained with; a plain predictor needs them given.
    """
    meta = init.metadata.get(META_KEY) or {}
    steps = meta.get("inner_steps") if steps is None else steps
    lr = meta.get("inner_lr") if lr is None else lr
    loss = meta.get("loss", "lambdarank") if loss is None else loss
    if steps is None or lr is None:
        raise ValueError(
            "init is not a meta-initialisation (no saved inner_lr/inner_steps): pass steps= and lr="
        )
    if isinstance(data, pa.Table):
        if workloads is None:
            raise ValueError("adapting on a records table needs workloads= (for the features)")
        data = ranking_data_from_tables(
            data, workloads, min_candidates=2, cache_dir=cache_dir, progress=False
        )
    if data.features.feature_version != init.feature_version:
        raise PredictorFormatError(
            f"features are {data.features.feature_version!r}, the initialisation was trained "
            f"on {init.feature_version!r}"
        )
    out = init.copy()
    pool = TaskPool(data, out)
    out.metadata["adapted"] = {
        "steps": steps,
        "lr": lr,
        "loss": loss,
        "workloads": len(pool),
        "candidates": int(sum(len(m) for m in pool.members)),
    }
    if not len(pool) or steps == 0:
        return out
    out.model.train()
    fast = inner_loop(
        out.model,
        detached_params(out.model),
        pool.shots(pool.members),
        lr=lr,
        steps=steps,
        loss=loss,
    )
    out.model.load_state_dict({**out.model.state_dict(), **fast})
    out.model.eval()
    return out


__all__ = [
    "ALGORITHMS",
    "META_KEY",
    "MetaConfig",
    "NotAMetaInitError",
    "Shots",
    "TaskPool",
    "adapt",
    "few_shot_eval",
    "functional_scores",
    "inner_loop",
    "is_meta_init",
    "load_init",
    "meta_train",
    "selection_score",
    "shots_loss",
    "within_labels",
]
