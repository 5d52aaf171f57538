"""Learning curves from Lightning CSVLogger files: per-epoch reduction, errors, PNG."""

import numpy as np
import pytest
import torch

from miamind.viz import epoch_curves, plot_learning_curves


def _tiny_fit(log_dir, epochs=2):
    """A real Lightning fit + test with CSVLogger and LearningRateMonitor.

    Returns the metrics.csv path and the metrics Lightning reported at the end of fit and of test.
    """
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 2)

        def training_step(self, batch, _):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train/loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            logits = self.net(x)
            self.log("val/loss", torch.nn.functional.cross_entropy(logits, y))
            self.log("val/acc", (logits.argmax(1) == y).float().mean())

        def test_step(self, batch, _):
            x, y = batch
            self.log("test/acc", (self.net(x).argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=CSVLogger(log_dir, name="", version=""),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        callbacks=[LearningRateMonitor()],
    )
    model = Tiny()
    trainer.fit(model, loader, loader)
    after_fit = {k: float(v) for k, v in trainer.callback_metrics.items()}
    (after_test,) = trainer.test(model, loader, verbose=False)
    return log_dir / "metrics.csv", {**after_fit, **after_test}


def test_real_csvlogger_output(tmp_path, png_check):
    csv_path, final = _tiny_fit(tmp_path / "logs")
    curves = epoch_curves(csv_path)
    # train/loss_step + train/loss_epoch collapse to one per-epoch train/loss; lr rows (no epoch) kept.
    assert set(curves) == {"train/loss", "val/loss", "val/acc", "test/acc", "lr-SGD"}
    for name in ("train/loss", "val/loss", "val/acc", "lr-SGD"):
        np.testing.assert_array_equal(curves[name][0], [0, 1], err_msg=name)
    np.testing.assert_allclose(curves["lr-SGD"][1], [0.5, 0.5])
    assert len(curves["test/acc"][0]) == 1
    # The last epoch's values are the ones Lightning reported at the end of fit/test.
    assert curves["test/acc"][1][0] == pytest.approx(final["test/acc"])
    assert curves["train/loss"][1][-1] == pytest.approx(final["train/loss_epoch"], rel=1e-6)
    assert curves["val/acc"][1][-1] == pytest.approx(final["val/acc"], rel=1e-6)
    assert np.all(np.isfinite(curves["val/loss"][1]))

    out = plot_learning_curves(csv_path, tmp_path / "plots" / "curves.png", title="tiny")
    png_check(out, min_width=1200, min_height=300)


def _write(path, text):
    path.write_text(text)
    return path


def test_step_only_metric_is_averaged_per_epoch_and_epoch_values_kept(tmp_path):
    csv_path = _write(
        tmp_path / "metrics.csv",
        "epoch,step,train/loss,val/dice_membrane\n"
        "0,0,4.0,\n"
        "0,1,2.0,\n"
        "0,1,,0.5\n"
        "1,2,1.0,\n"
        "1,3,3.0,\n"
        "1,3,,0.75\n"
        ",3,,\n",
    )
    curves = epoch_curves(csv_path)
    np.testing.assert_array_equal(curves["train/loss"][0], [0, 1])
    np.testing.assert_allclose(curves["train/loss"][1], [3.0, 2.0])
    np.testing.assert_allclose(curves["val/dice_membrane"][1], [0.5, 0.75])


def test_epoch_suffix_only_stripped_when_step_twin_exists(tmp_path):
    csv_path = _write(
        tmp_path / "metrics.csv",
        "epoch,step,a_epoch,a_step,b_epoch\n0,0,,9.0,\n0,0,1.0,,2.0\n",
    )
    assert set(epoch_curves(csv_path)) == {"a", "b_epoch"}
    assert epoch_curves(csv_path)["a"][1].tolist() == [1.0]


def test_learning_rate_rows_take_the_epoch_of_their_step(tmp_path):
    csv_path = _write(
        tmp_path / "metrics.csv",
        "epoch,lr-AdamW,step,train/loss\n"
        ",0.1,0,\n"
        "0,,0,1.0\n"
        "0,,1,1.0\n"
        ",0.05,2,\n"
        "1,,2,0.5\n"
        ",0.01,5,\n",  # after the last known step: the last epoch
    )
    curves = epoch_curves(csv_path)
    np.testing.assert_array_equal(curves["lr-AdamW"][0], [0, 1])
    np.testing.assert_allclose(curves["lr-AdamW"][1], [0.1, 0.03])


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty metrics CSV"),
        ("epoch,step,train/loss\n", "no data rows"),
        ("step,train/loss\n0,1.0\n", "no 'epoch' column"),
        ("epoch,step,train/loss\n0,0,abc\n", "line 2, column 'train/loss': not a number"),
        ("epoch,step,train/loss\n0.5,0,1.0\n", "column 'epoch': not a non-negative integer"),
        ("epoch,step,train/loss\n0,0,\n1,1,\n", "no metric has a value"),
        ("epoch,step\n0,0\n", "no metric has a value"),
    ],
)
def test_bad_csv_errors_name_the_file(tmp_path, text, match):
    csv_path = _write(tmp_path / "bad_metrics.csv", text)
    with pytest.raises(ValueError, match=match) as info:
        plot_learning_curves(csv_path, tmp_path / "out.png")
    assert str(csv_path) in str(info.value)
    assert not (tmp_path / "out.png").exists()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        epoch_curves(tmp_path / "nope.csv")


def test_loss_only_file_plots_one_panel(tmp_path, png_check):
    csv_path = _write(tmp_path / "metrics.csv", "epoch,step,train/loss\n0,0,2.0\n1,1,1.0\n2,2,0.7\n")
    pixels = png_check(plot_learning_curves(csv_path, tmp_path / "c.png"), min_width=500, min_height=300)
    assert pixels.shape[1] < 900  # one panel, not three
