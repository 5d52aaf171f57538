"""One description of a dataset, the same for every loader, for whatever builds the model."""

from __future__ import annotations

from dataclasses import dataclass

from ..tasks.registry import KINDS as TASKS  # the kinds of task a dataset serves


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    ``input_shape`` is one sample as the model receives it, channels first: (C, H, W) for images,
    (1, F) for flow-feature vectors read by a 1-D CNN. ``class_names[i]`` names class index i of
    the targets (for segmentation: of every pixel's target).
    """

    name: str
    task: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"DatasetInfo.task must be one of {TASKS}, got {self.task!r}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.input_shape[0]
