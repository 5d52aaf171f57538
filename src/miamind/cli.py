"""Command line: parses arguments, calls library functions, prints one-line errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .engine.config import PRESETS
from .tasks.registry import task_names


def _cmd_info(args) -> int:
    from . import __version__
    from .attention import list_attention
    from .data import check_all
    from .models import list_models

    print(f"miamind {__version__}")
    print("models:   ", ", ".join(list_models()))
    print("attention:", ", ".join(["none"] + list_attention()))
    print(f"presets:   {', '.join(PRESETS)} (miamind/presets/*.yaml)")
    print("datasets:")
    for name, rep in check_all(args.data_dir).items():
        where = rep.get("path", "") if rep["status"] == "ok" else rep.get("error", "")
        print(f"  {name:22s} {rep['status']:8s} {where}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(
        out=args.out,
        tasks=args.tasks,
        attention=args.attention,
        preset=args.preset,
        fetch=not args.no_fetch,
        assignments=args.set or [],
    )


def _cmd_layers(args) -> int:
    from .layer_tour import run_layer_tour

    return run_layer_tour()


def _flag_overrides(args) -> dict:
    """Explicit flags as dotted config keys; None means 'not given' (the preset decides)."""
    return {
        "seed": args.seed,
        "model.name": args.model,
        "model.attention": args.attention,
        "trainer.epochs": args.epochs,
        "trainer.devices": args.devices,
        "trainer.num_nodes": args.num_nodes,
        "trainer.strategy": args.strategy,
        "trainer.accelerator": args.accelerator,
        "trainer.precision": args.precision,
        "trainer.threads": args.threads,
        "data.batch_size": args.batch_size,
        "data.data_dir": args.data_dir,
        "optim.lr": args.lr,
    }


def _cmd_train(args) -> int:
    from .engine.config import resolve_config
    from .engine.train import train

    if args.resume is not None:
        given = [k for k, v in _flag_overrides(args).items() if v is not None] + (
            ["--set"] if args.set else []
        )
        if given or args.config or args.task or args.out:
            raise ValueError(
                "--resume RUN_DIR continues the run with its saved config.yaml; "
                f"drop the other options ({', '.join(given) or '--task/--out/--config'})"
            )
        train({}, args.resume, resume=True)
        return 0
    if args.task is None or args.out is None:
        raise ValueError("train needs --task and --out (or --resume RUN_DIR)")
    cfg = resolve_config(
        args.task,
        args.preset,
        config_file=args.config,
        overrides=_flag_overrides(args),
        assignments=args.set or [],
    )
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg, sort_keys=False), end="")
        return 0
    if args.backend == "mindspore":
        from .mindspore.train import train_mindspore

        train_mindspore(cfg, args.out, jit=not args.pynative)
        return 0
    train(cfg, args.out)
    return 0


def _cmd_baseline(args) -> int:
    from .engine.baselines import train_baseline
    from .engine.config import resolve_config

    cfg = resolve_config(
        args.task,
        args.preset,
        config_file=args.config,
        overrides={"seed": args.seed, "data.data_dir": args.data_dir, "model.attention": "none"},
        assignments=args.set or [],
    )
    train_baseline(cfg, args.model, args.out)
    return 0


def _cmd_study(args) -> int:
    from .study import load_study

    if args.study_command == "docs":
        from .study.docs_blocks import sync_docs

        changed = sync_docs(Path(args.root), check=args.check)
        for path in changed:
            print(f"{'differs from the results' if args.check else 'rewritten'}: {path}")
        return 1 if args.check and changed else 0
    study = load_study(args.study_file)
    if args.study_command == "run":
        from .study.runner import LocalExecutor, run_study

        if args.executor == "slurm":
            from .study.slurm import SlurmExecutor, load_executor_config

            executor = SlurmExecutor(load_executor_config(args.executor_config), threads=args.threads)
        else:
            if args.executor_config:
                raise ValueError("--executor-config is for --executor slurm")
            executor = LocalExecutor(args.jobs)
        env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else None
        outcome = run_study(
            study, runs_dir=args.runs_dir, only=args.only, env=env, executor=executor, detach=args.detach
        )
        return 1 if outcome["failed"] else 0
    if args.study_command == "status":
        from .study.runner import study_states

        rows = study_states(study, args.runs_dir)
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
            extra = "  ".join(
                f"{k} {row[k]}" for k in ("job_id", "attempts", "last_exit") if row[k] not in (None, 0)
            )
            print(f"{row['state']:12s} {row['cell']}  {extra}".rstrip())
        print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
        return 0
    if args.study_command == "cancel":
        from .study.slurm import cancel_study

        cancel_study(study, args.runs_dir)
        return 0
    if args.study_command == "list":
        from .study.runner import cell_status, gpu_available

        gpu = gpu_available()
        for cell in study.cells:
            st = cell_status(study, cell, args.runs_dir, gpu=gpu)
            print(
                f"{st.state:9s} {cell.id}  {cell.command(st.run_dir)}"
                + (f"  # {st.reason}" if st.reason else "")
            )
        return 0
    from .study.report import write_report

    print(write_report(study, runs_dir=args.runs_dir, out=args.out))
    return 0


def _cmd_export(args) -> int:
    if args.format == "onnx":
        from .engine.export import export_onnx

        path = export_onnx(args.run_dir, args.out)
    elif args.format == "hf":
        from .engine.hf_folder import export_hf

        path = export_hf(args.run_dir, args.out)
    else:
        from .engine.run_folder import run_input_shape
        from .mindspore.export import export_mindir

        path = export_mindir(args.run_dir, args.out, run_input_shape(args.run_dir, args.batch))
    print(path)
    return 0


def _cmd_convert(args) -> int:
    from pathlib import Path

    src, dst = Path(args.src), Path(args.dst)
    if src.suffix == ".ckpt" and dst.suffix == ".safetensors":
        from .mindspore.convert import ckpt_to_safetensors

        ckpt_to_safetensors(src, dst)
    elif src.suffix == ".safetensors" and dst.suffix == ".ckpt":
        from .mindspore.convert import safetensors_to_ckpt

        safetensors_to_ckpt(src, dst)
    else:
        raise ValueError(
            f"convert goes .safetensors -> .ckpt (PyTorch to MindSpore) or .ckpt -> .safetensors; "
            f"got {src.name} -> {dst.name}"
        )
    print(dst)
    return 0


#: ``miamind bench NAME ...`` -> module under miamind.bench, default output path
BENCHMARKS = {
    "layers": ("layers", "every attention at ResNet stage shapes: latency, saved memory, params, FLOPs"),
    "models": ("models", "train/inference img/s of each model with each attention, as ratios to none"),
    "loop": ("loop", "CIFAR-10 fastnet: training img/s in the Lightning loop vs a bare loop"),
    "attention-profile": (
        "attention_profile",
        "profiler table: which operators make an attention's extra training time, per model",
    ),
    "time-to-accuracy": (
        "time_to_accuracy",
        "CIFAR-10 fastnet: test accuracy within 3- and 12-minute budgets",
    ),
    "framework": ("framework", "PyTorch eager/compile vs MindSpore PYNATIVE/GRAPH latency"),
    "mindspore-conv": ("mindspore_conv", "MindSpore vs PyTorch CPU conv kernels at fastnet sizes"),
    "slurm-overhead": ("slurm_overhead", "what the SLURM executor adds per cell (a throwaway local SLURM)"),
    "cluster-projection": ("cluster_projection", "projected wall time of the studies on 1, 8 and 64 workers"),
    "near-duplicates": ("near_duplicates", "flow test rows with a near-copy among the training rows"),
}


def _cmd_bench(args) -> int:
    import importlib

    module_name, _ = BENCHMARKS[args.bench_command]
    module = importlib.import_module(f".bench.{module_name}", __package__)
    argv = list(args.bench_args)
    if "--out" not in argv and not any(a in ("-h", "--help") for a in argv):
        folder = "data" if module_name == "near_duplicates" else "bench"
        argv = ["--out", f"results/{folder}/{module_name}.json"] + argv
    return module.main(argv)


def _cmd_evaluate(args) -> int:
    from .engine.evaluate import evaluate

    evaluate(args.run_dir, which=args.checkpoint, split=args.split)
    return 0


def _cmd_predict(args) -> int:
    from .engine.predict import predict

    predict(args.run_dir, args.inputs, which=args.checkpoint, out=args.out)
    return 0


def _cmd_visualize(args) -> int:
    from .engine.predict import visualize

    for path in visualize(args.run_dir, n=args.n, which=args.checkpoint):
        print(path)
    return 0


def _cmd_viz_attention(args) -> int:
    from .engine.pictures import PictureError, attention_pictures

    command = ["miamind", "viz", "attention", *args.run_dirs, "--out", args.out]
    command += ["--images", str(args.images), "--layer", args.layer, "--checkpoint", args.checkpoint]
    try:
        paths = attention_pictures(
            args.run_dirs,
            args.out,
            images=args.images,
            layer=args.layer,
            which=args.checkpoint,
            command=command,
        )
    except PictureError as e:  # runs that cannot be drawn together: one line, exit 1
        print(f"miamind: error: {e}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def _print_report(name: str, rep: dict) -> None:
    print(f"[{rep['status']}] {name}: {rep.get('path', rep.get('error', ''))}")
    if rep["status"] != "ok":
        if "fetch" in rep:
            print(f"    fetch: {rep['fetch']}")
        return
    if "copy" in rep:
        print(f"    copy: {rep['copy']}")
    for key, value in rep.items():
        if key in ("status", "path", "dataset", "copy"):
            continue
        print(f"    {key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


def _cmd_data_check(args) -> int:
    from .data import check_all, check_dataset

    if args.path is not None and args.dataset is None:
        raise ValueError("--path needs --dataset NAME")
    if args.dataset is not None:
        reports = {args.dataset: {"status": "ok", **check_dataset(args.dataset, args.path, args.data_dir)}}
    else:
        reports = check_all(args.data_dir)
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for name, rep in reports.items():
            _print_report(name, rep)
    return 1 if any(r["status"] == "invalid" for r in reports.values()) else 0


def _cmd_data_fetch(args) -> int:
    from .data import DATASETS
    from .data.fetch import FetchError, fetch_all

    names = list(DATASETS) if "all" in args.datasets else list(dict.fromkeys(args.datasets))
    results = fetch_all(names, args.data_dir)
    return 1 if any(isinstance(r, FetchError) for r in results.values()) else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="miamind", description="MIA-Mind attention: library and experiments")
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="list attentions and datasets found")
    info.add_argument("--data-dir", default=None)
    info.set_defaults(func=_cmd_info)

    demo = sub.add_parser(
        "demo",
        help="train MIA-Mind on the three tasks (fast preset) and print one table: real data when found "
        "or fetched, else generated data under a banner",
    )
    demo.add_argument("--out", default="runs/demo", help="parent folder of the demo's run folders")
    demo.add_argument("--tasks", nargs="+", default=None, choices=task_names())
    demo.add_argument("--attention", default="mia")
    demo.add_argument("--preset", default="fast", choices=PRESETS)
    demo.add_argument(
        "--no-fetch", action="store_true", help="do not download missing data (train on generated data)"
    )
    demo.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key in every task's run, e.g. trainer.epochs=1",
    )
    demo.set_defaults(func=_cmd_demo)

    layers = sub.add_parser("layers", help="tour of the attention layers: parameters, cost, equation check")
    layers.set_defaults(func=_cmd_layers)

    tr = sub.add_parser("train", help="train a model on a task; writes a run folder")
    tr.add_argument("--task", choices=task_names())
    tr.add_argument("--preset", default="fast", choices=PRESETS)
    tr.add_argument("--model", help="default: the preset's (resnet50 / unet / flowcnn for paper)")
    tr.add_argument("--attention", help="registered attention name or none (default: mia)")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--out", help="run folder to create")
    tr.add_argument(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint"
    )
    tr.add_argument("--config", help="YAML file with config overrides")
    tr.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override any config key, e.g. optim.lr=0.1"
    )
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--precision", help="32 | bf16-mixed | 16-mixed | 64")
    tr.add_argument("--devices", type=int)
    tr.add_argument("--num-nodes", type=int)
    tr.add_argument("--strategy", help="auto | ddp | ddp_spawn (Lightning strategies)")
    tr.add_argument("--accelerator", help="cpu | gpu | auto")
    tr.add_argument("--threads", type=int, help="torch threads per process")
    tr.add_argument("--data-dir", help="data root (default: $MIAMIND_DATA)")
    tr.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    tr.add_argument(
        "--backend",
        default="pytorch",
        choices=["pytorch", "mindspore"],
        help="mindspore: cicids2017 (flowcnn) and cifar10 (fastnet), one device, needs miamind[mindspore]",
    )
    tr.add_argument(
        "--pynative", action="store_true", help="mindspore: run op by op instead of a compiled train step"
    )
    tr.set_defaults(func=_cmd_train)

    from .engine.baselines import BASELINES

    bl = sub.add_parser("baseline", help="a classical scikit-learn classifier on a task's flows (same split)")
    bl.add_argument("--task", required=True, choices=["cicids2017"])
    bl.add_argument("--model", required=True, choices=list(BASELINES))
    bl.add_argument("--preset", default="fast", choices=PRESETS)
    bl.add_argument("--seed", type=int)
    bl.add_argument("--out", required=True, help="run folder to create")
    bl.add_argument("--config", help="YAML file with config overrides")
    bl.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (data.*)")
    bl.add_argument("--data-dir", help="data root (default: $MIAMIND_DATA)")
    bl.set_defaults(func=_cmd_baseline)

    st = sub.add_parser("study", help="grids of runs from a study file: run, list, report")
    st_sub = st.add_subparsers(dest="study_command", required=True)
    for name, help_text in (
        ("run", "train every unfinished cell (finished ones are skipped, interrupted ones resumed)"),
        ("list", "every cell with its state and the command that runs it"),
        ("status", "each cell's state from its run folder and the scheduler (job ids, attempts)"),
        ("cancel", "cancel the study's queued and running scheduler jobs"),
        ("report", "results/study/NAME/: cells.csv, summary.md, summary.json, forest.png"),
    ):
        sp = st_sub.add_parser(name, help=help_text)
        sp.add_argument("study_file", help="studies/NAME.yaml")
        sp.add_argument("--runs-dir", help="parent of the cells' run folders (default: runs/study/NAME)")
        if name == "run":
            sp.add_argument("--jobs", type=int, default=1, help="cells trained at the same time")
            sp.add_argument("--only", nargs="+", help="only these cell ids, groups or tasks")
            sp.add_argument(
                "--threads",
                type=int,
                help="OMP_NUM_THREADS of every cell (recorded; the rerun commands carry it)",
            )
            sp.add_argument(
                "--executor",
                choices=["local", "slurm"],
                default="local",
                help="local: --jobs processes here; slurm: job arrays through submitit",
            )
            sp.add_argument("--executor-config", help="YAML of submitit parameters (slurm_partition, ...)")
            sp.add_argument("--detach", action="store_true", help="exit once the cells are submitted (slurm)")
        if name == "report":
            sp.add_argument("--out", help="output folder (default: results/study/NAME)")
        sp.set_defaults(func=_cmd_study)
    docs = st_sub.add_parser(
        "docs", help="rewrite the README's and docs/' generated blocks from results/ (--check: only compare)"
    )
    docs.add_argument("--root", default=".", help="the repository (README.md, docs/, results/)")
    docs.add_argument("--check", action="store_true", help="exit 1, writing nothing, when a block differs")
    docs.set_defaults(func=_cmd_study)

    ev = sub.add_parser("evaluate", help="evaluate a run's checkpoint on the test (or val) split")
    ev.add_argument("run_dir")
    ev.add_argument("--checkpoint", default="best", choices=["best", "last"])
    ev.add_argument("--split", default="test", choices=["test", "val"])
    ev.set_defaults(func=_cmd_evaluate)

    pr = sub.add_parser("predict", help="predict with a run's model on image / TIFF / CSV files")
    pr.add_argument("run_dir", help="a run folder, or a model folder from `export --format hf`")
    pr.add_argument("inputs", nargs="+")
    pr.add_argument("--checkpoint", default="best", choices=["best", "last"])
    pr.add_argument("--out", help="CSV file (classification) or folder for masks (segmentation)")
    pr.set_defaults(func=_cmd_predict)

    ex = sub.add_parser(
        "export",
        help="export a run's model to ONNX, a Hugging Face model folder (PyTorch) or MindIR (MindSpore)",
    )
    ex.add_argument("run_dir")
    ex.add_argument("--format", required=True, choices=["onnx", "hf", "mindir"])
    ex.add_argument("--out", required=True, help="output file (hf: a new folder)")
    ex.add_argument("--batch", type=int, default=1, help="mindir: the fixed batch size of the exported graph")
    ex.set_defaults(func=_cmd_export)

    cv = sub.add_parser("convert", help="weights between PyTorch (.safetensors) and MindSpore (.ckpt)")
    cv.add_argument("src")
    cv.add_argument("dst")
    cv.set_defaults(func=_cmd_convert)

    be = sub.add_parser("bench", help="benchmarks")
    be_sub = be.add_subparsers(dest="bench_command", required=True)
    for name, (_module_name, help_text) in BENCHMARKS.items():
        # the benchmark's own parser reads the rest (`miamind bench NAME --help` shows it);
        # --out defaults to results/bench/<name>.json
        bp = be_sub.add_parser(name, help=help_text, add_help=False)
        bp.add_argument("bench_args", nargs=argparse.REMAINDER)
        bp.set_defaults(func=_cmd_bench)

    vi = sub.add_parser("visualize", help="attention maps (w_c bars, w_s heat maps) of a run's model as PNG")
    vi.add_argument("run_dir")
    vi.add_argument("--n", type=int, default=4, help="number of held-out examples")
    vi.add_argument("--checkpoint", default="best", choices=["best", "last"])
    vi.set_defaults(func=_cmd_visualize)

    vz = sub.add_parser("viz", help="pictures from several trained runs")
    vz_sub = vz.add_subparsers(dest="viz_command", required=True)
    va = vz_sub.add_parser(
        "attention",
        help="spatial-gate heat maps and channel-gate boxes of mia / cbam / coordatt runs side by side, "
        "on the first test images of their task",
    )
    va.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders of one task")
    va.add_argument("--out", required=True, help="PNG file; a JSON record of the runs is written beside it")
    va.add_argument("--images", type=int, default=4, help="the first K images of the test split")
    va.add_argument(
        "--layer",
        default="auto",
        help="attention layer whose spatial gate is drawn, e.g. groups.0.attn; "
        "auto: the deepest one at least 1/4 of the input size",
    )
    va.add_argument("--checkpoint", default="best", choices=["best", "last"])
    va.set_defaults(func=_cmd_viz_attention)

    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="find, verify and count the datasets")
    check.add_argument(
        "--data-dir", default=None, help="data root (default: $MIAMIND_DATA, then ~/.cache/miamind/data)"
    )
    check.add_argument("--dataset", default=None, help="check only this dataset")
    check.add_argument("--path", default=None, help="with --dataset: check this file or folder")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=_cmd_data_check)
    fetch = data_sub.add_parser(
        "fetch",
        help="download datasets from their public sources (checksum-verified, resumable); "
        "one line per source that cannot be fetched",
    )
    fetch.add_argument(
        "datasets", nargs="+", choices=["cifar10", "isbi2012", "cicids2017", "cicids2017_improved", "all"]
    )
    fetch.add_argument(
        "--data-dir", default=None, help="data root (default: $MIAMIND_DATA, then ~/.cache/miamind/data)"
    )
    fetch.set_defaults(func=_cmd_data_fetch)
    return p


def main(argv: list[str] | None = None) -> int:
    from .data.errors import DataError, DatasetNotFoundError
    from .engine.preemption import PREEMPTED_EXIT, TERMINATED_EXIT, PreemptedError, TerminatedError

    parser = build_parser()
    # `miamind bench NAME ...` hands everything after NAME to the benchmark's own parser
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "bench_command", None):
        args.bench_args = extra + list(args.bench_args)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except (DataError, DatasetNotFoundError, ValueError, FileNotFoundError, PermissionError) as e:
        print(f"miamind: error: {e}", file=sys.stderr)
        return 2
    except PreemptedError as e:
        # The scheduler's warning signal: not a failure; the study executor requeues the cell.
        print(f"miamind: interrupted: {e}", file=sys.stderr)
        return PREEMPTED_EXIT
    except TerminatedError as e:
        print(f"miamind: interrupted: {e}", file=sys.stderr)
        return TERMINATED_EXIT
    except OSError as e:
        # Disk full, read-only folder, I/O error: name the file and the cause in one line. Files are
        # written atomically, so what was complete before (the last checkpoint) is intact.
        where = f"{e.filename}: " if e.filename else ""
        print(f"miamind: error: {where}{e.strerror or e} (errno {e.errno})", file=sys.stderr)
        return 1
    except RuntimeError as e:
        # Training that stopped on purpose (non-finite loss) says why in one line; other
        # runtime errors are bugs and keep their traceback.
        if type(e).__name__ != "NonFiniteLossError":
            raise
        print(f"miamind: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("miamind: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
