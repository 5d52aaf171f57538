"""``miamind predict`` and ``miamind visualize``: use a trained run folder on new inputs.

Inputs are prepared with the statistics the run fitted on its training split
(``RUN_DIR/preprocess.json``), exactly as its evaluation data were.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._atomic import PathLike
from ..tasks.registry import get_task
from .build import build_datamodule_for
from .hf_folder import is_model_folder, load_model_folder
from .load import load_trained_model
from .run_folder import RunError, load_preprocess, write_csv
from .summary import format_table


def predict(
    run_dir: PathLike,
    inputs: Sequence[PathLike],
    *,
    which: str = "best",
    out: PathLike | None = None,
    batch_size: int = 64,
    quiet: bool = False,
) -> list[dict[str, object]]:
    """Class probabilities (classification) or membrane/cell masks (segmentation) for ``inputs``.

    ``run_dir``: a run folder (its ``which`` checkpoint) or a model folder written by
    ``miamind export --format hf``.

    Classification: one row per image / CSV line with the predicted class and every class's
    probability; written to ``out`` as CSV when given, printed otherwise. Segmentation: one PNG mask
    per slice (0 = membrane, 255 = cell, the label files' convention) in the folder ``out``
    (default ``RUN_DIR/predictions``), and a row per slice with its membrane fraction.
    """
    import numpy as np
    import torch

    from ..data.isbi2012 import pad_to_multiple
    from ..tasks.inputs import load_inputs

    if is_model_folder(run_dir):  # exported with `miamind export --format hf`
        cfg, info, model, state = load_model_folder(run_dir)
    else:
        cfg, info, model, _ = load_trained_model(run_dir, which)
        state = load_preprocess(Path(run_dir))
    x, names = load_inputs(cfg.task, [str(p) for p in inputs], state)
    rows: list[dict[str, object]] = []
    if get_task(cfg.task).kind == "segmentation":
        from PIL import Image

        folder = Path(out) if out else Path(run_dir) / "predictions"
        folder.mkdir(parents=True, exist_ok=True)
        h, w = x.shape[-2:]
        with torch.no_grad():
            for i, name in enumerate(names):
                xi, _ = pad_to_multiple(x[i : i + 1], dict(cfg.data)["pad_multiple"])
                pred = model(xi).argmax(1)[0, :h, :w].numpy().astype(np.uint8)
                parts = name.split(":page ")
                stem = Path(parts[0]).stem + (f"-{parts[1]}" if len(parts) > 1 else "")
                mask_path = folder / f"{stem}_mask.png"
                Image.fromarray(pred * 255).save(mask_path)
                fraction = round(float((pred == 0).mean()), 6)
                rows.append({"input": name, "mask": str(mask_path), "membrane_fraction": fraction})
    else:
        with torch.no_grad():
            batches = (x[start : start + batch_size] for start in range(0, len(x), batch_size))
            probs = torch.cat([torch.softmax(model(xb).float(), 1) for xb in batches])
        for name, p in zip(names, probs, strict=True):
            row: dict[str, object] = {
                "input": name,
                "predicted": info.class_names[int(p.argmax())],
                "probability": round(float(p.max()), 6),
            }
            row.update({f"p_{c}": round(float(v), 6) for c, v in zip(info.class_names, p, strict=True)})
            rows.append(row)
        if out:
            write_csv(Path(out), rows)
    if not quiet:
        shown = [{k: str(v) for k, v in r.items() if not k.startswith("p_")} for r in rows[:20]]
        print(format_table(shown))
        if len(rows) > 20:
            print(f"... {len(rows) - 20} more rows" + (f" in {out}" if out else ""))
    return rows


def visualize(run_dir: PathLike, *, n: int = 4, which: str = "best", arrays=None) -> list[Path]:
    """Attention maps of the run's model on ``n`` held-out examples -> ``RUN_DIR/plots/attention_maps.png``.

    For each MIA-family layer: the channel gate w_c as a bar chart and the spatial gate w_s as a heat
    map over the input. Attentions without these two gates (SE, CBAM, ...) have nothing to draw and
    are reported as an error.
    """
    import torch

    from ..viz import capture_attention, plot_attention_maps

    run_dir = Path(run_dir)
    cfg, info, model, _ = load_trained_model(run_dir, which)
    task = get_task(cfg.task)
    if not task.images:
        raise RunError(
            f"viz maps draws attention over images; the {task.name} task has no images ({task.kind})"
        )
    dm = build_datamodule_for(cfg, arrays)
    dm.setup("test")
    x, y = dm.example_batch(n, split="val")
    captures = capture_attention(model, x)
    assert isinstance(captures, list)  # without return_output
    if not captures:
        raise RunError(
            f"{run_dir}: the model has no MIA-family attention layer "
            f"(attention is {cfg.model.attention!r}); nothing to visualise"
        )
    with torch.no_grad():
        logits = model(x)
    state = load_preprocess(run_dir)
    denorm = (state["mean"], state["std"]) if "mean" in state and "std" in state else None
    out = run_dir / "plots" / "attention_maps.png"
    # Segmentation: the padded slice as the network saw it, so w_s lines up with the image under it.
    extra: dict = {}
    if task.kind == "image-classification":
        extra = dict(class_names=info.class_names, labels=y.tolist(), predictions=logits.argmax(1).tolist())
    title = f"{cfg.model.name} + {cfg.model.attention}"
    plot_attention_maps(x, captures, out, denormalize=denorm, max_images=n, title=title, **extra)
    return [out]
