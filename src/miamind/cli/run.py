"""``miamind train | evaluate | predict | baseline | demo``: runs of one network on one task."""

from __future__ import annotations

import argparse

from ..engine.config import PRESETS
from ..errors import InputError
from ..tasks.registry import get_task, task_names

CHECKPOINTS = ["best", "last"]


def _cmd_demo(args) -> int:
    from ..demo import run_demo

    return run_demo(
        out=args.out,
        tasks=args.tasks,
        attention=args.attention,
        preset=args.preset,
        fetch=not args.no_fetch,
        assignments=args.set or [],
    )


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
    from ..engine.config import resolve_config
    from ..engine.train import train

    if args.resume is not None:
        given = [k for k, v in _flag_overrides(args).items() if v is not None] + (
            ["--set"] if args.set else []
        )
        if given or args.config or args.task or args.out:
            raise InputError(
                "--resume RUN_DIR continues the run with its saved config.yaml; "
                f"drop the other options ({', '.join(given) or '--task/--out/--config'})"
            )
        train({}, args.resume, resume=True)
        return 0
    if args.task is None or args.out is None:
        raise InputError("train needs --task and --out (or --resume RUN_DIR)")
    cfg = resolve_config(
        args.task,
        args.preset,
        config_file=args.config,
        overrides=_flag_overrides(args),
        assignments=args.set or [],
    )
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.model_dump(mode="python"), sort_keys=False), end="")
        return 0
    if args.backend == "mindspore":
        from ..mindspore.train import train_mindspore

        train_mindspore(cfg, args.out, jit=not args.pynative)
        return 0
    train(cfg, args.out)
    return 0


def _cmd_baseline(args) -> int:
    from ..engine.baselines import train_baseline
    from ..engine.config import resolve_config

    cfg = resolve_config(
        args.task,
        args.preset,
        config_file=args.config,
        overrides={"seed": args.seed, "data.data_dir": args.data_dir, "model.attention": "none"},
        assignments=args.set or [],
    )
    train_baseline(cfg, args.model, args.out)
    return 0


def _cmd_evaluate(args) -> int:
    from ..engine.evaluate import evaluate

    evaluate(args.run_dir, which=args.checkpoint, split=args.split)
    return 0


def _cmd_predict(args) -> int:
    from ..engine.predict import predict

    predict(args.run_dir, args.inputs, which=args.checkpoint, out=args.out)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
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

    from ..engine.baselines import BASELINES

    bl = sub.add_parser("baseline", help="a classical scikit-learn classifier on a task's flows (same split)")
    bl.add_argument("--task", required=True, choices=[t for t in task_names() if get_task(t).has_baselines])
    bl.add_argument("--model", required=True, choices=list(BASELINES))
    bl.add_argument("--preset", default="fast", choices=PRESETS)
    bl.add_argument("--seed", type=int)
    bl.add_argument("--out", required=True, help="run folder to create")
    bl.add_argument("--config", help="YAML file with config overrides")
    bl.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (data.*)")
    bl.add_argument("--data-dir", help="data root (default: $MIAMIND_DATA)")
    bl.set_defaults(func=_cmd_baseline)

    ev = sub.add_parser("evaluate", help="evaluate a run's checkpoint on the test (or val) split")
    ev.add_argument("run_dir")
    ev.add_argument("--checkpoint", default="best", choices=CHECKPOINTS)
    ev.add_argument("--split", default="test", choices=["test", "val"])
    ev.set_defaults(func=_cmd_evaluate)

    pr = sub.add_parser("predict", help="predict with a run's model on image / TIFF / CSV files")
    pr.add_argument("run_dir", help="a run folder, or a model folder from `export --format hf`")
    pr.add_argument("inputs", nargs="+")
    pr.add_argument("--checkpoint", default="best", choices=CHECKPOINTS)
    pr.add_argument("--out", help="CSV file (classification) or folder for masks (segmentation)")
    pr.set_defaults(func=_cmd_predict)
