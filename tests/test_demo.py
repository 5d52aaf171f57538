"""`make demo` on a machine without data: fetch what can be fetched (here from a local server),
train the rest on generated data under a banner, exit 0, and say in the table which data each row used.
Every source points at 127.0.0.1, so no test makes a real request."""

import gzip

import pytest

from miamind.cli import main
from miamind.data import DATASETS, dataset_module
from miamind.data.fetch import Remote, Source
from tests.data.test_cicids2017_improved import features, write_improved
from tests.data.test_fetch import Server, closed_port_url, sha256

# A tiny budget for every task (the real `make demo` keeps the preset's).
TINY = [
    "trainer.epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_eval_batches=1",
    "trainer.precision=32",
    "data.batch_size=16",
    "data.eval_batch_size=64",
    "plots=false",
]


def tiny_args(out):
    args = ["demo", "--out", str(out)]
    for a in TINY:
        args += ["--set", a]
    return args


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """An empty data root and every dataset's source on a port where nothing listens."""
    monkeypatch.setenv("MIAMIND_DATA", str(tmp_path / "data"))
    for name in DATASETS:
        mod = dataset_module(name)
        down = Source(
            dataset=name,
            folder=mod.FETCH.folder,
            copy="test copy",
            files=(Remote("x.bin", (closed_port_url(f"/{name}"),), "sha256:" + "0" * 64),),
        )
        monkeypatch.setattr(mod, "FETCH", down)


def test_demo_without_data_and_network_trains_on_generated_data(tmp_path, no_network, capsys):
    assert main(tiny_args(tmp_path / "runs")) == 0
    out = capsys.readouterr().out
    table = out[out.index("## miamind demo") :]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "task" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["cifar10", "isbi2012", "cicids2017"]
    assert all(r.split("|")[2].strip() == "generated" for r in rows)
    assert "GENERATED DATA for cifar10, isbi2012, cicids2017" in table  # the banner follows the table
    assert "say nothing about" in table and "miamind data fetch all" in table
    for task in ("cifar10", "isbi2012", "cicids2017"):
        assert f"{task}: " in out and "cannot connect" in out  # the fetch was tried and said why not
        assert (tmp_path / "runs" / f"{task}-mia-fast" / "metrics.json").is_file()
    assert not (tmp_path / "data" / ".downloads").exists()


def test_demo_fetches_what_it_can_then_trains_on_it(tmp_path, no_network, capsys, monkeypatch):
    """CIC-IDS2017 needs a login; the improved re-extraction comes from the (local) server."""
    csv = write_improved(tmp_path / "sample.csv", features(240), ["BENIGN", "DDoS"] * 120).read_bytes()
    # Compressed once: gzip stamps the current second into its header, so two calls can differ.
    served = gzip.compress(csv, mtime=0)
    server = Server()
    server.files["/sample.csv.gz"] = served
    server.thread.start()
    try:
        remote = Remote("sample.csv.gz", (server.url("/sample.csv.gz"),), sha256(served))
        src = Source(
            dataset="cicids2017_improved", folder="cicids2017_improved", copy="a test copy", files=(remote,)
        )
        monkeypatch.setattr(dataset_module("cicids2017_improved"), "FETCH", src)
        assert main(tiny_args(tmp_path / "runs") + ["--tasks", "cicids2017"]) == 0
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    out = capsys.readouterr().out
    assert "cicids2017_improved: fetched a test copy into" in out
    table = out[out.index("## miamind demo") :]
    assert "| cicids2017 | real: cicids2017_improved |" in table and "GENERATED" not in table
    assert (tmp_path / "data" / "cicids2017_improved" / "sample.csv.gz").is_file()


def test_no_fetch_makes_no_request(tmp_path, no_network, capsys, monkeypatch):
    import miamind.data.fetch as fetch_mod

    def refuse(*a, **k):
        raise AssertionError("--no-fetch must not download")

    monkeypatch.setattr(fetch_mod, "download", refuse)
    assert main(tiny_args(tmp_path / "runs") + ["--tasks", "cicids2017", "--no-fetch"]) == 0
    assert "| cicids2017 | generated |" in capsys.readouterr().out
