"""`miamind data fetch` against a local HTTP server on 127.0.0.1 (never a real host): success,
mirrors in order, resume after a cut connection, wrong checksum, archives with escaping paths,
server down; plus the source tables checked against the shipped copies when MIAMIND_DATA is set."""

import gzip
import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from miamind.data import DATASETS, dataset_module
from miamind.data.errors import DataError
from miamind.data.fetch import FetchError, Remote, Source, fetch_all, fetch_dataset, fetch_file, safe_extract

CSV = b"id,Flow ID,Label\n1,a,BENIGN\n2,b,DDoS\n" * 50


def sha256(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Server:
    """Serves ``files`` (path -> bytes) with Range support; records (path, Range) of every request.

    ``cut[path] = n``: the next response for ``path`` announces the full length, sends ``n`` bytes
    and closes the connection. ``ignore_range``: answer every request with the whole file (200).
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                n = server.cut.pop(self.path, None)
                self.wfile.write(part if n is None else part[:n])
                self.wfile.flush()
                if n is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def closed_port_url(path: str = "/x") -> str:
    """A URL on 127.0.0.1 where nothing listens (a port just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def make_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def flows_source(*remotes: Remote) -> Source:
    """A source for cicids2017_improved, whose loader finds any folder holding CSV files."""
    return Source(
        dataset="cicids2017_improved", folder="cicids2017_improved", copy="test copy", files=remotes
    )


def leftovers(root: Path) -> list[str]:
    """Partial downloads and staging folders left under the data root."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if ".part" in p.name or ".fetch-" in p.name
    )


# ------------------------------------------------------------------------------------------ success


def test_fetch_unpacks_archive_into_place_and_the_loader_finds_it(server, tmp_path):
    archive = make_tar({"monday.csv": CSV, "docs/readme.txt": b"hi"})
    server.files["/flows.tar.gz"] = archive
    src = flows_source(Remote("flows.tar.gz", (server.url("/flows.tar.gz"),), sha256(archive), unpack=True))
    lines: list[str] = []
    found = fetch_dataset("cicids2017_improved", tmp_path, source=src, log=lines.append)
    assert found == tmp_path / "cicids2017_improved"
    assert (found / "monday.csv").read_bytes() == CSV and (found / "docs" / "readme.txt").is_file()
    assert not (found / "flows.tar.gz").exists()  # the archive is not kept beside its contents
    assert not (tmp_path / ".downloads").exists() and leftovers(tmp_path) == []
    assert lines == [f"cicids2017_improved: fetched test copy into {found}"]
    # a second fetch finds the data and downloads nothing
    n = len(server.requests)
    assert fetch_dataset("cicids2017_improved", tmp_path, source=src, log=lines.append) == found
    assert len(server.requests) == n and "already there" in lines[-1]


def test_plain_files_keep_their_relative_paths(server, tmp_path):
    server.files["/a/0.csv"], server.files["/b/0.csv"] = CSV, CSV + b"3,c,BENIGN\n"
    src = flows_source(
        Remote("0.csv", (server.url("/a/0.csv"),), sha256(CSV)),
        Remote("more/0.csv", (server.url("/b/0.csv"),), sha256(server.files["/b/0.csv"])),
    )
    found = fetch_dataset("cicids2017_improved", tmp_path, source=src, log=None)
    assert (found / "0.csv").read_bytes() == CSV
    assert (found / "more" / "0.csv").read_bytes() == server.files["/b/0.csv"]


def test_mirrors_are_tried_in_order(server, tmp_path):
    server.files["/good.csv"] = CSV
    urls = (closed_port_url("/down.csv"), server.url("/missing.csv"), server.url("/good.csv"))
    path = fetch_file(Remote("x.csv", urls, sha256(CSV)), tmp_path)
    assert path.read_bytes() == CSV
    assert [p for p, _ in server.requests] == ["/missing.csv", "/good.csv"]


# ------------------------------------------------------------------------------------------- resume


def test_resume_after_a_cut_connection(server, tmp_path):
    body = os.urandom(300_000)
    server.files["/big.bin"] = body
    server.cut["/big.bin"] = 120_000
    path = fetch_file(Remote("big.bin", (server.url("/big.bin"),), sha256(body)), tmp_path)
    assert path.read_bytes() == body
    assert server.requests == [("/big.bin", None), ("/big.bin", "bytes=120000-")]


def test_a_part_left_by_an_earlier_run_is_resumed(server, tmp_path):
    body = os.urandom(50_000)
    server.files["/big.bin"] = body
    (tmp_path / "big.bin.part").write_bytes(body[:20_000])
    path = fetch_file(Remote("big.bin", (server.url("/big.bin"),), sha256(body)), tmp_path)
    assert path.read_bytes() == body and server.requests == [("/big.bin", "bytes=20000-")]
    assert not (tmp_path / "big.bin.part").exists()


def test_a_server_that_ignores_range_restarts_the_file(server, tmp_path):
    body = os.urandom(50_000)
    server.files["/big.bin"], server.ignore_range = body, True
    (tmp_path / "big.bin.part").write_bytes(b"stale bytes from somewhere else")
    path = fetch_file(Remote("big.bin", (server.url("/big.bin"),), sha256(body)), tmp_path)
    assert path.read_bytes() == body


# ---------------------------------------------------------------------------------------- checksums


def test_wrong_checksum_is_refused_before_unpacking(server, tmp_path):
    archive = make_tar({"monday.csv": CSV})
    server.files["/flows.tar.gz"] = archive
    bad = "sha256:" + "0" * 64
    src = flows_source(Remote("flows.tar.gz", (server.url("/flows.tar.gz"),), bad, unpack=True))
    with pytest.raises(FetchError) as err:
        fetch_dataset("cicids2017_improved", tmp_path, source=src, log=None)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1
    assert "cicids2017_improved: " in msg and f"differs from the expected {'0' * 64}" in msg
    assert "By hand:" in msg  # says what to do instead
    assert not (tmp_path / "cicids2017_improved").exists() and leftovers(tmp_path) == []


def test_md5_checksums_work_too(server, tmp_path):
    server.files["/a.csv"] = CSV
    md5 = "md5:" + hashlib.md5(CSV).hexdigest()
    assert fetch_file(Remote("a.csv", (server.url("/a.csv"),), md5), tmp_path).read_bytes() == CSV


def test_a_bad_mirror_falls_back_to_a_good_one(server, tmp_path):
    server.files["/tampered.csv"], server.files["/good.csv"] = CSV + b"x", CSV
    urls = (server.url("/tampered.csv"), server.url("/good.csv"))
    assert fetch_file(Remote("a.csv", urls, sha256(CSV)), tmp_path).read_bytes() == CSV


# ------------------------------------------------------------------------------------ unsafe archives


@pytest.mark.parametrize(
    "kind", ["tar-traversal", "tar-absolute", "tar-symlink", "zip-traversal", "zip-absolute", "zip-symlink"]
)
def test_archives_that_escape_are_refused_and_write_nothing(server, tmp_path, kind):
    fmt, how = kind.split("-")
    name = {"traversal": "../../escaped.csv", "absolute": "/tmp/miamind_escaped.csv", "symlink": "link.csv"}[
        how
    ]
    if fmt == "tar":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            ok = tarfile.TarInfo("monday.csv")
            ok.size = len(CSV)
            tf.addfile(ok, io.BytesIO(CSV))
            info = tarfile.TarInfo(name)
            if how == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(info)
            else:
                info.size = 3
                tf.addfile(info, io.BytesIO(b"bad"))
        archive = buf.getvalue()
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("monday.csv", CSV)
            info = zipfile.ZipInfo(name)
            if how == "symlink":
                info.external_attr = (0o120777 << 16) | 0  # S_IFLNK
                zf.writestr(info, "/etc/passwd")
            else:
                zf.writestr(info, b"bad")
        archive = buf.getvalue()
    server.files["/evil"] = archive
    root = tmp_path / "a" / "b" / "root"
    src = flows_source(Remote("evil.archive", (server.url("/evil"),), sha256(archive), unpack=True))
    with pytest.raises(FetchError, match="refusing to extract") as err:
        fetch_dataset("cicids2017_improved", root, source=src, log=None)
    assert len(str(err.value).splitlines()) == 1
    assert not (root / "cicids2017_improved").exists()  # not even the safe member
    assert not (tmp_path / "a" / "escaped.csv").exists() and not Path("/tmp/miamind_escaped.csv").exists()
    assert leftovers(root) == []


def test_safe_extract_rejects_garbage(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(DataError, match="junk.tar.gz: not a tar or zip archive"):
        safe_extract(junk, tmp_path / "out")


def test_safe_extract_zip(tmp_path):
    (tmp_path / "a.zip").write_bytes(make_zip({"x/monday.csv": CSV}))
    safe_extract(tmp_path / "a.zip", tmp_path / "out")
    assert (tmp_path / "out" / "x" / "monday.csv").read_bytes() == CSV


# -------------------------------------------------------------------------------------- server down


def test_server_down_is_one_line_and_keeps_nothing(tmp_path):
    src = flows_source(Remote("a.csv", (closed_port_url("/a.csv"),), sha256(CSV)))
    with pytest.raises(FetchError) as err:
        fetch_dataset("cicids2017_improved", tmp_path, source=src, log=None)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1 and "cannot connect" in msg and "By hand:" in msg
    assert not (tmp_path / ".downloads").exists() and not (tmp_path / "cicids2017_improved").exists()


def test_an_unreachable_host_is_tried_once_per_fetch(tmp_path, monkeypatch):
    url = closed_port_url("/a.csv")
    calls: list[str] = []
    import miamind.data.fetch as fetch_mod

    real = fetch_mod.download

    def counting(u, part, **kw):
        calls.append(u)
        return real(u, part, **kw)

    monkeypatch.setattr(fetch_mod, "download", counting)
    unreachable: set[str] = set()
    for _ in range(2):
        with pytest.raises(FetchError):
            fetch_file(Remote("a.csv", (url,), sha256(CSV)), tmp_path, unreachable=unreachable)
    assert calls == [url]


def test_a_manual_source_says_what_to_do(tmp_path):
    with pytest.raises(FetchError, match=r"cicids2017: not fetched automatically: .*registration form"):
        fetch_dataset("cicids2017", tmp_path, log=None)


def test_fetch_all_reports_every_failure_and_goes_on(server, tmp_path, monkeypatch):
    server.files["/a.csv"] = CSV
    good = flows_source(Remote("a.csv", (server.url("/a.csv"),), sha256(CSV)))
    monkeypatch.setattr(dataset_module("cicids2017_improved"), "FETCH", good)
    lines: list[str] = []
    out = fetch_all(["cicids2017", "cicids2017_improved"], tmp_path, log=lines.append)
    assert (
        isinstance(out["cicids2017"], FetchError)
        and out["cicids2017_improved"] == tmp_path / "cicids2017_improved"
    )
    assert [line.split(":")[0] for line in lines] == ["cicids2017", "cicids2017_improved"]


def test_cli_fetch_all_offline_fails_one_line_per_source(tmp_path):
    """The command a newcomer runs, with every request sent to a proxy where nothing listens."""
    proxy = closed_port_url("").rstrip("/")
    env = {**os.environ, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "NO_PROXY": "", "no_proxy": ""}
    env.pop("MIAMIND_DATA", None)
    out = subprocess.run(
        [sys.executable, "-m", "miamind", "data", "fetch", "all", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and out.stderr.strip() == ""
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == list(DATASETS), out.stdout
    assert leftovers(tmp_path) == [] and not (tmp_path / ".downloads").exists()


# ------------------------------------------------------------------------------------ source tables


def test_source_tables_are_complete():
    for name in DATASETS:
        src = dataset_module(name).FETCH
        assert src.dataset == name
        for remote in src.files:
            assert all(u.startswith("https://") for u in remote.urls), remote
    cifar = dataset_module("cifar10").FETCH.files
    assert [r.checksum for r in cifar] == ["md5:c58f30108f718f92721af3b95e74349a"]  # as published
    isbi = dataset_module("isbi2012").FETCH.files
    assert sorted({r.path.rsplit("/", 1)[0] for r in isbi}) == ["test/image", "train/image", "train/label"]
    assert len(isbi) == 90 and all(len(r.urls) == 3 for r in isbi)
    assert not dataset_module("cicids2017").FETCH.fetchable


def test_source_checksums_match_the_shipped_copies(real_data_dir):
    """The sha256 in the tables are of the shared copies (PROVENANCE.md: unchanged Git blobs)."""
    isbi = real_data_dir / "isbi2012"
    for remote in dataset_module("isbi2012").FETCH.files:
        assert sha256((isbi / remote.path).read_bytes()) == remote.checksum, remote.path
    sample = real_data_dir / "cicids2017" / "alt_CICIDS2017_improved_distrinet_sample_rnd2500"
    for remote in dataset_module("cicids2017_improved").FETCH.files:
        data = gzip.decompress((sample / (remote.path + ".gz")).read_bytes())
        assert sha256(data) == remote.checksum, remote.path


# ----------------------------------------------------------------------------- progress and check


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_only(server, tmp_path, monkeypatch):
    import miamind.data.fetch as fetch_mod

    body = os.urandom(fetch_mod.BAR_MIN_BYTES + 1)
    server.files["/big.bin"] = body
    term = Terminal()
    monkeypatch.setattr(fetch_mod.sys, "stderr", term)
    fetch_file(Remote("big.bin", (server.url("/big.bin"),), sha256(body)), tmp_path, label="cifar10 1/1")
    assert term.getvalue().rstrip().endswith("] 100% 1.0/1.0 MB") and "cifar10 1/1 [" in term.getvalue()
    piped = io.StringIO()  # not a terminal: nothing written (logs stay clean)
    monkeypatch.setattr(fetch_mod.sys, "stderr", piped)
    fetch_file(Remote("big2.bin", (server.url("/big.bin"),), sha256(body)), tmp_path)
    assert piped.getvalue() == ""


def test_data_check_says_how_to_get_each_missing_dataset(tmp_path, capsys):
    import json

    from miamind.cli import main

    assert main(["data", "check", "--data-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for name in ("cifar10", "isbi2012", "cicids2017_improved"):
        assert report[name]["fetch"].startswith(f"miamind data fetch {name}  ("), report[name]
    assert (
        report["cicids2017"]["fetch"].startswith("by hand: ")
        and "registration" in report["cicids2017"]["fetch"]
    )


@pytest.mark.parametrize(
    "name,report,copy",
    [
        ("cifar10", {"layout": "python"}, "official python batches"),
        ("cifar10", {"layout": "image-folder", "lossy": True}, "image folder of lossy JPEGs"),
        ("isbi2012", {"layout": "png"}, "PNG slices"),
        (
            "cicids2017",
            {"files": [1, 2], "rows_read": 12671, "label_counts_read": {"a": 1}},
            "2 CSV file(s), 12,671 rows, 1 labels",
        ),
    ],
)
def test_describe_copy(name, report, copy):
    from miamind.data import describe_copy

    assert describe_copy(name, report).startswith(copy)
