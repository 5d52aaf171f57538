"""Command line: parses arguments, calls library functions, prints one-line errors."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def _cmd_info(args) -> int:
    from . import __version__
    from .attention import list_attention
    from .data import check_all

    print(f"miamind {__version__}")
    print("attention:", ", ".join(["none"] + list_attention()))
    print("datasets:")
    for name, rep in check_all(args.data_dir).items():
        where = rep.get("path", "") if rep["status"] == "ok" else rep.get("error", "")
        print(f"  {name:22s} {rep['status']:8s} {where}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo()


def _print_report(name: str, rep: dict) -> None:
    print(f"[{rep['status']}] {name}: {rep.get('path', rep.get('error', ''))}")
    if rep["status"] != "ok":
        return
    for key, value in rep.items():
        if key in ("status", "path", "dataset"):
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="miamind", description="MIA-Mind attention: library and experiments")
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="list attentions and datasets found")
    info.add_argument("--data-dir", default=None)
    info.set_defaults(func=_cmd_info)

    demo = sub.add_parser("demo", help="run the main demo job")
    demo.set_defaults(func=_cmd_demo)

    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="find, verify and count the datasets")
    check.add_argument("--data-dir", default=None, help="data root (default: $MIAMIND_DATA, then ~/.cache/miamind/data)")
    check.add_argument("--dataset", default=None, help="check only this dataset")
    check.add_argument("--path", default=None, help="with --dataset: check this file or folder")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=_cmd_data_check)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from .data.errors import DataError, DatasetNotFoundError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DataError, DatasetNotFoundError, ValueError, FileNotFoundError, PermissionError) as e:
        print(f"miamind: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("miamind: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
