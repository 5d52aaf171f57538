"""PyTorch <-> MindSpore weight conversion: names, layouts, exact round trips, files, errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn as tnn
from safetensors.torch import load_file, save_file

import miamind.attention as tattn
import mindspore as ms
from miamind.engine.checkpoint_io import SafetensorsCheckpointIO, load_weights, save_weights
from miamind.mindspore import attention as A
from miamind.mindspore import convert as C
from mindspore import nn as msnn

C_IN, C_MID = 3, 8


def _randomise(module, seed=0):
    """Random parameters AND buffers (BN statistics, num_batches_tracked), so nothing is a default."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if value.dtype == torch.long:
                value.fill_(7)
            elif name.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=g) + 0.5)
            else:
                value.copy_(torch.randn(value.shape, generator=g))
    return module


def _torch_block():
    """Conv2d + BatchNorm2d + ReLU + MIA-Mind, as nn.Sequential (state-dict names 0.*, 1.*, 3.*)."""
    return _randomise(
        tnn.Sequential(
            tnn.Conv2d(C_IN, C_MID, 3, padding=1),
            tnn.BatchNorm2d(C_MID),
            tnn.ReLU(),
            tattn.MIAMind(C_MID, rd_channels=2, kernel_size=3),
        )
    ).eval()


def _ms_block():
    return msnn.SequentialCell(
        [
            msnn.Conv2d(C_IN, C_MID, 3, pad_mode="pad", padding=1, has_bias=True),
            msnn.BatchNorm2d(C_MID),
            msnn.ReLU(),
            A.MIAMind(C_MID, rd_channels=2, kernel_size=3),
        ]
    )


def _equal(a, b):
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert torch.equal(a[name], b[name]), name  # bitwise for these dtypes (no NaNs involved)


# ---------------------------------------------------------------------------------------------
# the name / layout mapping


def test_name_mapping_of_a_block_with_batch_norm():
    mapping = C.torch_to_mindspore_names(_torch_block().state_dict())
    assert mapping == {
        "0.weight": "0.weight",
        "0.bias": "0.bias",
        "1.weight": "1.gamma",
        "1.bias": "1.beta",
        "1.running_mean": "1.moving_mean",
        "1.running_var": "1.moving_variance",
        "1.num_batches_tracked": None,
        "3.fc1.weight": "3.fc1.weight",
        "3.fc1.bias": "3.fc1.bias",
        "3.fc2.weight": "3.fc2.weight",
        "3.fc2.bias": "3.fc2.bias",
        "3.spatial.weight": "3.spatial.weight",
        "3.spatial.bias": "3.spatial.bias",
    }


def test_mapped_names_and_shapes_are_the_mindspore_cells():
    """The mapping lands exactly on MindSpore's own parameter names (BN included)."""
    params = C.torch_to_mindspore(_torch_block().state_dict())
    cell = _ms_block()
    assert {n: a.shape for n, a in params.items()} == {
        n: tuple(p.shape) for n, p in cell.parameters_and_names()
    }


def test_block_with_batch_norm_runs_identically_after_conversion():
    t = _torch_block()
    cell = _ms_block()
    C.load_into_cell(cell, C.torch_to_mindspore(t.state_dict()))
    cell.set_train(False)  # BN with the moving statistics, as torch eval()
    x = np.random.default_rng(0).standard_normal((2, C_IN, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(
        cell(ms.Tensor(x)).asnumpy(),
        t(torch.from_numpy(x)).detach().numpy(),
        rtol=0,
        atol=1e-5,
    )


def test_conv1d_weight_layout():
    t = _randomise(tattn.MIAMind(C_MID, dims=1, rd_channels=2, kernel_size=5))
    params = C.torch_to_mindspore(t.state_dict())
    assert t.state_dict()["spatial.weight"].shape == (1, 1, 5)
    assert params["spatial.weight"].shape == (1, 1, 1, 5)  # MindSpore's Conv1d weight
    assert params["fc1.weight"].shape == (2, C_MID, 1, 1)
    np.testing.assert_array_equal(
        params["spatial.weight"][:, :, 0, :], t.state_dict()["spatial.weight"].numpy()
    )
    # without a reference the 4-D weights stay 4-D (a (1, k) Conv2d kernel looks the same) ...
    assert C.mindspore_to_torch(params)["spatial.weight"].shape == (1, 1, 1, 5)
    # ... with the names, or a reference, they come back as Conv1d weights
    names = ["fc1.weight", "fc2.weight", "spatial.weight"]
    _equal(C.mindspore_to_torch(params, conv1d_weights=names), t.state_dict())
    _equal(C.mindspore_to_torch(params, t.state_dict()), t.state_dict())


def test_arrays_are_copies():
    t = _randomise(tattn.MIAMind(C_MID, rd_channels=2))
    params = C.torch_to_mindspore(t.state_dict())
    params["fc1.bias"][:] = 0
    assert t.fc1.bias.abs().sum() > 0
    back = C.mindspore_to_torch(params)
    back["fc2.bias"].zero_()
    assert np.abs(params["fc2.bias"]).sum() > 0


# ---------------------------------------------------------------------------------------------
# exact round trips


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("name", ["mia", "mia_add", "mia_seq", "mia_code", "mia_adaptive"])
def test_layer_round_trip_through_a_cell_is_bitwise(name, dims):
    t = _randomise(tattn.create_attention(name, C_MID, dims=dims, rd_channels=2, kernel_size=3))
    cell = A.create_attention(name, C_MID, dims=dims, rd_channels=2, kernel_size=3)
    C.load_into_cell(cell, C.torch_to_mindspore(t.state_dict()))
    _equal(C.mindspore_to_torch(C.params_of(cell), t.state_dict()), t.state_dict())


def test_block_round_trip_restores_num_batches_tracked():
    sd = _torch_block().state_dict()
    params = C.torch_to_mindspore(sd)
    _equal(C.mindspore_to_torch(params, sd), sd)  # from the reference: 7
    without_ref = C.mindspore_to_torch(params)
    assert (
        without_ref["1.num_batches_tracked"].item() == 0
        and without_ref["1.num_batches_tracked"].dtype == torch.long
    )
    assert set(without_ref) == set(sd)
    for n in sd:
        if n != "1.num_batches_tracked":
            assert torch.equal(without_ref[n], sd[n]), n


def test_miamind_model_round_trip_is_bitwise():
    from miamind.models import create_model

    model = _randomise(create_model("flowcnn", num_classes=2, in_chans=1, attention="mia"))
    sd = model.state_dict()
    assert any(v.dim() == 3 for v in sd.values())  # Conv1d weights: the layout case is exercised
    assert any(n.endswith("running_mean") for n in sd)  # and batch norms
    params = C.torch_to_mindspore(sd)
    assert not any(n.endswith(("running_mean", "num_batches_tracked")) for n in params)
    _equal(C.mindspore_to_torch(params, sd), sd)
    model.load_state_dict(C.mindspore_to_torch(params, sd))  # loads strictly


def test_reference_keeps_a_torch_parameter_named_gamma():
    sd = {
        "scale.gamma": torch.randn(4),
        "bn.weight": torch.randn(4),
        "bn.running_mean": torch.randn(4),
        "bn.running_var": torch.rand(4),
        "bn.bias": torch.randn(4),
    }
    params = C.torch_to_mindspore(sd)
    assert set(params) == {"scale.gamma", "bn.gamma", "bn.beta", "bn.moving_mean", "bn.moving_variance"}
    back = C.mindspore_to_torch(params, sd)
    assert set(back) == set(sd)
    assert torch.equal(back["scale.gamma"], sd["scale.gamma"])


# ---------------------------------------------------------------------------------------------
# files


def test_safetensors_ckpt_safetensors_is_exact(tmp_path):
    from miamind.models import create_model

    sd = _randomise(create_model("flowcnn", num_classes=2, in_chans=1, attention="mia_code")).state_dict()
    meta = {"model": "flowcnn", "attention": "mia_code"}
    save_weights(tmp_path / "w.safetensors", sd, meta)

    params = C.safetensors_to_ckpt(tmp_path / "w.safetensors", tmp_path / "w.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.ckpt", "w.safetensors"]  # no temp files left
    loaded = C.load_ckpt(tmp_path / "w.ckpt")
    assert list(loaded) == list(params)
    for n in params:
        assert loaded[n].dtype == params[n].dtype and np.array_equal(loaded[n], params[n]), n

    # no reference: Conv1d layouts and num_batches_tracked come from the record in the .ckpt
    C.ckpt_to_safetensors(tmp_path / "w.ckpt", tmp_path / "back.safetensors")
    back, back_meta = load_weights(tmp_path / "back.safetensors")
    _equal(dict(sorted(back.items())), dict(sorted(sd.items())))
    assert back_meta == meta


def test_ckpt_written_by_mindspore_converts_with_a_reference(tmp_path):
    t = _torch_block()
    cell = _ms_block()
    C.load_into_cell(cell, C.torch_to_mindspore(t.state_dict()))
    ms.save_checkpoint(cell, str(tmp_path / "native.ckpt"))  # MindSpore's own writer, no layout record
    state = C.ckpt_to_safetensors(tmp_path / "native.ckpt", tmp_path / "t.safetensors", t.state_dict())
    _equal(state, t.state_dict())
    _equal(
        dict(sorted(load_file(str(tmp_path / "t.safetensors")).items())), dict(sorted(t.state_dict().items()))
    )
    # a reference that does not fit is named
    with pytest.raises(ValueError, match=r"unexpected \[.*'1\.weight', '1\.bias'\]"):
        C.ckpt_to_safetensors(
            tmp_path / "native.ckpt",
            tmp_path / "u.safetensors",
            {k: v for k, v in t.state_dict().items() if not k.startswith("1.")},
        )
    assert not (tmp_path / "u.safetensors").exists()


def test_load_into_cell_from_paths(tmp_path):
    t = _randomise(tattn.MIAMind(C_MID, rd_channels=2, kernel_size=3))
    save_file(t.state_dict(), str(tmp_path / "w.safetensors"))
    C.safetensors_to_ckpt(tmp_path / "w.safetensors", tmp_path / "w.ckpt")
    for src in ("w.safetensors", "w.ckpt"):
        cell = A.MIAMind(C_MID, rd_channels=2, kernel_size=3)
        C.load_into_cell(cell, tmp_path / src)
        _equal(C.mindspore_to_torch(C.params_of(cell), t.state_dict()), t.state_dict())
    # MindSpore's own loader reads our .ckpt too; the layout record comes back as a plain string
    raw = ms.load_checkpoint(str(tmp_path / "w.ckpt"))
    assert json.loads(raw.pop(C.LAYOUT_KEY))["format"] == "miamind.mindspore-ckpt"
    assert set(raw) == {n for n, _ in A.MIAMind(C_MID, rd_channels=2).parameters_and_names()}


def test_lightning_checkpoint_and_run_folder(tmp_path):
    t = _torch_block()
    checkpoint = {
        "epoch": 3,
        "global_step": 12,
        "state_dict": {
            **{f"model.{k}": v for k, v in t.state_dict().items()},
            "class_weights": torch.ones(2),
        },
        "hyper_parameters": {"lr": 0.1},
    }
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    SafetensorsCheckpointIO().save_checkpoint(checkpoint, run / "checkpoints" / "last.safetensors")
    for src in (run / "checkpoints" / "last.safetensors", run):  # run folder: best, else last
        state = C.load_torch_state_dict(src)
        _equal(
            dict(sorted(state.items())), dict(sorted(t.state_dict().items()))
        )  # prefix stripped, extras gone
    C.safetensors_to_ckpt(run, tmp_path / "from_run.ckpt")
    assert set(C.load_ckpt(tmp_path / "from_run.ckpt")) == set(C.torch_to_mindspore(t.state_dict()))


# ---------------------------------------------------------------------------------------------
# errors


def _loaded_mia():
    t = _randomise(tattn.MIAMind(C_MID, rd_channels=2, kernel_size=3))
    return t, C.torch_to_mindspore(t.state_dict())


def test_load_into_cell_names_a_missing_parameter():
    _, params = _loaded_mia()
    del params["fc2.bias"]
    with pytest.raises(ValueError, match=r"MIAMind: missing \['fc2\.bias'\]"):
        C.load_into_cell(A.MIAMind(C_MID, rd_channels=2, kernel_size=3), params)


def test_load_into_cell_names_an_unexpected_parameter():
    _, params = _loaded_mia()
    params["fc3.weight"] = np.zeros((2, 2, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"unexpected \['fc3\.weight'\]"):
        C.load_into_cell(A.MIAMind(C_MID, rd_channels=2, kernel_size=3), params)


def test_load_into_cell_names_a_wrong_shape_and_changes_nothing():
    _, params = _loaded_mia()
    params["fc1.weight"] = params["fc1.weight"].reshape(C_MID, 2, 1, 1)
    cell = A.MIAMind(C_MID, rd_channels=2, kernel_size=3)
    before = C.params_of(cell)
    with pytest.raises(
        ValueError, match=r"shape mismatch \[fc1\.weight: got \(8, 2, 1, 1\), expected \(2, 8, 1, 1\)\]"
    ):
        C.load_into_cell(cell, params)
    after = C.params_of(cell)
    assert all(np.array_equal(before[n], after[n]) for n in before)


def test_torch_tensors_torch_layout_and_bad_paths_are_refused(tmp_path):
    t, _ = _loaded_mia()
    with pytest.raises(TypeError, match="convert a PyTorch state dict with torch_to_mindspore"):
        C.load_into_cell(A.MIAMind(C_MID, rd_channels=2, kernel_size=3), t.state_dict())
    with pytest.raises(TypeError, match="fc1.weight: bfloat16"):
        C.torch_to_mindspore({"fc1.weight": torch.zeros(2, 2, dtype=torch.bfloat16)})
    with pytest.raises(ValueError, match=r"must end in \.ckpt"):
        C.safetensors_to_ckpt(tmp_path / "w.safetensors", tmp_path / "w.bin")
    with pytest.raises(ValueError, match=r"expected a \.safetensors file"):
        C.load_torch_state_dict(tmp_path / "model.pt")  # never unpickled
    with pytest.raises(FileNotFoundError, match="no such file"):
        C.load_ckpt(tmp_path / "absent.ckpt")
