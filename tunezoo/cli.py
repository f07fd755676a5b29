"""The ``tunezoo`` command line: a thin layer over the library's modules.

Each subcommand parses its arguments and calls one library function; what it prints is
for people (``--json`` where a script wants the figures). Errors the user can fix are
printed as one line naming what to do, with exit status 2, and no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tunezoo.records import RecordsError, utc_time
from tunezoo.screening import REFINE_FRACTION
from tunezoo.targets import UnknownTargetError


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ----------------------------------------------------------------------------- targets


def cmd_targets(args: argparse.Namespace) -> int:
    from tunezoo.targets import detect_target, get_target, list_targets  # noqa: PLC0415

    local = detect_target()
    rows = []
    for key in list_targets():
        spec = get_target(key)
        tvm_target = spec.tvm_tag or json.dumps(spec.tvm_target_dict())
        rows.append(
            {
                "key": key,
                "family": spec.family,
                "tvm": tvm_target,
                "description": spec.description,
                "this_machine": key == local,
            }
        )
    if args.json:
        _print_json(rows)
        return 0
    width = max(len(r["key"]) for r in rows)
    for r in rows:
        mark = "*" if r["this_machine"] else " "
        print(f"{mark} {r['key']:<{width}}  {r['family']:<10}  {r['description']}")
    print(f"\n* this machine: {local}")
    return 0


# ----------------------------------------------------------------------------- records


def cmd_records_info(args: argparse.Namespace) -> int:
    from tunezoo.records import info  # noqa: PLC0415

    summary = info(args.path)
    if args.json:
        _print_json(summary)
        return 0
    print(f"dataset   {summary['path']}")
    print(
        f"records   {summary['records']}  (failed: {sum(summary['failed'].values())}"
        f" {summary['failed'] or ''}; duplicate ids: {summary['duplicate_record_ids']})"
    )
    print(f"workloads {summary['workloads']}  (with records: {summary['workloads_with_records']})")
    print(f"targets   {summary['targets']}")
    print(f"splits    {summary['splits']}  (records per split, by workload hash)")
    print(f"sampling  {summary['sampling']}")
    rpw = summary["records_per_workload"]
    print(f"per workload: min {rpw['min']}, median {rpw['median']}, max {rpw['max']}")
    print(
        "workloads by distinct successful candidates (rich >= 100, single schedule = a design"
        f" space of one): {summary['workloads_by_candidates']}"
    )
    print(f"models    {len(summary['models'])}")
    for model, count in summary["models"].items():
        print(f"  {model:<28} {count} records")
    return 0


def cmd_records_validate(args: argparse.Namespace) -> int:
    from tunezoo.records import validate  # noqa: PLC0415

    problems = validate(args.path)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in {args.path}", file=sys.stderr)
        return 1
    print(f"{args.path}: valid")
    return 0


def cmd_records_merge(args: argparse.Namespace) -> int:
    from tunezoo.records import merge  # noqa: PLC0415

    _print_json(merge(args.sources, args.out, force=args.force))
    return 0


def cmd_records_import(args: argparse.Namespace) -> int:
    from tunezoo.importer import DEVICE_OR_TARGET, import_any  # noqa: PLC0415
    from tunezoo.targets import get_target  # noqa: PLC0415

    if args.target is not None and args.device is not None:
        raise UsageError(DEVICE_OR_TARGET)
    if args.target is not None:
        get_target(args.target)  # unknown keys fail before any work
    result = import_any(
        args.db_dir,
        args.out,
        target_key=args.target,
        device=args.device,
        source=args.source,
        contributor=args.contributor,
        license=args.license,
        repo=args.repo,
        commit=args.commit,
        tvm_version=args.tvm_version,
        check_traces=not args.no_check,
        force=args.force,
    )
    _print_json(result.summary())
    refused = sum(len(r.rejected) for r in result.reports.values()) + result.set_aside
    if refused:
        where = ", ".join(result.rejected_files())
        print(f"{refused} record(s) refused; reasons in {where}", file=sys.stderr)
    if not any(r.records for r in result.reports.values()):
        print(f"nothing imported from {args.db_dir}", file=sys.stderr)
        return 1
    return 0


def cmd_records_export(args: argparse.Namespace) -> int:
    from tunezoo.convert import export_database  # noqa: PLC0415

    _print_json(export_database(args.path, args.out, force=args.force, target_key=args.target))
    return 0


# ----------------------------------------------------------------------------- collect


def cmd_collect(args: argparse.Namespace) -> int:
    from dataset_builders.collect import (  # noqa: PLC0415
        RPCSettings,
        check_machine_is_target,
        collect_tasks,
        interleave_by_model,
        load_or_extract_tasks,
        summary_text,
    )
    from dataset_builders.sampling import SamplingPlan  # noqa: PLC0415
    from tunezoo.measure import MeasureSettings  # noqa: PLC0415
    from tunezoo.targets import get_target  # noqa: PLC0415

    spec = get_target(args.target)
    if not args.rpc_tracker and not args.allow_other_machine:  # before extracting any task
        check_machine_is_target(args.target, spec.family)
    n_random = args.candidates // 2 if args.random is None else args.random
    plan = SamplingPlan(
        n_random=n_random,
        n_evolutionary=args.candidates - n_random,
        batch=args.batch,
        seed=args.seed,
    )
    settings = MeasureSettings(
        number=args.number,
        repeat=args.repeat,
        min_repeat_ms=args.min_repeat_ms,
        runner="rpc" if args.rpc_tracker else "local",
        cpu_affinity=args.cpu_affinity,
    )
    rpc = None
    if args.rpc_tracker:
        host, _, port = args.rpc_tracker.rpartition(":")
        rpc = RPCSettings(host or "127.0.0.1", int(port), args.rpc_key)
    target = spec.tvm_target(num_cores=args.num_cores)
    cache = Path(args.out) / ".task-cache"
    tasks = interleave_by_model(load_or_extract_tasks(args.models.split(","), target, cache))
    print(f"{len(tasks)} distinct workloads from {args.models}", file=sys.stderr)
    summary = collect_tasks(
        tasks,
        target_key=args.target,
        out_dir=args.out,
        plan=plan,
        settings=settings,
        num_cores=args.num_cores,
        rpc=rpc,
        max_tasks=args.max_tasks,
        contributor=args.contributor,
        allow_other_machine=args.allow_other_machine,
    )
    print(summary_text(summary))
    return 0


# ------------------------------------------------------------------------ train, eval


def cmd_train(args: argparse.Namespace) -> int:
    from tunezoo.experiment import run_training  # noqa: PLC0415
    from tunezoo.feature_kinds import feature_kind  # noqa: PLC0415
    from tunezoo.training import TrainConfig  # noqa: PLC0415

    config = TrainConfig(
        arch_config=json.loads(args.arch_config) if args.arch_config else {},
        epochs=args.epochs,
        lr=args.lr,
        loss=args.loss,
        seed=args.seed,
        patience=args.patience,
        min_epochs=args.min_epochs,
        threads=args.threads,
    )
    metrics = run_training(
        args.dataset,
        args.out,
        target_key=args.target,
        archs=tuple(args.arch.split(",")),
        config=config,
        baselines=tuple(b for b in args.baselines.split(",") if b),
        workers=args.workers,
        until=args.until,
        ensemble=args.ensemble,
        blend_xgboost=args.blend_xgboost,
        feature_version=feature_kind(args.features).version,
    )
    print(f"saved {metrics['model']} predictor and metrics.json to {args.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from tunezoo.experiment import run_evaluation  # noqa: PLC0415

    stored = {}
    until = None
    if args.compare and args.screen:
        raise SystemExit(
            "--compare checks the predictor's own metrics.json, which is unscreened; "
            "drop --screen or --compare"
        )
    if args.compare or args.snapshot:  # the snapshot the predictor was evaluated on
        stored = json.loads((Path(args.predictor) / "metrics.json").read_text())
        if stored.get("data_until"):
            until = utc_time(stored["data_until"])
    metrics = run_evaluation(
        args.predictor,
        args.dataset,
        workers=args.workers,
        until=until,
        workloads=stored.get("data_workloads"),
        parts=tuple(p for p in args.parts.split(",") if p),
        screen_dir=args.screen,
        refine_fraction=args.refine_fraction,
    )
    _print_json(metrics)
    if args.compare:
        worst = max(
            abs(metrics[p][k] - stored[p][k])
            for p in metrics
            for k in metrics[p]
            if isinstance(metrics[p][k], float) and k in stored.get(p, {})
        )
        print(f"largest difference from the stored metrics.json: {worst:.2e}")
        return 0 if worst < 1e-4 else 1
    return 0


# ------------------------------------------------------------------------------ tune


def cmd_tune(args: argparse.Namespace) -> int:
    from tunezoo.targets import detect_target  # noqa: PLC0415
    from tunezoo.tuning import tune  # noqa: PLC0415

    adapt = {k: v for k, v in (("steps", args.adapt_steps), ("lr", args.adapt_lr)) if v is not None}
    if adapt and args.mode != "adaptive":
        raise UsageError("--adapt-steps and --adapt-lr apply to --mode adaptive only")
    if args.predictor == "none" and (args.mode != "frozen" or args.screen):
        raise UsageError(
            "--predictor none tunes with MetaSchedule's own XGBoost model, which has no "
            "--mode or --screen; drop them, or name a tunezoo predictor"
        )
    if args.mode == "hybrid" and args.screen:
        raise UsageError(
            "--mode hybrid cannot be screened (its online XGBoost reads every candidate's "
            "per-store features); use --screen with frozen, adaptive or meta-adaptive"
        )
    result = tune(
        args.what,
        target_key=args.target or detect_target(),
        trials=args.trials,
        predictor=args.predictor,
        work_dir=args.work_dir,
        num_trials_per_iter=args.trials_per_iter,
        seed=args.seed,
        mode=args.mode,
        progress=not args.quiet,
        num_cores=args.num_cores,
        population_size=args.population_size,
        screen=args.screen,
        **adapt,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if not args.quiet:
        return 0  # tune() has printed its summary line
    print(
        f"{args.what}: best latency {result.best_latency_s * 1e3:.4f} ms after "
        f"{result.trials} trials in {result.seconds:.0f} s (predictor: {result.predictor}, "
        f"cost model {100 * result.cost_model_fraction():.1f}% of the time); "
        f"database in {result.work_dir}"
    )
    return 0


def cmd_predictors(args: argparse.Namespace) -> int:
    from tunezoo.loading import list_predictors  # noqa: PLC0415

    for name in list_predictors():
        print(name)
    return 0


# ------------------------------------------------------------------------------- hub


def cmd_download(args: argparse.Namespace) -> int:
    import shutil  # noqa: PLC0415

    from tunezoo import catalog, hub  # noqa: PLC0415

    name, revision = catalog.split_revision(args.name)
    revision = revision or args.revision
    if args.dataset or name in catalog.load_catalog().names():
        artifact = catalog.resolve(name, kind="dataset" if args.dataset else "predictor")
    else:  # a target key: the predictor load_predictor would use, bundled ones included
        from tunezoo.loading import resolve_predictor  # noqa: PLC0415

        where = resolve_predictor(name, revision=revision)
        artifact = where.artifact
    if artifact is None:  # bundled and not published: the installed files are the artifact
        path, label = where.path, f"{where.name} (bundled predictor, nothing to download)"
    else:
        path = hub.download_artifact(
            artifact,
            revision=revision,
            local_files_only=args.local_files_only,
            force_download=args.force_download,
        )
        label = f"{artifact.name} ({artifact.kind})"
    if args.out:
        out = Path(args.out)
        if out.exists() and any(out.iterdir()) and not args.force:
            raise FileExistsError(f"{out} is not empty; pass --force to overwrite")
        shutil.copytree(path, out, dirs_exist_ok=True)
        path = out
    print(f"{label} -> {path}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from tunezoo import hub  # noqa: PLC0415

    if args.kind == "model":
        result = hub.publish_model(args.path, args.name, org=args.org)
    else:
        result = hub.publish_dataset(args.path, args.target, org=args.org)
    print(f"published {result.artifact.name} at {result.commit}: {result.commit_url}")
    print(f"catalog updated: {result.catalog_path}")
    return 0


def cmd_contribute(args: argparse.Namespace) -> int:
    from tunezoo import hub  # noqa: PLC0415
    from tunezoo.targets import get_target  # noqa: PLC0415

    get_target(args.target)
    result = hub.contribute(args.path, args.target, org=args.org, contributor=args.contributor)
    print(result.message)
    if result.pr_url:
        print(f"pull request: {result.pr_url}")
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunezoo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("targets", help="list target keys and detect this machine's")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_targets)

    rec = sub.add_parser("records", help="inspect, validate, merge, import, export records")
    rsub = rec.add_subparsers(dest="records_command", required=True)
    p = rsub.add_parser("info", help="counts per target, workload, model; failures")
    p.add_argument(
        "path", nargs="?", default=None, help="dataset directory (default: the bundled sample)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_records_info)
    p = rsub.add_parser("validate", help="report every problem in a dataset at once")
    p.add_argument("path")
    p.set_defaults(func=cmd_records_validate)
    p = rsub.add_parser("merge", help="merge datasets, deduplicating by record id")
    p.add_argument("sources", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_records_merge)
    p = rsub.add_parser("import", help="MetaSchedule database (any TVM era) -> Parquet shards")
    p.add_argument("db_dir", help="work_dir with the JSON (or SQLite) database files")
    p.add_argument(
        "--target",
        default=None,
        help="file every record under this key (default: derived per record, "
        "one sub-directory of --out per target)",
    )
    p.add_argument("--device", default=None, help="device name for derived keys: rtx3070")
    p.add_argument("--repo", default=None, help="provenance: source repository")
    p.add_argument("--commit", default=None, help="provenance: source commit")
    p.add_argument("--tvm-version", default=None, help="TVM version that wrote the database")
    p.add_argument("--out", required=True)
    p.add_argument("--source", default=None, help="provenance (default: the path)")
    p.add_argument("--contributor", default=None)
    p.add_argument("--license", default=None)
    p.add_argument("--no-check", action="store_true", help="skip replaying traces")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_records_import)
    p = rsub.add_parser("export", help="Parquet shards -> MetaSchedule JSON database")
    p.add_argument("path")
    p.add_argument("--out", required=True)
    p.add_argument("--target", default=None)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_records_export)

    p = sub.add_parser("collect", help="measure candidates of zoo models (resumable)")
    p.add_argument("--target", required=True)
    p.add_argument("--models", required=True, help="comma-separated zoo model names")
    p.add_argument("--candidates", type=int, default=128, help="per task")
    p.add_argument("--random", type=int, default=None, help="random samples (default half)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-cores", type=int, default=1)
    p.add_argument("--number", type=int, default=3)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--min-repeat-ms", type=int, default=40)
    p.add_argument("--cpu-affinity", default=None, help="recorded, e.g. '1' under taskset -c 1")
    p.add_argument("--rpc-tracker", default=None, help="HOST:PORT of a TVM RPC tracker")
    p.add_argument("--rpc-key", default="tunezoo")
    p.add_argument("--max-tasks", type=int, default=None)
    p.add_argument("--contributor", default=None)
    p.add_argument(
        "--allow-other-machine",
        action="store_true",
        help="measure locally even though this machine is not --target (refused otherwise)",
    )
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser(
        "train",
        help="train predictors and XGBoost baselines on a dataset "
        "(with --meta: a meta-initialisation; tunezoo train --meta --help)",
    )
    p.add_argument("--dataset", required=True, help="dataset directory, e.g. data/llvm-znver4")
    p.add_argument("--target", required=True)
    p.add_argument("--out", required=True, help="artifact directory")
    p.add_argument("--arch", default="segsum-mlp,store-attention")
    p.add_argument(
        "--arch-config",
        help="JSON of architecture settings for every --arch, e.g. '{\"hidden\": 64}' (trace "
        "tokens are many rows per candidate: a narrower MLP scores them as fast as stores)",
    )
    p.add_argument("--baselines", default="ms-xgb,xgb-packsum,xgb-rank")
    p.add_argument("--loss", default="lambdarank", choices=["lambdarank", "pairwise"])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument(
        "--min-epochs",
        type=int,
        default=10,
        help="epochs trained before one can be chosen on validation (a noisy validation "
        "split otherwise lets a barely trained early epoch win)",
    )
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ensemble",
        type=int,
        default=1,
        help="members per architecture (seeds --seed, --seed+1, ...); > 1 saves their mean "
        "as one seed-ensemble predictor, which does not depend on a lucky seed",
    )
    p.add_argument(
        "--blend-xgboost",
        action="store_true",
        help="also try each architecture blended with the ms-xgb baseline's trees (one "
        "score-blend predictor, weights from validation); validation decides which is saved",
    )
    p.add_argument(
        "--features",
        default="per-store",
        choices=["per-store", "trace"],
        help="what the predictors read: per-store (MetaSchedule's PerStoreFeature of the "
        "lowered program) or trace (tokens of the printed schedule trace, ~10x cheaper to "
        "compute while tuning); the XGBoost baselines always read per-store features",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="feature extraction processes")
    p.add_argument(
        "--until",
        type=utc_time,
        help="only workloads whose records were all measured by this ISO time (default: the "
        "dataset's newest record); several runs on one growing dataset then see the same data",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="recompute a predictor's metrics from the data")
    p.add_argument("predictor", help="predictor directory (config.json + model.safetensors)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--compare",
        action="store_true",
        help="compare with the predictor's metrics.json; exit 1 if they differ",
    )
    p.add_argument(
        "--parts",
        default="test,heldout",
        help="comma-separated: train, validation, test, heldout, or all (every workload: "
        "for a dataset of another target, to measure how well the predictor transfers)",
    )
    p.add_argument(
        "--snapshot",
        action="store_true",
        help="only the records and workloads its metrics.json was computed on (--compare "
        "implies it)",
    )
    p.add_argument(
        "--screen",
        metavar="TRACE_PREDICTOR",
        help="a trace-token predictor directory screening for PREDICTOR: the metrics of the "
        "cascade that tune --screen uses (each workload's candidates as one call)",
    )
    p.add_argument(
        "--refine-fraction",
        type=float,
        default=REFINE_FRACTION,
        help="with --screen: the share of each workload's candidates refined (default "
        f"{REFINE_FRACTION})",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "tune", help="tune a zoo model or named workload with a pretrained cost model"
    )
    p.add_argument(
        "what", help="zoo model (resnet18, ...) or workload (matmul-512, conv2d-resnet-3x3, ...)"
    )
    p.add_argument("--target", default=None, help="target key (default: this machine)")
    p.add_argument("--trials", type=int, default=256)
    p.add_argument(
        "--predictor", default="auto", help="auto | none (MetaSchedule's XGBoost) | NAME[@REV]"
    )
    p.add_argument(
        "--mode",
        choices=["frozen", "adaptive", "meta-adaptive", "hybrid"],
        default="frozen",
        help="frozen: predict only; adaptive: fine-tune the predictor on each measured batch; "
        "meta-adaptive: re-adapt the target family's meta-initialisation per workload; "
        "hybrid: meta-adaptive handing over to an online XGBoost as it proves itself",
    )
    p.add_argument(
        "--screen",
        nargs="?",
        const=True,
        default=False,
        metavar="NAME",
        help="screen candidates with a trace-token predictor (the target's, or NAME) and "
        "compute per-store features only for the best quarter: most of the cost model's "
        "time saved (frozen, adaptive, meta-adaptive)",
    )
    p.add_argument("--work-dir", default="tunezoo-tune", help="where the tuning database goes")
    p.add_argument("--trials-per-iter", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-cores", type=int, default=None)
    p.add_argument(
        "--population-size",
        type=int,
        default=None,
        help="evolutionary search population (MetaSchedule's default 512; smaller is faster)",
    )
    p.add_argument(
        "--adapt-steps", type=int, default=None, help="adaptive mode's steps per update (20)"
    )
    p.add_argument("--adapt-lr", type=float, default=None, help="adaptive mode's lr (1e-4)")
    p.add_argument("--json", default=None, help="write the result (history included) here")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("predictors", help="list the predictors (bundled and published)")
    p.set_defaults(func=cmd_predictors)

    p = sub.add_parser("download", help="fetch a predictor or dataset config (pinned, checked)")
    p.add_argument("name", help="artifact name[@revision] or a target key")
    p.add_argument("--dataset", action="store_true", help="the target's dataset config")
    p.add_argument("--revision", default=None)
    p.add_argument("--out", default=None, help="copy the files to this directory")
    p.add_argument("--local-files-only", action="store_true")
    p.add_argument("--force-download", action="store_true")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("publish", help="maintainers: push a model or dataset config")
    p.add_argument("kind", choices=["model", "dataset"])
    p.add_argument("path", help="artifact directory or dataset directory")
    p.add_argument("--name", help="artifact name, e.g. seed-ensemble.llvm-znver4 (models)")
    p.add_argument("--target", help="target key (datasets)")
    p.add_argument("--org", default=None)
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("contribute", help="open a pull request with your tuning records")
    p.add_argument("path", help="MetaSchedule work_dir or a directory of tunezoo shards")
    p.add_argument("--target", required=True)
    p.add_argument("--contributor", default=None)
    p.add_argument("--org", default=None)
    p.set_defaults(func=cmd_contribute)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"] and "--meta" in argv:
        # meta-training has its own options (algorithm, inner loop, ...): see --meta --help
        from tunezoo.meta_experiment import main as meta_main  # noqa: PLC0415

        return int(meta_main([a for a in argv[1:] if a != "--meta"]) or 0)
    args = build_parser().parse_args(argv)
    if getattr(args, "path", "x") is None:
        args.path = str(bundled_sample())
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"tunezoo: error: {exc}", file=sys.stderr)
        return 2


class UsageError(Exception):
    """Options that do not go together: said in one line, like argparse's own errors."""


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors the user can act on: one line, no traceback."""
    errors: list[type[BaseException]] = [
        UsageError,
        UnknownTargetError,
        RecordsError,
        FileExistsError,
        FileNotFoundError,
    ]
    if "tunezoo.hub" in sys.modules:
        from tunezoo.hub import HubError  # noqa: PLC0415

        errors.append(HubError)
    if "tunezoo.catalog" in sys.modules:
        from tunezoo.catalog import CatalogError, UnknownArtifactError  # noqa: PLC0415

        errors += [CatalogError, UnknownArtifactError]
    if "tunezoo.contribution" in sys.modules:
        from tunezoo.contribution import ContributionError  # noqa: PLC0415

        errors.append(ContributionError)
    if "dataset_builders.collect" in sys.modules:
        from dataset_builders.collect import MachineMismatchError  # noqa: PLC0415

        errors.append(MachineMismatchError)
    if "dataset_builders.zoo" in sys.modules:
        from dataset_builders.zoo import UnknownModelError  # noqa: PLC0415

        errors.append(UnknownModelError)
    if "tunezoo.predictor" in sys.modules:
        from tunezoo.predictor import PredictorFormatError  # noqa: PLC0415

        errors.append(PredictorFormatError)
    return tuple(errors)


def bundled_sample() -> Path:
    """The small sample dataset that ships inside the package."""
    return Path(__file__).parent / "samples" / "llvm-znver4"


if __name__ == "__main__":
    sys.exit(main())
