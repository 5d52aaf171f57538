"""The SLURM executor's refusals that need no cluster: what to install, unknown keys, resources the
cluster lacks (sinfo's answer stood in), all before anything is submitted."""

import pytest

from miamind.study import load_study
from miamind.study import slurm as slurm_mod
from miamind.study.runner import cell_status
from miamind.study.slurm import ExecutorConfigError, SlurmExecutor, cell_params, load_executor_config

SPEC = """
name: s
groups:
  - name: g
    task: cicids2017
    models: [flowcnn]
    attentions: [none]
    seeds: [0]
    requires: gpu
    resources: {cpus: 4, mem: 8G, time: 30, partition: cpu}
"""


@pytest.fixture
def study(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(SPEC)
    return load_study(path)


def test_a_cell_asks_for_its_groups_resources_and_a_gpu(study):
    (cell,) = study.cells
    assert cell_params(cell) == {
        "cpus_per_task": 4,
        "slurm_mem": "8G",
        "timeout_min": 30,
        "slurm_partition": "cpu",
        "gpus_per_node": 1,
    }


def test_without_sbatch_the_message_says_what_to_install(study, tmp_path, monkeypatch):
    monkeypatch.setattr(slurm_mod.shutil, "which", lambda name: None)
    with pytest.raises(ExecutorConfigError, match="slurm-client"):
        SlurmExecutor().submit(study, [cell_status(study, c, tmp_path) for c in study.cells], tmp_path)


def test_without_submitit_the_message_names_the_extra(study, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_submitit(name, *args, **kwargs):
        if name == "submitit":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_submitit)
    with pytest.raises(ExecutorConfigError, match=r"pip install 'miamind\[slurm\]'"):
        SlurmExecutor().submit(study, [cell_status(study, c, tmp_path) for c in study.cells], tmp_path)


def test_a_gpu_request_on_a_partition_without_gpus_is_refused_naming_it(study, tmp_path, monkeypatch):
    monkeypatch.setattr(slurm_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(slurm_mod, "_cluster_resources", lambda: {"cpu": {"gres": [], "default": True}})
    statuses = [cell_status(study, c, tmp_path, gpu=True) for c in study.cells]
    with pytest.raises(ExecutorConfigError, match="asks for 1 GPU.*partition 'cpu' has no GPUs"):
        SlurmExecutor().check(statuses, tmp_path)
    monkeypatch.setattr(
        slurm_mod, "_cluster_resources", lambda: {"gpu": {"gres": ["gpu:4"], "default": True}}
    )
    with pytest.raises(ExecutorConfigError, match="partition 'cpu' does not exist"):
        SlurmExecutor().check(statuses, tmp_path)


def test_an_unknown_executor_key_is_refused_naming_it(study, tmp_path, monkeypatch):
    monkeypatch.setattr(slurm_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(slurm_mod, "_cluster_resources", lambda: {})
    config = tmp_path / "ex.yaml"
    config.write_text("slurm_partion: gpu\n")
    executor = SlurmExecutor(load_executor_config(config))
    with pytest.raises(ExecutorConfigError, match=f"executor config {config}: .*slurm_partion"):
        executor.check([cell_status(study, c, tmp_path, gpu=True) for c in study.cells], tmp_path)


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path):
    config = tmp_path / "ex.yaml"
    config.write_text("- a\n- b\n")
    with pytest.raises(ExecutorConfigError, match="expected a mapping"):
        load_executor_config(config)
    with pytest.raises(ExecutorConfigError, match="no such file"):
        load_executor_config(tmp_path / "missing.yaml")
