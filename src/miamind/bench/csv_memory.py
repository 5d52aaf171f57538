"""Peak memory and speed of reading a large CIC-IDS2017 CSV (MachineLearningCVE layout).

Writes a CSV of ``--rows`` rows to a temporary folder by cycling through real-layout rows
(the shared ``cicids2017/`` subset when found, else ``--source``), giving each copy a random
``Destination Port`` so rows are not verbatim repeats, and repeating the header line inside the
file every ``--header-every`` rows (a quirk of concatenated copies). Each measurement then runs
in a fresh Python process, which reports its own peak RSS (``ru_maxrss``):

- ``read``: ``cicids2017.read_flows(file)`` (parse to the float32 table);
- ``load``: ``cicids2017.load_cicids2017(path=file, label_mode="multiclass")`` (parse, cache
  write, split, scale) with a throw-away cache folder.

The generated file and cache are deleted at the end (never committed). Usage::

    python -m miamind.bench.csv_memory --rows 3450000 --out results/data/cicids2017_read_memory.json
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .._portable import portable_text
from ._report import md_head

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from miamind.data import cicids2017 as cic
what, path, cache, chunksize = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if what == "read":
    t = cic.read_flows(path, chunksize=chunksize)
    rows, nbytes, extra = len(t.label_codes), t.features.nbytes, {"report": {k: t.report[k] for k in
        ("rows_read", "skipped_lines", "nonfinite_cells", "rows_dropped_nonfinite", "label_counts")}}
else:
    d = cic.load_cicids2017(path=path, label_mode="multiclass", cache_dir=Path(cache), chunksize=chunksize)
    rows = sum(d.report["split"]["rows"].values())
    nbytes = d.x_train.nbytes + d.x_val.nbytes + d.x_test.nbytes
    extra = {"split_rows": d.report["split"]["rows"]}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mib": peak / 1024,
                  "rss_after_imports_mib": base / 1024, "float32_features_mib": nbytes / 2**20, **extra}))
"""


def _source_lines(source: Path | None) -> tuple[Path, bytes, list[bytes]]:
    """Source path, header line and data lines (bytes, line endings kept) of a real-layout CSV."""
    if source is None:
        from miamind.data import cicids2017

        files = [f for f in sorted(cicids2017.locate().iterdir()) if f.name.endswith((".csv", ".csv.gz"))]
        source = files[0]
    opener = gzip.open if source.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(source, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    return source, lines[0], lines[1:]


def generate(path: Path, rows: int, source: Path | None, header_every: int, seed: int = 0) -> dict:
    """Write ``rows`` data rows (+ repeated header lines) to ``path``; returns what was written."""
    source, header, lines = _source_lines(source)
    rests = [ln.split(b",", 1)[1] for ln in lines]  # everything after Destination Port
    rng = np.random.default_rng(seed)
    written = headers = 0
    with open(path, "wb") as f:
        f.write(header)
        while written < rows:
            n = min(len(rests), rows - written)
            ports = rng.integers(0, 65536, size=n)
            block = [b"%d,%s" % (p, r) for p, r in zip(ports.tolist(), rests[:n], strict=True)]
            if header_every:  # a header line before every data row whose number is a multiple
                first = -(-max(written, 1) // header_every) * header_every
                for row in reversed(range(first, written + n, header_every)):
                    block.insert(row - written, header)
                    headers += 1
            f.write(b"".join(block))
            written += n
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "data_rows": rows,
        "repeated_header_lines": headers,
        "source": portable_text(str(source)),
        "source_rows": len(lines),
    }


def measure(what: str, path: Path, cache: Path, chunksize: int) -> dict:
    """Run one measurement in a fresh interpreter, so its peak RSS is its own."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, what, str(path), str(cache), str(chunksize)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu, mem = "unknown", None
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), cpu)
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    import pandas

    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "memory_gib": mem,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "platform": platform.platform(),
    }


def markdown(result: dict) -> str:
    g, m = result["generated"], result["machine"]
    rows = [
        "| step | rows kept | seconds | rows/s | MB/s | peak RSS (MiB) | RSS after imports (MiB) "
        "| peak above imports (MiB) | float32 features (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for what, r in result["measurements"].items():
        rows.append(
            f"| {what} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | {r['mb_per_s']:.1f} | "
            f"{r['peak_rss_mib']:,.0f} | {r['rss_after_imports_mib']:,.0f} | "
            f"{r['peak_rss_mib'] - r['rss_after_imports_mib']:,.0f} | {r['float32_features_mib']:,.0f} |"
        )
    return "\n".join(
        md_head(
            "Reading a large CIC-IDS2017 CSV: peak memory and speed",
            result["command"],
            f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['memory_gib']:.0f} GiB RAM; "
            f"Python {m['python']}, numpy {m['numpy']}, pandas {m['pandas']}. Other jobs were running on the machine, "
            "so the times are indicative.",
            f"Generated file: {g['bytes'] / 2**20:,.0f} MiB ({g['bytes']:,} bytes), {g['data_rows']:,} data rows "
            f"in the MachineLearningCVE layout + {g['repeated_header_lines']} repeated header lines; "
            f"rows cycle through the {g['source_rows']:,} real rows of {g['source']} "
            "with a random Destination Port. Deleted after the run.",
            "",
            *rows,
            "",
            f"Peak RSS / file size: read {result['measurements']['read']['peak_rss_mib'] * 2**20 / g['bytes']:.2f}x"
            + (
                f", load {result['measurements']['load']['peak_rss_mib'] * 2**20 / g['bytes']:.2f}x"
                if "load" in result["measurements"]
                else ""
            )
            + ". `read` = `read_flows` (chunked parse to float32); `load` = `load_cicids2017` (parse, cache write, "
            "stratified split, scaling), each in a fresh process (`ru_maxrss`). rows/s and MB/s count every row "
            "and byte of the file. 'RSS after imports' is the interpreter with `miamind` imported (it imports "
            "torch); the table costs the float32 matrix plus one parsed chunk, and `load` holds the table and its "
            "train/val/test copies at once (about twice the matrix).",
            "",
        )
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--rows", type=int, default=2_830_743, help="data rows (default: the full MachineLearningCVE count)"
    )
    p.add_argument("--out", type=Path, required=True, help="JSON result; a .md summary is written beside it")
    p.add_argument(
        "--source", type=Path, default=None, help="real-layout CSV to cycle (default: the data root's subset)"
    )
    p.add_argument(
        "--tmp", type=Path, default=None, help="folder for the generated file (default: system temp)"
    )
    p.add_argument("--header-every", type=int, default=500_000)
    p.add_argument("--chunksize", type=int, default=None)
    p.add_argument("--skip-load", action="store_true", help="measure read_flows only")
    args = p.parse_args(argv)

    from miamind.data.flows import DEFAULT_CHUNKSIZE

    chunksize = args.chunksize or DEFAULT_CHUNKSIZE
    work = Path(tempfile.mkdtemp(prefix="miamind_csv_bench_", dir=args.tmp))
    try:
        csv_path = work / "MachineLearningCVE_large.csv"
        t0 = time.perf_counter()
        generated = generate(csv_path, args.rows, args.source, args.header_every)
        generated["seconds"] = time.perf_counter() - t0
        print(f"generated {generated['bytes'] / 2**20:,.0f} MiB in {generated['seconds']:.0f} s", flush=True)
        measurements = {}
        for what in ("read",) + (() if args.skip_load else ("load",)):
            r = measure(what, csv_path, work / "cache", chunksize)
            r["rows_per_s"] = (generated["data_rows"] + generated["repeated_header_lines"]) / r["seconds"]
            r["mb_per_s"] = generated["bytes"] / 1e6 / r["seconds"]
            measurements[what] = r
            print(
                f"{what}: {r['rows']:,} rows in {r['seconds']:.1f} s, peak RSS {r['peak_rss_mib']:,.0f} MiB",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    generated["path"] = "(temporary, deleted)"
    env = "MIAMIND_DATA=path/to/data " if args.source is None and os.environ.get("MIAMIND_DATA") else ""
    result = {
        "command": env
        + portable_text(
            "python -m miamind.bench.csv_memory " + " ".join(argv if argv is not None else sys.argv[1:])
        ),
        "machine": machine(),
        "chunksize": chunksize,
        "generated": generated,
        "measurements": measurements,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
