"""``miamind viz maps | attention``: pictures of trained runs (``visualize``: the old name of ``viz maps``)."""

from __future__ import annotations

import argparse
import sys

CHECKPOINTS = ["best", "last"]


def _cmd_viz_maps(args) -> int:
    from ..engine.predict import visualize

    for path in visualize(args.run_dir, n=args.n, which=args.checkpoint):
        print(path)
    return 0


def _cmd_viz_attention(args) -> int:
    from ..engine.pictures import PictureError, attention_pictures

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


def _add_maps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=4, help="number of held-out examples")
    p.add_argument("--checkpoint", default="best", choices=CHECKPOINTS)
    p.set_defaults(func=_cmd_viz_maps)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    maps_help = "attention maps (w_c bars, w_s heat maps) of a run's model as PNG"
    vz = sub.add_parser("viz", help="pictures of trained runs: one run's attention maps, several runs' gates")
    vz_sub = vz.add_subparsers(dest="viz_command", required=True)
    _add_maps_arguments(vz_sub.add_parser("maps", help=maps_help))
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
    va.add_argument("--checkpoint", default="best", choices=CHECKPOINTS)
    va.set_defaults(func=_cmd_viz_attention)
    # The command's old name, kept so scripts written for it keep working.
    _add_maps_arguments(sub.add_parser("visualize", help=f"the old name of `viz maps`: {maps_help}"))
