"""``miamind info | data check | data fetch``: which datasets are here, and getting the rest."""

from __future__ import annotations

import argparse
import json

from ..engine.config import PRESETS
from ..errors import InputError

DATA_DIR_HELP = "data root (default: $MIAMIND_DATA, then ~/.cache/miamind/data)"


def _cmd_info(args) -> int:
    from .. import __version__
    from ..attention import list_attention
    from ..data import check_all
    from ..models import list_models

    print(f"miamind {__version__}")
    print("models:   ", ", ".join(list_models()))
    print("attention:", ", ".join(["none"] + list_attention()))
    print(f"presets:   {', '.join(PRESETS)} (miamind/presets/*.yaml)")
    print("datasets:")
    for name, rep in check_all(args.data_dir).items():
        where = rep.get("path", "") if rep["status"] == "ok" else rep.get("error", "")
        print(f"  {name:22s} {rep['status']:8s} {where}")
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
    from ..data import check_all, check_dataset

    if args.path is not None and args.dataset is None:
        raise InputError("--path needs --dataset NAME")
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
    from ..data import DATASETS
    from ..data.fetch import FetchError, fetch_all

    names = list(DATASETS) if "all" in args.datasets else list(dict.fromkeys(args.datasets))
    results = fetch_all(names, args.data_dir)
    return 1 if any(isinstance(r, FetchError) for r in results.values()) else 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..data import DATASETS

    info = sub.add_parser("info", help="list attentions and datasets found")
    info.add_argument("--data-dir", default=None)
    info.set_defaults(func=_cmd_info)

    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="find, verify and count the datasets")
    check.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    check.add_argument("--dataset", default=None, choices=list(DATASETS), help="check only this dataset")
    check.add_argument("--path", default=None, help="with --dataset: check this file or folder")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=_cmd_data_check)
    fetch = data_sub.add_parser(
        "fetch",
        help="download datasets from their public sources (checksum-verified, resumable); "
        "one line per source that cannot be fetched",
    )
    fetch.add_argument("datasets", nargs="+", choices=[*DATASETS, "all"])
    fetch.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    fetch.set_defaults(func=_cmd_data_fetch)
