"""Study files: validation, grid expansion, stable cell ids, N/A cells, commands."""

import shlex
import textwrap

import pytest

from miamind.cli import build_parser
from miamind.study import StudyError, load_study

TINY = """
name: tiny
protocol: {cicids2017: synthetic flows}
groups:
  - name: flows
    task: cicids2017
    models: [flowcnn, sklearn_logreg]
    attentions: [none, mia, coordatt]
    attention_kwargs: [{}, {rd_ratio: 0.25}]
    seeds: [0, 1]
    set: {data.synthetic: true, trainer.epochs: 1}
  - name: again
    task: cicids2017
    models: [flowcnn]
    attentions: [none]
    seeds: [1]
    set: {data.synthetic: true, trainer.epochs: 1}
  - name: unet-points
    task: isbi2012
    models: [unet]
    attentions: [mia]
    folds: [0, 1]
    sweep: {model.kwargs.attention_at: [[encoder], [decoder, skip]]}
    set: {model.kwargs.width: 8}
    reference_ignores: [model.kwargs.attention_at]
"""


def write(tmp_path, text, name="tiny.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_grid_expands_with_na_baselines_and_shared_cells(tmp_path):
    study = load_study(write(tmp_path, TINY))
    flows = [c for c in study.cells if c.group == "flows"]
    # flowcnn: none (kwargs only with attention) + mia x 2 kwargs + coordatt x 2 kwargs, x 2 seeds;
    # sklearn_logreg: one cell per seed
    assert len([c for c in flows if c.model == "flowcnn"]) == (1 + 2 + 2) * 2
    assert len([c for c in flows if c.model == "sklearn_logreg"]) == 2
    # the 'again' group's only cell is flows' (flowcnn, none, seed 1): one run, listed once
    assert not [c for c in study.cells if c.group == "again"]
    na = [c for c in flows if c.na_reason]
    assert {c.attention for c in na} == {"coordatt"} and "dims" in na[0].na_reason
    assert all(c.na_reason is None for c in flows if c.attention != "coordatt")
    unet = [c for c in study.cells if c.group == "unet-points"]
    assert sorted((c.fold, tuple(c.sweep["model.kwargs.attention_at"])) for c in unet) == [
        (0, ("decoder", "skip")),
        (0, ("encoder",)),
        (1, ("decoder", "skip")),
        (1, ("encoder",)),
    ]
    # the reference of both insertion points is one configuration: unet without attention
    assert len({c.reference_key() for c in unet}) == 1


def test_cell_ids_are_stable_unique_and_change_with_what_is_trained(tmp_path):
    a = load_study(write(tmp_path, TINY))
    b = load_study(write(tmp_path, TINY, "copy.yaml"))
    assert [c.id for c in a.cells] == [c.id for c in b.cells]
    assert len({c.id for c in a.cells}) == len(a.cells)
    changed = load_study(write(tmp_path, TINY.replace("trainer.epochs: 1}", "trainer.epochs: 2}"), "c.yaml"))
    assert not {c.id for c in changed.cells if c.task == "cicids2017"} & {c.id for c in a.cells}
    cell = next(c for c in a.cells if c.attention == "mia" and c.attention_kwargs)
    assert cell.id.startswith(f"cicids2017-flowcnn-mia-rd-ratio0.25-s{cell.seed}-")


def test_cell_command_is_a_valid_train_command(tmp_path):
    study = load_study(write(tmp_path, TINY))
    cell = next(c for c in study.cells if c.attention == "mia" and c.attention_kwargs and c.seed == 1)
    argv = shlex.split(cell.command("runs/x"))
    assert argv[0] == "miamind"
    args = build_parser().parse_args(argv[1:])
    assert (args.command, args.task, args.model, args.attention, args.seed) == (
        "train",
        "cicids2017",
        "flowcnn",
        "mia",
        1,
    )
    assert "model.attention_kwargs.rd_ratio=0.25" in args.set and "data.synthetic=true" in args.set
    unet = next(c for c in study.cells if c.group == "unet-points" and c.fold == 1)
    argv = shlex.split(unet.command("runs/y"))
    assert "data.fold=1" in argv and any(a.startswith("model.kwargs.attention_at=[") for a in argv)
    base = next(c for c in study.cells if c.model == "sklearn_logreg")
    args = build_parser().parse_args(shlex.split(base.command("runs/z"))[1:])
    assert args.command == "baseline" and args.model == "sklearn_logreg"


@pytest.mark.parametrize(
    "edit, message",
    [
        (("task: isbi2012", "task: mnist"), "task"),
        (("models: [unet]", "models: [unet, sklearn_rf]"), "cicids2017 only"),
        (("attentions: [mia]", "attentions: [mia, foo]"), "unknown attention 'foo'"),
        (("seeds: [1]", "seeds: [one]"), "seeds"),
        (("    reference_ignores", "    colour: red\n    reference_ignores"), "unknown keys \\['colour'\\]"),
        (("name: again", "name: flows"), "unique"),
        (("set: {model.kwargs.width: 8}", "set: {data.fold: 2}"), "folds"),
    ],
)
def test_bad_study_files_name_the_field(tmp_path, edit, message):
    old, new = edit
    assert old in TINY
    with pytest.raises(StudyError, match=message):
        load_study(write(tmp_path, TINY.replace(old, new, 1)))
    with pytest.raises(StudyError, match="no such file"):
        load_study(tmp_path / "missing.yaml")


def test_committed_study_files_load(tmp_path):
    from pathlib import Path

    studies = sorted((Path(__file__).parents[2] / "studies").glob("*.yaml"))
    assert studies, "studies/*.yaml missing"
    for path in studies:
        study = load_study(path, check_applicable=False)  # N/A probing is tested above; it builds every model
        assert study.cells and study.protocol, path


def test_isbi_fold_cells_resolve_to_a_config_per_fold(tmp_path):
    from miamind.engine.config import resolve_config

    study = load_study(write(tmp_path, TINY))
    folds = []
    for cell in (c for c in study.cells if c.task == "isbi2012"):
        args = build_parser().parse_args(shlex.split(cell.command(tmp_path / cell.id))[1:])
        cfg = resolve_config(args.task, args.preset, overrides={"seed": args.seed}, assignments=args.set)
        folds.append(cfg.data.fold)
        # the test fold is never used to choose weights: the last ones are evaluated
        assert cfg.checkpoint.monitor is None and cfg.checkpoint.evaluate == "last"
        assert cfg.model.kwargs["attention_at"] == cell.sweep["model.kwargs.attention_at"]
    assert sorted(folds) == [0, 0, 1, 1]


def test_study_cli_lists_cells_and_fails_in_one_line(tmp_path, capsys):
    from miamind.cli import main

    spec = write(tmp_path, TINY)
    assert main(["study", "list", str(spec), "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(load_study(spec).cells)
    assert sum(line.startswith("na ") for line in out) == 4 and all("miamind " in line for line in out)
    bad = write(tmp_path, TINY.replace("task: isbi2012", "task: mnist"), "bad.yaml")
    assert main(["study", "run", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"miamind: error: study file {bad}: group 'unet-points'.task")
