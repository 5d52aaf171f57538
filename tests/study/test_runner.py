"""The study runner: skips finished cells, resumes interrupted ones, records failures, locks.

The runner's own logic is tested against a stand-in ``miamind`` package (a few lines that write
the files a run folder has) so these tests take seconds; ``test_tiny_real_study`` (slow) runs real
1-epoch cells on synthetic flows end to end.
"""

import json
import os
import shutil
import textwrap

import pytest

from miamind.study import load_study
from miamind.study.report import write_report
from miamind.study.runner import LOCK, cell_status, run_cell, run_study

FAKE_MAIN = """
import json, os, sys
from pathlib import Path

argv = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(json.dumps(argv) + "\\n")
if "--resume" in argv:
    run = Path(argv[argv.index("--resume") + 1])
    seed = json.loads((run / "config.yaml").read_text())["seed"]
else:
    run = Path(argv[argv.index("--out") + 1])
    seed = int(argv[argv.index("--seed") + 1])
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(json.dumps({"seed": seed}))
    if run.name in os.environ.get("FAKE_INTERRUPT", "").split(","):
        sys.exit(137)  # killed after its first checkpoint
    if run.name in os.environ.get("FAKE_FAIL", "").split(","):
        sys.exit(1)
attention = argv[argv.index("--attention") + 1] if "--attention" in argv else "none"
kill = run.name in os.environ.get("FAKE_KILL_AFTER_METRICS", "").split(",")
score = 0.80 + 0.01 * seed + {"se": 0.05, "ge": 0.05, "mia": -0.02 - 0.001 * seed}.get(attention, 0.0)
(run / "metrics.json").write_text(json.dumps({"test": {"f1_macro": score, "acc": score}, "parameters": 7}))
if kill:
    import signal
    os.kill(os.getpid(), signal.SIGKILL)
"""

SPEC = """
name: fake
groups:
  - name: g
    task: cicids2017
    models: [flowcnn]
    attentions: [none, se, mia, coordatt]
    seeds: [0, 1, 2]
    metrics: [f1_macro, acc]
"""


@pytest.fixture
def fake(tmp_path):
    pkg = tmp_path / "fake" / "miamind"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE_MAIN)
    spec = tmp_path / "fake.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    log = tmp_path / "calls.jsonl"
    env = {"PYTHONPATH": str(tmp_path / "fake"), "FAKE_LOG": str(log)}

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return load_study(spec), tmp_path / "runs", env, calls


def run(study, runs, env, **kw):
    lines = []
    out = run_study(study, runs_dir=runs, env=env, log=lines.append, gpu=False, **kw)
    return out, lines


def test_runs_all_then_skips_finished(fake):
    study, runs, env, calls = fake
    out, lines = run(study, runs, env)
    # 3 coordatt cells are N/A in flowcnn
    assert out == {"ran": 9, "failed": 0, "skipped_done": 0, "skipped_elsewhere": 0}
    assert len(calls()) == 9
    assert sum("skip" in line and ": na (" in line for line in lines) == 3
    progress = [line for line in lines if " done, " in line]
    assert progress[-1].endswith("9/9 done, 0 failed, 0 left, ETA 0m00s")
    assert "ETA" in progress[0] and "8 left" in progress[0]
    record = json.loads((study.run_dir(study.cells[0], runs) / "study_cell.json").read_text())
    assert record["status"] == "done" and record["attempts"][0]["rc"] == 0 and record["wall_s"] > 0
    assert record["command"].startswith("miamind train --task cicids2017")
    out, _ = run(study, runs, env)
    assert out == {"ran": 0, "failed": 0, "skipped_done": 9, "skipped_elsewhere": 0} and len(calls()) == 9


def test_interrupted_cell_is_resumed_and_failed_cell_retried(fake):
    study, runs, env, calls = fake
    cells = [c for c in study.cells if not c.na_reason]
    interrupted, failed = cells[1], cells[2]
    env = {**env, "FAKE_INTERRUPT": interrupted.id, "FAKE_FAIL": failed.id}
    out, lines = run(study, runs, env, jobs=2)
    assert out["ran"] == 7 and out["failed"] == 2
    assert cell_status(study, interrupted, runs).state == "resume"
    assert any(f"see {runs / interrupted.id / 'study.log'}" in line for line in lines)
    n = len(calls())
    out, _ = run(study, runs, {k: v for k, v in env.items() if not k.startswith("FAKE_") or k == "FAKE_LOG"})
    assert out == {"ran": 2, "failed": 0, "skipped_done": 7, "skipped_elsewhere": 0}
    again = calls()[n:]
    assert ["train", "--resume", str(runs / interrupted.id)] in again
    record = json.loads((runs / interrupted.id / "study_cell.json").read_text())
    assert [a["rc"] for a in record["attempts"]] == [137, 0] and record["attempts"][1]["resumed"]


def test_a_cell_locked_by_a_live_process_is_left_alone(fake):
    study, runs, env, calls = fake
    cell = next(c for c in study.cells if not c.na_reason)
    (runs / cell.id).mkdir(parents=True)
    (runs / cell.id / LOCK).write_text(json.dumps({"runner": os.getpid(), "child": None}))
    out, lines = run(study, runs, env, only=[cell.id])
    assert out["ran"] == 0 and not calls() and any("running" in line for line in lines)
    # a lock whose runner and child are gone is stale
    (runs / cell.id / LOCK).write_text(json.dumps({"runner": 2**22 + 12345, "child": None}))
    out, _ = run(study, runs, env, only=[cell.id])
    assert out["ran"] == 1 and not (runs / cell.id / LOCK).exists()


def test_a_cell_another_runner_took_or_finished_after_the_listing_is_not_run_again(fake):
    # Two runners with overlapping --only lists: each lists a cell as pending, then one of them
    # finishes it (or holds its lock) before the other reaches it.
    study, runs, env, calls = fake
    cell = next(c for c in study.cells if not c.na_reason)
    (runs / cell.id).mkdir(parents=True)
    (runs / cell.id / LOCK).write_text(json.dumps({"runner": os.getpid(), "child": None}))
    assert run_cell(study, cell, runs, env=env) == (None, 0.0)
    (runs / cell.id / LOCK).unlink()
    (runs / cell.id / "config.yaml").write_text(json.dumps({"seed": cell.seed}))
    (runs / cell.id / "metrics.json").write_text(json.dumps({"test": {"f1_macro": 0.5, "acc": 0.5}}))
    assert run_cell(study, cell, runs, env=env) == (None, 0.0)
    assert not calls() and not (runs / cell.id / LOCK).exists()
    assert not (runs / cell.id / "study_cell.json").exists()  # no attempt recorded for a run not made


def test_report_of_a_partial_study(fake, tmp_path):
    study, runs, env, calls = fake
    cells = [c for c in study.cells if not c.na_reason]
    fail = next(c for c in cells if c.attention == "se" and c.seed == 2)
    run(study, runs, {**env, "FAKE_FAIL": fail.id})
    out = write_report(study, runs_dir=runs, out=tmp_path / "res")
    csv_text = (out / "cells.csv").read_text()
    assert csv_text.count("\n") == 1 + 12
    assert "N/A: flowcnn: cannot build attention 'coordatt'" in csv_text and ",failed," in csv_text
    summary = json.loads((out / "summary.json").read_text())
    cmps = {c["label"]: c for c in summary["comparisons"] if c["primary"]}
    assert set(cmps) == {"flowcnn/se", "flowcnn/mia"} and summary["family_size"] == 1
    # se = none + 0.05 on the two seeds both finished: constant shift, CI of width 0, no t-test
    se = cmps["flowcnn/se"]
    assert se["n"] == 2 and se["mean_diff"] == pytest.approx(0.05) and se["p_ttest"] is None
    assert se["units"] == [[0, None], [1, None]]
    # mia = none - 0.02, -0.021, -0.022: mean -0.021, sd 0.001, t = -36.37 (df 2), p = 0.000755
    mia = cmps["flowcnn/mia"]
    assert mia["n"] == 3 and mia["mean_diff"] == pytest.approx(-0.021)
    assert mia["p_ttest"] == pytest.approx(0.000755, abs=2e-6) and mia["significant"]
    md = (out / "summary.md").read_text()
    # the command that writes it again, without a path of this machine
    assert 'miamind study report fake.yaml --runs-dir "$RUNS_DIR" --out res` on' in md
    assert summary["command"].endswith("--out res") and str(tmp_path) not in md
    assert summary["runs_dir"] == '"$RUNS_DIR"'
    csv_text = (out / "cells.csv").read_text()
    assert str(tmp_path) not in csv_text and '--out ""$RUNS_DIR""/cicids2017-flowcnn-' in csv_text
    assert "| flowcnn/se | 2 | +0.0500" in md and "failed 1" in md
    assert "flowcnn/mia ranks 3 of 3" in md and "-> worse" in md
    assert (out / "forest.png").stat().st_size > 1000
    page = (out / "index.html").read_text()
    assert "flowcnn/se" in page and "data:image/png;base64," in page and str(tmp_path) not in page

    # A finished cell whose run folder is gone keeps its committed row when the report is rewritten.
    gone = next(c for c in cells if c.attention == "mia" and c.seed == 1)
    before = next(line for line in (out / "cells.csv").read_text().splitlines() if line.startswith(gone.id))
    shutil.rmtree(runs / gone.id)
    write_report(study, runs_dir=runs, out=out)
    after = next(line for line in (out / "cells.csv").read_text().splitlines() if line.startswith(gone.id))
    assert after == before
    again = json.loads((out / "summary.json").read_text())
    assert {c["label"]: c for c in again["comparisons"] if c["primary"]}["flowcnn/mia"]["n"] == 3
    assert "1 finished cells are taken from the earlier `cells.csv`" in (out / "summary.md").read_text()
    # ... and only into the folder that holds that row
    assert ",done," not in next(
        line
        for line in (write_report(study, runs_dir=runs, out=tmp_path / "other") / "cells.csv")
        .read_text()
        .splitlines()
        if line.startswith(gone.id)
    )


@pytest.mark.slow
def test_tiny_real_study(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            name: tiny
            groups:
              - name: flows
                task: cicids2017
                models: [flowcnn, sklearn_logreg]
                attentions: [none, se]
                seeds: [0, 1]
                set: {data.synthetic: true, trainer.epochs: 1, trainer.progress_bar: false, plots: false}
            """
        )
    )
    study = load_study(spec)
    out = run_study(study, runs_dir=tmp_path / "runs", jobs=2, log=print, gpu=False)
    assert out == {"ran": 6, "failed": 0, "skipped_done": 0, "skipped_elsewhere": 0}
    res = write_report(study, runs_dir=tmp_path / "runs", out=tmp_path / "res")
    import csv

    with open(res / "cells.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # commit and environment as the training processes recorded them (provenance.json)
    assert all(r["environment"].startswith("torch ") and r["commit"] for r in rows)
    summary = json.loads((res / "summary.json").read_text())
    assert {c["label"] for c in summary["comparisons"] if c["primary"]} == {"flowcnn/se", "sklearn_logreg"}


def test_thread_count_is_recorded_and_leads_the_rerun_command(fake):
    from miamind.study.runner import CELL_FILE, rerun_command

    study, runs, env, _ = fake
    run(study, runs, {**env, "OMP_NUM_THREADS": "1"})
    cell = study.cells[0]
    record = json.loads((study.run_dir(cell, runs) / CELL_FILE).read_text())
    assert record["attempts"][0]["omp_num_threads"] == "1"
    assert rerun_command(cell, study.run_dir(cell, runs), record).startswith(
        "OMP_NUM_THREADS=1 miamind train "
    )
    # attempts with different (or unrecorded) thread counts: no single value to put in front
    record["attempts"].append({**record["attempts"][0], "omp_num_threads": "2"})
    assert rerun_command(cell, study.run_dir(cell, runs), record).startswith("miamind train ")
    assert rerun_command(cell, study.run_dir(cell, runs), None).startswith("miamind train ")


def test_commit_of_the_imported_source(tmp_path):
    from miamind.engine.provenance import source_commit

    assert source_commit(tmp_path) is None  # not a checkout: the installed version says what it is
    commit = source_commit()  # this checkout (tests run from one)
    assert commit is None or len(commit.removesuffix("+dirty")) == 40


def test_every_attempt_records_host_exit_and_outcome(fake):
    study, runs, env, _ = fake
    cell = study.cells[0]
    run(study, runs, {**env, "FAKE_INTERRUPT": cell.id}, only=[cell.id])
    run(study, runs, env, only=[cell.id])
    record = json.loads((study.run_dir(cell, runs) / "study_cell.json").read_text())
    first, second = record["attempts"]
    assert (first["rc"], first["outcome"], first["resumed"]) == (137, "failed", False)
    assert (second["rc"], second["outcome"], second["resumed"]) == (0, "done", True)
    assert first["host"] and first["started"] <= first["ended"] and record["status"] == "done"


def test_a_child_killed_by_a_signal_is_never_done(fake):
    study, runs, env, _ = fake
    cell = study.cells[0]
    # the stand-in writes metrics.json and then dies of SIGKILL: exit by signal is not done
    env = {**env, "FAKE_KILL_AFTER_METRICS": cell.id}
    out, _ = run(study, runs, env, only=[cell.id])
    record = json.loads((study.run_dir(cell, runs) / "study_cell.json").read_text())
    assert out["failed"] == 1 and record["status"] == "failed"
    assert record["attempts"][0]["signal"] == "SIGKILL"
    assert cell_status(study, cell, runs).state == "resume"  # its metrics.json was set aside


def test_a_lock_of_another_host_is_not_taken_over(fake):
    from miamind.study.runner import LOCK, take_lock

    study, runs, env, calls = fake
    cell = study.cells[0]
    run_dir = study.run_dir(cell, runs)
    run_dir.mkdir(parents=True)
    (run_dir / LOCK).write_text(json.dumps({"executor": "local", "host": "elsewhere", "runner": 1}))
    assert cell_status(study, cell, runs).state == "running"
    assert not take_lock(run_dir, {"runner": os.getpid()})
    assert run_cell(study, cell, runs, env=env) == (None, 0.0) and not calls()


def test_report_tables_of_a_group_with_no_finished_cell_are_well_formed(tmp_path):
    # A group whose cells all wait for a GPU has no metric columns: header, rule and rows still
    # have the same number of columns (the rule once had one fewer).
    spec = tmp_path / "gpu.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            name: gpu
            groups:
              - name: g
                task: cicids2017
                models: [flowcnn]
                attentions: [none, mia]
                seeds: [0, 1]
                requires: gpu
            """
        )
    )
    out = write_report(load_study(spec), runs_dir=tmp_path / "runs", out=tmp_path / "res")
    md = (out / "summary.md").read_text()
    table = md[md.index("### g") :].split("\n\n")[1].splitlines()
    assert [line.count("|") for line in table] == [3, 3, 3, 3], table


def test_a_run_listed_by_two_groups_is_compared_in_both_and_tested_once(fake, tmp_path):
    _, runs, env, _ = fake
    spec = tmp_path / "shared.yaml"
    spec.write_text(
        textwrap.dedent(
            """
            name: shared
            groups:
              - {name: a, task: cicids2017, models: [flowcnn], attentions: [none, se, mia], seeds: [0, 1, 2]}
              - {name: b, task: cicids2017, models: [flowcnn], attentions: [none, mia], seeds: [0, 1, 2]}
              - name: c
                task: cicids2017
                models: [flowcnn]
                attentions: [mia, se]
                seeds: [0, 1, 2]
                reference: {attention: mia}
            """
        )
    )
    study = load_study(spec)
    assert len(study.cells) == 9 and len(study.members) == 3 * 3 + 2 * 3 + 2 * 3
    run(study, runs, env)
    out = write_report(study, runs_dir=runs, out=tmp_path / "res")
    assert (out / "cells.csv").read_text().count("\n") == 1 + 9  # one row per run
    summary = json.loads((out / "summary.json").read_text())
    cmps = {(c["group"], c["label"]): c for c in summary["comparisons"] if c["primary"]}
    assert set(cmps) == {("a", "flowcnn/se"), ("a", "flowcnn/mia"), ("b", "flowcnn/mia"), ("c", "flowcnn/se")}
    # se - mia = 0.07 + 0.001 * seed: mean 0.071, against mia in group c
    assert cmps[("c", "flowcnn/se")]["reference"] == "flowcnn/mia"
    assert cmps[("c", "flowcnn/se")]["mean_diff"] == pytest.approx(0.071)
    # mia vs none, listed by a and b, is one test: the family is {mia vs none, se vs mia} (se vs none
    # is a constant shift, no p). se vs mia (t = 0.071 / (0.001 / sqrt 3) = 123) has the smaller p
    # and gets 2 x p; mia vs none (p 0.000755, as in test_report_of_a_partial_study) the larger and
    # keeps 1 x p -- in a and in b alike. Counted twice, it would get 2 x p or more.
    assert summary["family_size"] == 2
    p_se = cmps[("c", "flowcnn/se")]["p_ttest"]
    assert p_se < 0.000755 / 2 and cmps[("c", "flowcnn/se")]["p_holm"] == pytest.approx(2 * p_se)
    for group in "ab":
        mia = cmps[(group, "flowcnn/mia")]
        assert mia["p_ttest"] == pytest.approx(0.000755, abs=2e-6) and mia["p_holm"] == mia["p_ttest"]


def test_a_comparison_that_repeats_another_exactly_is_one_test_for_holm(fake, tmp_path):
    study, runs, env, _ = fake
    spec = tmp_path / "repeat.yaml"
    spec.write_text(SPEC.replace("[none, se, mia, coordatt]", "[none, se, ge, mia]"))
    study = load_study(spec)
    run(study, runs, env)
    summary = json.loads(
        (write_report(study, runs_dir=runs, out=tmp_path / "r") / "summary.json").read_text()
    )
    cmps = {c["label"]: c for c in summary["comparisons"] if c["primary"]}
    assert summary["family_size"] == 1  # mia's t-test; se's (= ge's) constant shift has none
    assert cmps["flowcnn/ge"]["same_test_as"] == "flowcnn/se" and "same_test_as" not in cmps["flowcnn/se"]
    assert cmps["flowcnn/ge"]["p_holm"] == cmps["flowcnn/se"]["p_holm"]
