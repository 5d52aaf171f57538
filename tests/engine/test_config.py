"""Config resolution: defaults < preset < file < flags < --set; unknown keys and bad values are errors."""

import pytest
import yaml

from miamind.engine.config import (
    ConfigError,
    flatten,
    load_config,
    parse_set,
    resolve_config,
    save_config,
    task_defaults,
)
from miamind.tasks.registry import task_names


@pytest.mark.parametrize("task", task_names())
@pytest.mark.parametrize("preset", ["paper", "fast", "full"])
def test_every_preset_resolves_for_every_task(task, preset):
    cfg = resolve_config(task, preset)
    assert cfg.task == task and cfg.preset == preset
    # Presets only override keys the schema has: the flattened key sets are identical.
    assert set(flatten(cfg)) - set(flatten(task_defaults(task))) <= {
        k for k in flatten(cfg) if ".kwargs." in k or ".attention_kwargs." in k
    }


@pytest.mark.parametrize(
    "task,model", [("cifar10", "resnet50"), ("isbi2012", "unet"), ("cicids2017", "flowcnn")]
)
def test_paper_preset_is_the_papers_protocol(task, model):
    cfg = resolve_config(task, "paper")
    assert cfg.model.name == model
    assert (
        cfg.optim.name,
        cfg.optim.lr,
        cfg.data.batch_size,
        cfg.trainer.epochs,
    ) == ("adam", 0.01, 16, 10)
    assert cfg.schedule.name == "constant" and cfg.trainer.precision == "32"


def test_precedence_file_then_flags_then_set(tmp_path):
    f = tmp_path / "over.yaml"
    f.write_text(yaml.safe_dump({"optim": {"lr": 0.5, "weight_decay": 0.1}, "seed": 3}))
    cfg = resolve_config(
        "cifar10",
        "fast",
        config_file=f,
        overrides={"optim.lr": 0.25, "seed": None},
        assignments=["optim.lr=0.125", "data.augment.cutout=8"],
    )
    assert cfg.optim.lr == 0.125  # --set beats the flag, which beat the file
    assert cfg.optim.weight_decay == 0.1  # from the file
    assert cfg.seed == 3  # a flag left as None does not override
    assert cfg.data.augment.model_dump() == {
        "crop_pad": 2,
        "flip": True,
        "alternate_flip": True,
        "cutout": 8,
    }  # deep merge


def test_unknown_key_names_the_key_and_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown config key 'optim\.lrr'.*valid here: .*lr"):
        resolve_config("cifar10", "fast", assignments=["optim.lrr=0.1"])
    with pytest.raises(ConfigError, match=r"unknown config key 'data\.fold'"):
        resolve_config("cifar10", "fast", assignments=["data.fold=2"])  # an isbi key, not a cifar one


def test_free_form_kwargs_accept_any_key():
    cfg = resolve_config(
        "isbi2012", "fast", assignments=["model.kwargs.width=8", "model.attention_kwargs.rd_ratio=0.25"]
    )
    assert cfg.model.kwargs["width"] == 8 and cfg.model.attention_kwargs == {"rd_ratio": 0.25}


@pytest.mark.parametrize(
    "assignment,match",
    [
        ("optim.lr=-1", r"'optim\.lr' must be a positive number"),
        ("trainer.epochs=0", r"'trainer\.epochs' must be a positive integer"),
        ("trainer.precision=8", r"'trainer\.precision' must be one of"),
        ("model.attention=nope", r"'model\.attention' must be one of none, .*mia.*got 'nope'"),
        ("model.name=vgg", r"'model\.name' must be one of"),
        ("schedule.name=step", r"'schedule\.name' must be one of"),
        ("loss.label_smoothing=1.5", r"'loss\.label_smoothing' must be in"),
        ("checkpoint.evaluate=middle", r"'checkpoint\.evaluate' must be best or last"),
        ("data.batch_size=0", r"'data\.batch_size' must be a positive integer"),
    ],
)
def test_bad_values_name_the_key(assignment, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config("cifar10", "fast", assignments=[assignment])


def test_parse_set_reads_yaml_values_and_rejects_malformed():
    assert parse_set("data.split=[0.8, 0.1, 0.1]") == {"data": {"split": [0.8, 0.1, 0.1]}}
    assert parse_set("data.data_dir=null") == {"data": {"data_dir": None}}
    assert parse_set("model.attention=se") == {"model": {"attention": "se"}}
    for bad in ("optim.lr", "=3", "optim..lr=1"):
        with pytest.raises(ConfigError, match="KEY=VALUE"):
            parse_set(bad)


def test_unknown_task_and_preset():
    with pytest.raises(ConfigError, match="unknown task 'mnist'"):
        resolve_config("mnist", "fast")
    with pytest.raises(ConfigError, match="unknown preset 'slow'"):
        resolve_config("cifar10", "slow")


def test_saved_config_round_trips_and_a_tampered_one_is_rejected(tmp_path):
    cfg = resolve_config("cicids2017", "fast", assignments=["seed=7"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    data["optim"]["momentun"] = 0.5
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown config key 'optim\.momentun'"):
        load_config(tmp_path / "bad.yaml")


def test_config_file_errors_name_the_file(tmp_path):
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping"):
        resolve_config("cifar10", "fast", config_file=tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("optim: {lr: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        resolve_config("cifar10", "fast", config_file=tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match=r"missing\.yaml: no such file"):
        resolve_config("cifar10", "fast", config_file=tmp_path / "missing.yaml")


def test_fast12_is_cifar10_only_and_says_so():
    cfg = resolve_config("cifar10", "fast12")
    assert cfg.model.kwargs == {} and cfg.model.whitening_init is True  # full-width fastnet
    with pytest.raises(ConfigError, match="preset 'fast12' has no recipe for task 'isbi2012'"):
        resolve_config("isbi2012", "fast12")
