"""Command line: ``miamind COMMAND ...``, one module per command group (``run``, ``study``, ``data``,
``bench``, ``viz``, ``export``; each module's docstring names its commands).

Each command parses its arguments and calls the library. :func:`main` prints a
:class:`miamind.errors.UserError` (bad input: a file, a field, a name) as one line and exits 2; every
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError, StoppedError, UserError
from . import bench, data, export, run, study, viz
from .bench import BENCHMARKS

__all__ = ["BENCHMARKS", "build_parser", "main"]

# Exit codes besides 0 and 2 (a UserError)
WRITE_FAILED = 1  # an OSError while writing (disk full, read-only folder): files stay complete
STOPPED = 1  # training stopped on purpose (non-finite loss), said in one line
INTERRUPTED = 130  # Ctrl-C


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad command line as one line (a UserError) instead of usage + exit."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="miamind", description="MIA-Mind attention: library and experiments")
    sub = p.add_subparsers(dest="command", required=True)
    for group in (data, run, bench, study, export, viz):
        group.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from ..engine.preemption import PREEMPTED_EXIT, TERMINATED_EXIT, PreemptedError, TerminatedError

    parser = build_parser()
    try:
        # `miamind bench NAME ...` hands everything after NAME to the benchmark's own parser
        args, extra = parser.parse_known_args(argv)
        if getattr(args, "bench_command", None):
            args.bench_args = extra + list(args.bench_args)
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"miamind: error: {e}", file=sys.stderr)
        return STOPPED if isinstance(e, StoppedError) else 2
    except (PreemptedError, TerminatedError) as e:
        # The scheduler's warning signal is not a failure: the study executor requeues the cell.
        print(f"miamind: interrupted: {e}", file=sys.stderr)
        return PREEMPTED_EXIT if isinstance(e, PreemptedError) else TERMINATED_EXIT
    except OSError as e:
        # Disk full, read-only folder, I/O error: name the file and the cause in one line. Files are
        # written atomically, so what was complete before (the last checkpoint) is intact.
        where = f"{e.filename}: " if e.filename else ""
        print(f"miamind: error: {where}{e.strerror or e} (errno {e.errno})", file=sys.stderr)
        return WRITE_FAILED
    except KeyboardInterrupt:
        print("miamind: interrupted", file=sys.stderr)
        return INTERRUPTED
