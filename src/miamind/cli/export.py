"""``miamind export | convert``: a trained model in other formats and frameworks."""

from __future__ import annotations

import argparse

from ..errors import InputError


def _cmd_export(args) -> int:
    if args.format == "onnx":
        from ..engine.export import export_onnx

        path = export_onnx(args.run_dir, args.out)
    elif args.format == "hf":
        from ..engine.hf_folder import export_hf

        path = export_hf(args.run_dir, args.out)
    else:
        from ..engine.run_folder import run_input_shape
        from ..mindspore.export import export_mindir

        path = export_mindir(args.run_dir, args.out, run_input_shape(args.run_dir, args.batch))
    print(path)
    return 0


def _cmd_convert(args) -> int:
    from pathlib import Path

    src, dst = Path(args.src), Path(args.dst)
    if src.suffix == ".ckpt" and dst.suffix == ".safetensors":
        from ..mindspore.convert import ckpt_to_safetensors

        ckpt_to_safetensors(src, dst)
    elif src.suffix == ".safetensors" and dst.suffix == ".ckpt":
        from ..mindspore.convert import safetensors_to_ckpt

        safetensors_to_ckpt(src, dst)
    else:
        raise InputError(
            f"convert goes .safetensors -> .ckpt (PyTorch to MindSpore) or .ckpt -> .safetensors; "
            f"got {src.name} -> {dst.name}"
        )
    print(dst)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
