"""``load_predictor``: a target key or artifact name in, a MetaSchedule cost model out.

Resolution, first match wins:

1. A predictor bundled with the package (``tunezoo/artifacts/<arch>.<target>/`` holding
   ``config.json`` + ``model.safetensors``; ``$TUNEZOO_ARTIFACTS_DIR`` or ``artifacts_dir=``
   point elsewhere). Bundled files are checked against the catalog's sha256 pins when the
   catalog lists the artifact; without an entry they are trusted as part of the installed
   package (nothing else could have put them there).
2. The catalog: the artifact is downloaded (or found in the Hub cache) at its pinned
   revision and checked by sha256 in :mod:`tunezoo.hub`.

A target key means its per-store predictor (the best ranker) when it has one; a target
with no predictor of its own gets the predictor of the nearest CPU target of its family
(:func:`tunezoo.targets.nearest_in_family`) with a warning, unless ``strict=True``.
``name@revision`` picks a revision. ``screen=True`` puts the trace-token predictor of
that predictor's target in front of it. Every error says what exists and what to run.

This module needs TVM only to build the cost model (``load_predictor``);
``list_predictors`` and ``load_predictor_artifact`` do not import it.
"""

from __future__ import annotations

import difflib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunezoo import catalog as cat
from tunezoo.feature_kinds import PER_STORE, TRACE
from tunezoo.predictor import CONFIG_FILE, WEIGHTS_FILE, Predictor, PredictorFormatError
from tunezoo.predictor import sha256_file as _sha256_file
from tunezoo.targets import KEY_PATTERN, UnknownTargetError, get_target, nearest_in_family
from tunezoo.targets import list_targets as _list_targets

if TYPE_CHECKING:
    from tunezoo.cascade_cost_model import CascadeCostModel
    from tunezoo.cost_model import TunezooCostModel
    from tunezoo.hybrid_cost_model import HybridCostModel
    from tunezoo.meta_cost_model import MetaAdaptiveCostModel

ARTIFACTS_ENV = "TUNEZOO_ARTIFACTS_DIR"
PACKAGE_ARTIFACTS = Path(__file__).with_name("artifacts")


class NoPredictorError(cat.UnknownArtifactError):
    """A known target with no usable predictor (none in its family, or ``strict=True``)."""


class BundledArtifactError(PredictorFormatError):
    """A bundled predictor whose files are not the ones the catalog pins."""


class FallbackPredictorWarning(UserWarning):
    """A target has no predictor of its own; a sibling target's predictor is used."""


@dataclass(frozen=True)
class ResolvedPredictor:
    """Where a request was resolved to, before anything is loaded or downloaded.

    ``source`` is ``bundled`` (``path`` is the folder) or ``hub`` (``artifact`` is the
    catalog entry). ``fallback_from`` is the target that asked, when a sibling was used.
    """

    name: str
    source: str
    revision: str | None
    path: Path | None = None
    artifact: cat.Artifact | None = None
    fallback_from: str | None = None


# ---------------------------------------------------------------------------- discovery


def artifacts_dir(override: str | Path | None = None) -> Path:
    """The bundled-artifact folder: ``override``, ``$TUNEZOO_ARTIFACTS_DIR`` or the package's."""
    if override is not None:
        return Path(override)
    env = os.environ.get(ARTIFACTS_ENV)
    return Path(env) if env else PACKAGE_ARTIFACTS


def bundled_predictors(directory: str | Path | None = None) -> dict[str, Path]:
    """``{name: folder}`` of bundled predictors (folders ``<arch>.<target>`` with a config)."""
    root = artifacts_dir(directory)
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for config in sorted(root.glob(f"*/{CONFIG_FILE}")):
        name = config.parent.name
        try:
            if cat.parse_name(name)["kind"] != "predictor":
                continue
        except cat.CatalogError:
            continue  # not an artifact folder (e.g. a stray directory): not ours to load
        found[name] = config.parent
    return found


def list_predictors(
    *, artifacts_dir: str | Path | None = None, catalog: str | Path | cat.Catalog | None = None
) -> list[str]:
    """Every predictor name ``load_predictor`` can load: bundled and catalog, sorted."""
    names = set(bundled_predictors(artifacts_dir))
    names.update(a.name for a in cat.load_catalog(catalog).list("predictor"))
    return sorted(names)


def list_targets() -> list[str]:
    """All known target keys (:func:`tunezoo.targets.list_targets`)."""
    return _list_targets()


# --------------------------------------------------------------------------- resolution


def resolve_predictor(
    target_or_name: str,
    *,
    revision: str | None = None,
    strict: bool = False,
    artifacts_dir: str | Path | None = None,
    catalog: str | Path | cat.Catalog | None = None,
) -> ResolvedPredictor:
    """Decide which predictor a request means and where it comes from (no download)."""
    name, from_name = cat.split_revision(target_or_name)
    if revision and from_name and revision != from_name:
        raise ValueError(f"two revisions given: {target_or_name!r} and revision={revision!r}")
    rev = from_name or revision
    bundled = bundled_predictors(artifacts_dir)
    table = cat.load_catalog(catalog)
    published = {a.name: a for a in table.list("predictor")}

    def by_name(n: str, fallback_from: str | None = None) -> ResolvedPredictor:
        entry = published.get(n)
        if n in bundled and (rev is None or (entry is not None and rev == entry.revision)):
            return ResolvedPredictor(n, "bundled", rev, bundled[n], entry, fallback_from)
        if entry is not None:
            return ResolvedPredictor(n, "hub", rev or entry.revision, None, entry, fallback_from)
        raise cat.UnknownArtifactError(
            f"{n!r} is bundled with tunezoo but not published in the catalog "
            f"({table.path}), so revision {rev!r} cannot be fetched; leave out '@{rev}' to "
            "use the bundled files."
        )

    if name in bundled or name in published:
        return by_name(name)
    targets: dict[str, list[str]] = {}
    # resolution order: per-store predictors first (the better rankers), bundled first
    ordered = [*sorted(bundled), *sorted(n for n in published if n not in bundled)]
    ordered.sort(key=lambda n: _feature_version(n, bundled, published) != PER_STORE.version)
    for n in ordered:
        targets.setdefault(str(cat.parse_name(n)["target"]), []).append(n)
    if name in targets:
        return by_name(targets[name][0])
    known = sorted(set(bundled) | set(published))
    if not KEY_PATTERN.match(name):
        raise cat.UnknownArtifactError(_unknown(name, known))
    try:
        spec = get_target(name)
    except UnknownTargetError:
        raise cat.UnknownArtifactError(_unknown(name, known)) from None
    nearest = None
    if spec.family.startswith("llvm"):  # CPUs of one ISA family share features; GPUs do not
        nearest = nearest_in_family(name, sorted(targets))
    have = ", ".join(known) or "none"
    if nearest is None:
        raise NoPredictorError(
            f"No predictor for target {name!r} (family {spec.family}) and none of its family "
            f"to fall back on. Available predictors: {have}. Train one with `tunezoo train`, "
            "or tune with predictor='none' (MetaSchedule's XGBoost model)."
        )
    chosen = targets[nearest][0]
    if strict:
        raise NoPredictorError(
            f"No predictor for target {name!r} (strict=True). The nearest of its family is "
            f"{chosen!r} (target {nearest!r}); load it by name to use it. Available: {have}."
        )
    warnings.warn(
        FallbackPredictorWarning(
            f"No predictor for target {name!r}; using {chosen!r}, trained on {nearest!r} "
            f"(the closest {spec.family} target). Pass strict=True to refuse instead."
        ),
        stacklevel=3,
    )
    return by_name(chosen, fallback_from=name)


def _feature_version(name: str, bundled: dict[str, Path], published: dict[str, Any]) -> str:
    """The feature version a predictor reads, from its config (bundled) or catalog entry."""
    if name in bundled:
        try:
            config = json.loads((bundled[name] / CONFIG_FILE).read_text())
        except (OSError, ValueError):
            return ""  # unreadable: loading it will say why
        return str(config.get("feature_version", ""))
    entry = published.get(name)
    return str(entry.feature_version) if entry is not None else ""


def screen_for(
    ranker_name: str,
    *,
    artifacts_dir: str | Path | None = None,
    catalog: str | Path | cat.Catalog | None = None,
) -> str:
    """The trace-token predictor of ``ranker_name``'s target (bundled first), to screen
    candidates for it (``screen=True``); a target without one is an error that says
    how to make one."""
    target = str(cat.parse_name(cat.split_revision(ranker_name)[0])["target"])
    bundled = bundled_predictors(artifacts_dir)
    published = {a.name: a for a in cat.load_catalog(catalog).list("predictor")}
    for n in [*sorted(bundled), *sorted(published)]:
        if (
            str(cat.parse_name(n)["target"]) == target
            and _feature_version(n, bundled, published) == TRACE.version
        ):
            return n
    raise NoPredictorError(
        f"no trace-token predictor for target {target!r} to screen with (screen=True). "
        f"Train one: tunezoo train --features trace --dataset data/{target} --target {target}"
        " --out DIR, or tune without screen."
    )


def _unknown(name: str, known: list[str]) -> str:
    targets = _list_targets()
    close = difflib.get_close_matches(name, known + targets, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"Unknown target or predictor {name!r}.{hint} Predictors: {', '.join(known) or 'none'}."
        f" Targets: {', '.join(targets)}."
    )


# ------------------------------------------------------------------------------ loading


def verify_bundled(path: Path, artifact: cat.Artifact | None) -> None:
    """Check a bundled folder against the catalog's pins (no entry: nothing to check).

    Only files the catalog pins are checked; the two a predictor needs must be present.
    """
    if artifact is None:
        return
    wrong = []
    for filename, pin in artifact.files.items():
        file = path / filename
        if not file.exists():
            if filename in (CONFIG_FILE, WEIGHTS_FILE):
                wrong.append(f"{filename}: missing")
            continue
        size = file.stat().st_size
        digest = _sha256_file(file)
        if (digest, size) != (pin.sha256, pin.size):
            wrong.append(
                f"{filename}: {size} bytes, sha256 {digest}; the catalog pins {pin.size} bytes, "
                f"sha256 {pin.sha256}"
            )
    if wrong:
        raise BundledArtifactError(
            f"the bundled {artifact.kind} {artifact.name} at {path} is not the published revision "
            f"{artifact.revision}:\n" + "\n".join(f"- {w}" for w in wrong) + "\nReinstall "
            f"tunezoo, or run: tunezoo download {artifact.name} (and load it by name)."
        )


def load_predictor_artifact(
    target_or_name: str,
    *,
    revision: str | None = None,
    local_files_only: bool = False,
    strict: bool = False,
    artifacts_dir: str | Path | None = None,
    catalog: str | Path | cat.Catalog | None = None,
    cache_dir: str | Path | None = None,
) -> Predictor:
    """The :class:`Predictor` ``load_predictor`` would wrap (checked, version-matched).

    ``predictor.metadata["tunezoo_source"]`` records which artifact it is and where it
    came from (bundled folder or Hub revision), so a tuning report can say.
    """
    where = resolve_predictor(
        target_or_name,
        revision=revision,
        strict=strict,
        artifacts_dir=artifacts_dir,
        catalog=catalog,
    )
    if where.source == "bundled":
        assert where.path is not None
        verify_bundled(where.path, where.artifact)
        folder = where.path
    else:
        from tunezoo import hub  # noqa: PLC0415 - the Hub client only when it is needed

        folder = hub.download_artifact(
            where.artifact,
            revision=where.revision,
            local_files_only=local_files_only,
            cache_dir=cache_dir,
            catalog=catalog,
        )
    predictor = Predictor.load(folder)
    predictor.metadata["tunezoo_source"] = {
        "name": where.name,
        "source": where.source,
        "path": str(folder),
        "revision": where.revision or (where.artifact.revision if where.artifact else None),
        "requested": target_or_name,
        "fallback_from": where.fallback_from,
    }
    return predictor


def load_predictor(
    target_or_name: str,
    *,
    revision: str | None = None,
    mode: str = "frozen",
    screen: bool | str = False,
    local_files_only: bool = False,
    strict: bool = False,
    artifacts_dir: str | Path | None = None,
    catalog: str | Path | cat.Catalog | None = None,
    cache_dir: str | Path | None = None,
    **adapt_kwargs: Any,
) -> TunezooCostModel | MetaAdaptiveCostModel | HybridCostModel | CascadeCostModel:
    """A MetaSchedule cost model for a target key (``llvm-znver4``) or a predictor name
    (``seed-ensemble.llvm-znver4``, ``name@revision``).

    ``mode`` is ``frozen`` (predict only), ``adaptive`` (few-shot updates during tuning;
    ``adapt_kwargs`` are :class:`tunezoo.cost_model.AdaptConfig` fields: steps, lr, ...)
    or ``meta-adaptive``: the target family's meta-initialisation (a target key or a
    ``<arch>.meta-<family>`` name, resolved by :func:`tunezoo.meta.load_init`),
    re-adapted per workload after every measured batch with the inner loop it was
    meta-trained for (:class:`tunezoo.meta_cost_model.MetaAdaptiveCostModel`), or
    ``hybrid``: that meta-adaptive model handing over to an online XGBoost model as each
    workload's measurements show it ranks as well (:class:`tunezoo.hybrid_cost_model.
    HybridCostModel`; its settings ``window``, ``min_online``, ``xgb_threads`` may be
    passed here too).
    ``screen``: put a trace-token predictor in front (``True``: the one of the target the
    per-store predictor resolves to; or its name), so that only the candidates it
    screens as the best get per-store features and the mode's model's score
    (:class:`tunezoo.cascade_cost_model.CascadeCostModel`; ``refine_fraction`` and
    ``min_refine`` may be passed here). Not for ``hybrid``, whose online XGBoost reads
    every candidate's per-store features.
    ``local_files_only`` never touches the network (like ``HF_HUB_OFFLINE=1``).
    """
    _check_mode_settings(mode, adapt_kwargs)
    cascade = {
        k: adapt_kwargs.pop(k) for k in ("refine_fraction", "min_refine") if k in adapt_kwargs
    }
    if cascade and not screen:
        raise ValueError(f"{sorted(cascade)} need screen=True (or a screen's name)")
    if screen and mode == "hybrid":
        raise ValueError(
            "mode='hybrid' cannot be screened: its online XGBoost reads the per-store "
            "features of every candidate; use screen with frozen, adaptive or meta-adaptive"
        )
    load = {
        "local_files_only": local_files_only,
        "artifacts_dir": artifacts_dir,
        "catalog": catalog,
        "cache_dir": cache_dir,
    }
    if mode in ("meta-adaptive", "hybrid"):
        from tunezoo.meta import load_init  # noqa: PLC0415
        from tunezoo.meta_cost_model import MetaAdaptiveCostModel  # noqa: PLC0415 - imports TVM

        init = load_init(target_or_name, revision=revision, **load)
        request, _ = cat.split_revision(target_or_name)
        try:
            named = cat.parse_name(request)["kind"] == "meta-init"
        except cat.CatalogError:
            named = False  # a target key
        name = request if named else f"{init.arch}.meta-{get_target(request).family}"
        init.metadata["tunezoo_source"] = {
            **init.metadata.get("tunezoo_source", {}),
            "name": name,
            "requested": target_or_name,
        }
        if mode == "hybrid":
            from tunezoo.hybrid_cost_model import hybrid_from_init  # noqa: PLC0415

            return hybrid_from_init(init, **adapt_kwargs)
        model: Any = MetaAdaptiveCostModel(init, **adapt_kwargs)
        if not screen:
            return model
        if screen is True and named:
            raise ValueError(
                f"{request} is a meta-initialisation of a whole family: name the screen "
                "(screen='<arch>-trace.<target>') or ask by target key"
            )
        per_store = "" if named else resolve_predictor(request, strict=strict, **_where(load)).name
    else:
        predictor = load_predictor_artifact(
            target_or_name, revision=revision, strict=strict, **load
        )
        from tunezoo.cost_model import TunezooCostModel  # noqa: PLC0415 - imports TVM

        model = TunezooCostModel(predictor, mode=mode, **adapt_kwargs)
        if not screen:
            return model
        per_store = predictor.metadata["tunezoo_source"]["name"]
    from tunezoo.cascade_cost_model import CascadeCostModel  # noqa: PLC0415 - imports TVM

    screen_name = screen if isinstance(screen, str) else screen_for(per_store, **_where(load))
    return CascadeCostModel(load_predictor_artifact(screen_name, **load), model, **cascade)


MODES = ("frozen", "adaptive", "meta-adaptive", "hybrid")


def _check_mode_settings(mode: str, settings: dict[str, Any]) -> None:
    """Refuse an unknown mode, or a setting its cost model does not take, before anything
    is loaded (and name what would be accepted)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {list(MODES)}")
    import dataclasses  # noqa: PLC0415

    from tunezoo.cost_model import AdaptConfig  # noqa: PLC0415 - imports TVM, as loading will
    from tunezoo.hybrid_cost_model import HYBRID_SETTINGS  # noqa: PLC0415

    meta = {"max_support", "feature_cache_size"}
    accepted = {
        "frozen": {f.name for f in dataclasses.fields(AdaptConfig)}
        | {"adapt", "feature_cache_size"},
        "meta-adaptive": meta,
        "hybrid": meta | set(HYBRID_SETTINGS),
    }
    accepted["adaptive"] = accepted["frozen"]
    cascade = {"refine_fraction", "min_refine"}
    unknown = sorted(set(settings) - accepted[mode] - cascade)
    if unknown:
        raise ValueError(
            f"mode {mode!r} takes no setting {unknown}; it takes {sorted(accepted[mode])}"
            + (f" and, with screen, {sorted(cascade)}" if mode != "hybrid" else "")
        )


def _where(load: dict[str, Any]) -> dict[str, Any]:
    """The arguments that say where artifacts are listed (for resolution, no download)."""
    return {k: load[k] for k in ("artifacts_dir", "catalog")}


__all__ = [
    "ARTIFACTS_ENV",
    "BundledArtifactError",
    "FallbackPredictorWarning",
    "NoPredictorError",
    "ResolvedPredictor",
    "artifacts_dir",
    "bundled_predictors",
    "list_predictors",
    "list_targets",
    "load_predictor",
    "load_predictor_artifact",
    "resolve_predictor",
    "screen_for",
    "verify_bundled",
]
