"""The CIFAR-10 speed recipe's parts (airbench's ideas): alternating flips, flip/translate TTA, a larger
lr for norms and biases, an EMA of the weights, the whitening initialisation from training images."""

import pytest
import torch
import torch.nn as nn

from miamind.data.augment import alternating_flips, random_crop_flip
from miamind.engine.build import build_datamodule_for, build_model
from miamind.engine.config import ConfigError, resolve_config
from miamind.engine.evaluate import evaluate
from miamind.engine.train import train
from miamind.tasks import synthetic
from miamind.tasks.modules import TaskModule

TINY = [
    "trainer.progress_bar=false",
    "trainer.threads=1",
    "model.kwargs.widths=[8, 16, 16]",
    "data.val_size=100",
    "data.batch_size=64",
    "data.eval_batch_size=200",
    "trainer.precision=32",
    "plots=false",
]


def test_alternating_flips_flip_each_image_every_other_epoch():
    parity = torch.rand(1000, generator=torch.Generator().manual_seed(0)) < 0.5
    e0, e1, e2 = (alternating_flips(parity, e) for e in range(3))
    assert torch.equal(e0, parity) and torch.equal(e2, parity)
    assert torch.equal(e1, ~parity)  # flipped in exactly one of any two consecutive epochs
    with pytest.raises(ValueError, match="bool"):
        alternating_flips(parity.int(), 0)


def test_crop_flip_takes_given_flips_and_draws_no_flip():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    flips = torch.tensor([True, False])
    out = random_crop_flip(x, pad=0, flips=flips)
    assert torch.equal(out[0], x[0].flip(-1)) and torch.equal(out[1], x[1])
    # the same crops as an unflipped call with the same generator: no flip was drawn from it
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    given = random_crop_flip(x, pad=2, generator=g1, flips=flips)
    crops = random_crop_flip(x, pad=2, generator=g2, flip=False)
    assert torch.equal(given[0], crops[0].flip(-1)) and torch.equal(given[1], crops[1])
    assert torch.equal(g1.get_state(), g2.get_state())
    with pytest.raises(ValueError, match=r"flips must be a \(2,\) bool tensor"):
        random_crop_flip(x, pad=0, flips=torch.tensor([True]))


def _module(tta):
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 4))
    cfg = resolve_config("cifar10", "fast")
    return TaskModule(
        model,
        kind="image-classification",
        class_names="abcd",
        optim=cfg.optim.model_dump(),
        schedule=cfg.schedule.model_dump(),
        loss=cfg.loss.model_dump(),
        tta=tta,
    ).eval()


def test_tta_averages_the_mirror_and_shifted_views():
    x = torch.randn(5, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    plain, flip, both = _module("none"), _module("flip"), _module("flip_translate")
    for m in (flip, both):
        m.model.load_state_dict(plain.model.state_dict())
    f = plain.model
    with torch.no_grad():
        torch.testing.assert_close(plain.predict_logits(x), f(x))
        mirrored = 0.5 * (f(x) + f(x.flip(-1)))
        torch.testing.assert_close(flip.predict_logits(x), mirrored)
        # the shifted views, built independently: one pixel down-right / up-left of the original
        down_right = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")[..., :6, :6]
        up_left = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")[..., 2:, 2:]
        assert torch.equal(down_right[..., 1:, 1:], x[..., :-1, :-1])
        assert torch.equal(up_left[..., :-1, :-1], x[..., 1:, 1:])
        expected = 0.5 * mirrored + 0.25 * (
            0.5 * (f(down_right) + f(down_right.flip(-1))) + 0.5 * (f(up_left) + f(up_left.flip(-1)))
        )
        torch.testing.assert_close(both.predict_logits(x), expected)


def test_tta_is_used_for_the_test_evaluation_and_not_for_the_per_epoch_validation(monkeypatch):
    module = _module("flip_translate")
    seen = []
    monkeypatch.setattr(module, "predict_logits", lambda x, tta=None: seen.append(tta) or module(x))
    batch = (torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 2, 3]))
    module.validation_step(batch, 0)
    module.test_step(batch, 0)
    assert seen == ["none", None]  # None: the module's own tta, flip_translate


def test_tta_is_for_image_classification_only():
    with pytest.raises(ConfigError, match="eval.tta"):
        resolve_config("cicids2017", "fast", assignments=["eval.tta=flip"])
    with pytest.raises(ConfigError, match="eval.tta"):
        resolve_config("cifar10", "fast", assignments=["eval.tta=rotate"])


def test_no_decay_group_gets_the_scaled_lr():
    cfg = resolve_config("cifar10", "fast", assignments=["optim.no_decay_lr_scale=64"])
    module = _module("none")
    module.optim_cfg = cfg.optim.model_dump()
    trainer = type("T", (), {"estimated_stepping_batches": 10, "max_epochs": 1})()
    module._trainer = trainer
    try:
        opt = module.configure_optimizers()["optimizer"]
    finally:
        module._trainer = None
    lr = cfg.optim.lr
    assert [g["initial_lr"] for g in opt.param_groups] == pytest.approx([lr, 64 * lr])
    assert [p.ndim for p in opt.param_groups[1]["params"]] == [1]  # the Linear's bias


def test_whitening_init_uses_training_images_and_freezes_the_stem(tmp_path):
    from miamind.models.fastnet import init_whitening

    cfg = resolve_config("cifar10", "fast", assignments=[*TINY, "model.whitening_init=true"])
    arrays = synthetic.synthetic_cifar10(n_train=600, n_test=200)
    dm = build_datamodule_for(cfg, arrays)
    dm.setup("fit")
    sample = dm.normalized_train_sample(5000)
    assert sample.shape == (500, 3, 32, 32)  # all 500 training images; the 100 validation ones are not there
    val_images = dm._eval["val"][0]
    from miamind.data.augment import normalize

    val_norm = normalize(val_images, dm.mean, dm.std)
    assert not any(torch.equal(v, s) for v in val_norm[:20] for s in sample)
    expected = build_model(cfg, dm.info)
    init_whitening(expected, sample)
    run = train(
        resolve_config(
            "cifar10",
            "fast",
            overrides={"trainer.epochs": 1},
            assignments=[*TINY, "model.whitening_init=true"],
        ),
        tmp_path / "run",
        arrays=arrays,
        quiet=True,
    )
    from miamind.engine.load import load_trained_model

    _, _, model, _ = load_trained_model(run.run_dir, "last")
    torch.testing.assert_close(model.stem.conv.weight, expected.stem.conv.weight)  # frozen: not trained
    with pytest.raises(ConfigError, match="model.whitening_init"):
        resolve_config("cifar10", "fast", assignments=["model.name=resnet18", "model.whitening_init=true"])


def test_ema_weights_are_what_is_validated_tested_and_saved(tmp_path):
    cfg = resolve_config(
        "cifar10",
        "fast",
        overrides={"trainer.epochs": 2},
        assignments=[*TINY, "optim.ema_decay=0.5", "optim.ema_every_n_steps=2"],
    )
    arrays = synthetic.synthetic_cifar10(n_train=600, n_test=200)
    run = train(cfg, tmp_path / "run", arrays=arrays, quiet=True)
    from miamind.engine.checkpoint_io import SafetensorsCheckpointIO

    ckpt = SafetensorsCheckpointIO().load_checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors")
    key = "model.head.weight" if "model.head.weight" in ckpt["state_dict"] else next(iter(ckpt["state_dict"]))
    assert not torch.equal(ckpt["state_dict"][key], ckpt["current_model_state"][key])  # averaged != raw
    again = evaluate(tmp_path / "run", which="best", split="test", arrays=arrays, quiet=True)
    assert again["metrics"] == pytest.approx(run.metrics["test"], abs=1e-6)


@pytest.mark.slow  # inductor compiles the network (~1-2 min on 2 cores)
def test_compiled_training_keeps_the_plain_networks_checkpoint(tmp_path):
    arrays = synthetic.synthetic_cifar10(n_train=600, n_test=200)
    cfg = resolve_config(
        "cifar10", "fast", overrides={"trainer.epochs": 1}, assignments=[*TINY, "trainer.compile=true"]
    )
    run = train(cfg, tmp_path / "run", arrays=arrays, quiet=True)
    from miamind.engine.checkpoint_io import SafetensorsCheckpointIO

    saved = SafetensorsCheckpointIO().load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    plain = build_model(cfg, build_datamodule_for(cfg, arrays).info).state_dict()
    # no "_orig_mod." prefix: evaluate, predict and export load it as any other run
    assert set(saved["state_dict"]) == {f"model.{k}" for k in plain}
    again = evaluate(tmp_path / "run", which="last", split="test", arrays=arrays, quiet=True)
    assert again["metrics"]["acc"] == pytest.approx(run.metrics["test"]["acc"], abs=0.02)


def test_compile_must_be_a_bool():
    with pytest.raises(ConfigError, match="trainer.compile"):
        resolve_config("cifar10", "fast", assignments=["trainer.compile=3"])
