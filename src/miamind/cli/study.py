"""``miamind study run | list | status | cancel | report | docs``: grids of runs from a study file."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def _cmd_study(args) -> int:
    from ..study import load_study

    if args.study_command == "docs":
        from ..study.docs_blocks import sync_docs

        changed = sync_docs(Path(args.root), check=args.check)
        for path in changed:
            print(f"{'differs from the results' if args.check else 'rewritten'}: {path}")
        return 1 if args.check and changed else 0
    study = load_study(args.study_file)
    if args.study_command == "run":
        from ..study.runner import LocalExecutor, run_study

        if args.executor == "slurm":
            from ..study.slurm import SlurmExecutor, load_executor_config

            executor = SlurmExecutor(load_executor_config(args.executor_config), threads=args.threads)
        else:
            if args.executor_config:
                raise InputError("--executor-config is for --executor slurm")
            executor = LocalExecutor(args.jobs)
        env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else None
        outcome = run_study(
            study, runs_dir=args.runs_dir, only=args.only, env=env, executor=executor, detach=args.detach
        )
        return 1 if outcome["failed"] else 0
    if args.study_command == "status":
        from ..study.runner import study_states

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
        from ..study.slurm import cancel_study

        cancel_study(study, args.runs_dir)
        return 0
    if args.study_command == "list":
        from ..study.runner import cell_status, gpu_available

        gpu = gpu_available()
        for cell in study.cells:
            st = cell_status(study, cell, args.runs_dir, gpu=gpu)
            print(
                f"{st.state:9s} {cell.id}  {cell.command(st.run_dir)}"
                + (f"  # {st.reason}" if st.reason else "")
            )
        return 0
    from ..study.report import write_report

    print(write_report(study, runs_dir=args.runs_dir, out=args.out))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    st = sub.add_parser("study", help="grids of runs from a study file: run, list, report")
    st_sub = st.add_subparsers(dest="study_command", required=True)
    for name, help_text in (
        ("run", "train every unfinished cell (finished ones are skipped, interrupted ones resumed)"),
        ("list", "every cell with its state and the command that runs it"),
        ("status", "each cell's state from its run folder and the scheduler (job ids, attempts)"),
        ("cancel", "cancel the study's queued and running scheduler jobs"),
        ("report", "results/study/NAME/: cells.csv, summary.md, summary.json, forest.png, index.html"),
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
        "docs",
        help="rewrite the README's and docs/' generated blocks and the studies' index.html from results/ "
        "(--check: only compare)",
    )
    docs.add_argument("--root", default=".", help="the repository (README.md, docs/, results/)")
    docs.add_argument("--check", action="store_true", help="exit 1, writing nothing, when a block differs")
    docs.set_defaults(func=_cmd_study)
