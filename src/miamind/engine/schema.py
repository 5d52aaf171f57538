"""The run configuration's schema: one pydantic model per section, one data model per task.

A run config is a :class:`RunConfig` (``cfg.optim.lr``, ``cfg.data.batch_size``...). Each task's
registry entry names its subclass (``Task.config``), which declares the task's ``data`` section
(and, for cifar10, the fastnet-only ``model.whitening_init``); a task registered from outside the
package brings its own. Default VALUES live in ``presets/defaults.yaml`` (or ``Task.defaults``);
this module says which keys exist, their types, allowed values and bounds. Every model forbids
unknown keys and is strict (``"0.1"`` is not a number, ``true`` not an integer), so a value keeps
the type it was written with and ``config.yaml`` round-trips unchanged.

Errors become one line naming the dotted key (:func:`config_error_message`): the phrase after
"must be" is a field's ``description``, or its ``Literal`` choices.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from ..tasks.registry import TASKS, get_task

__all__ = [
    "Augment",
    "CheckpointConfig",
    "CicIds2017Config",
    "CicIds2017Data",
    "Cifar10Config",
    "Cifar10Data",
    "Cifar10Model",
    "DataConfig",
    "EvalConfig",
    "Isbi2012Config",
    "Isbi2012Data",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "PRESETS",
    "RunConfig",
    "ScheduleConfig",
    "Section",
    "TTA_MODES",
    "TrainerConfig",
    "config_error_message",
    "rule_error",
]

Preset = Literal["paper", "fast", "fast12", "full"]
Optimizer = Literal["sgd", "adam", "adamw"]
Schedule = Literal["constant", "linear", "cosine"]
Precision = Literal["32", "64", "bf16-mixed", "16-mixed", "bf16-true"]
#: test-time augmentations of an image-classification task (``eval.tta``)
TtaMode = Literal["none", "flip", "flip_translate"]

PRESETS: tuple[str, ...] = get_args(Preset)
TTA_MODES: tuple[str, ...] = get_args(TtaMode)

# ---------------------------------------------------------------------------- value types
# A number keeps its YAML type (16 stays 16, 0.5 stays 0.5); bools, strings, nan and inf are not numbers.
Number = int | Annotated[float, Field(allow_inf_nan=False)]
PositiveNumber = Annotated[Number, Field(gt=0, description="a positive number")]
NonNegative = Annotated[Number, Field(ge=0, description=">= 0")]
PositiveInt = Annotated[int, Field(ge=1, description="a positive integer")]
NonNegativeInt = Annotated[int, Field(ge=0, description="an integer >= 0")]
OptionalPositiveInt = Annotated[
    Annotated[int, Field(ge=1)] | None, Field(description="null or a positive integer")
]
OptionalPositive = Annotated[Annotated[Number, Field(gt=0)] | None, Field(description="null or > 0")]
OptionalStr = Annotated[str | None, Field(description="null or a string")]
Flag = Annotated[bool, Field(description="true or false")]
Text = Annotated[str, Field(description="a string")]
FreeForm = Annotated[dict[str, Any], Field(description="a mapping")]
DataDir = Annotated[
    str | None,
    BeforeValidator(lambda v: os.fspath(v) if isinstance(v, os.PathLike) else v),
    Field(description="null or a folder path"),
]


def rule_error(message: str, key: str | None = None) -> PydanticCustomError:
    """A validator's error with its own wording: ``config key '<loc>[.key]' <message>``."""
    return PydanticCustomError("config_rule", "{message}", {"message": message, "key": key})


class Section(BaseModel):
    """A config section: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------------- common sections


class ModelConfig(Section):
    name: str
    attention: str | None = Field(description="an attention name or none")
    attention_kwargs: FreeForm  # constructor arguments, any keys
    kwargs: FreeForm  # extra model constructor arguments (e.g. width for unet)

    @field_validator("name", mode="before")
    @classmethod
    def _registered_model(cls, v: Any) -> Any:
        from ..models import list_models

        if v not in list_models():
            raise rule_error(f"must be one of {', '.join(list_models())}, got {v!r}")
        return v

    @field_validator("attention", mode="before")
    @classmethod
    def _registered_attention(cls, v: Any) -> Any:
        from ..attention import list_attention

        valid = ["none", *list_attention()]
        if v is not None and v not in valid:
            raise rule_error(f"must be one of {', '.join(valid)}, got {v!r}")
        return v


class OptimConfig(Section):
    name: Optimizer
    lr: PositiveNumber
    momentum: Annotated[Number, Field(description="a number")]  # sgd only
    nesterov: Flag  # sgd only
    betas: Annotated[list[Number], Field(min_length=2, max_length=2, description="two numbers")]  # adam(w)
    weight_decay: NonNegative
    #: lr multiplier of the group without weight decay (norms, biases)
    no_decay_lr_scale: PositiveNumber
    #: null = off; else evaluate an EMA of the weights (and BN statistics)
    ema_decay: Annotated[Annotated[Number, Field(gt=0, lt=1)] | None, Field(description="null or in (0, 1)")]
    ema_every_n_steps: PositiveInt  # update the EMA every n optimisation steps


class ScheduleConfig(Section):
    name: Schedule  # per optimisation step, after warm-up
    warmup_epochs: NonNegative  # linear warm-up from 0, may be fractional
    final_lr_ratio: Annotated[Number, Field(ge=0, le=1, description="in [0, 1]")]  # last lr / base lr


class LossConfig(Section):
    label_smoothing: Annotated[Number, Field(ge=0, lt=1, description="in [0, 1)")]


class EvalConfig(Section):
    tta: TtaMode  # image classification only; the test evaluation, not the per-epoch validation


def _as_str(v: Any) -> Any:
    return v if isinstance(v, str) else str(v)  # YAML reads `precision: 32` as an int


class TrainerConfig(Section):
    epochs: PositiveInt
    precision: Annotated[Precision, BeforeValidator(_as_str)]
    channels_last: Flag
    compile: Flag  # torch.compile the network in place (inductor) for training
    accelerator: Text  # cpu | gpu | auto
    devices: Annotated[
        Annotated[int, Field(ge=1)] | Literal["auto"], Field(description="a positive integer or 'auto'")
    ]
    num_nodes: PositiveInt
    strategy: Text  # auto | ddp | ddp_spawn ...
    threads: OptionalPositiveInt  # torch.set_num_threads; null = torch's default
    limit_train_batches: OptionalPositive  # int (batches) or float (fraction); smoke tests
    limit_eval_batches: OptionalPositive
    log_every_n_steps: PositiveInt
    progress_bar: Flag
    loggers: Annotated[list[str], Field(description="a list of logger names (csv, tensorboard, mlflow)")]
    mlflow_tracking_uri: OptionalStr  # null: $MLFLOW_TRACKING_URI, else sqlite:///<runs folder>/mlflow.db
    mlflow_experiment: OptionalStr  # null: miamind-<study> in a study, else miamind-<task>
    gradient_clip_val: Annotated[Annotated[Number, Field(ge=0)] | None, Field(description="null or >= 0")]

    @field_validator("loggers")
    @classmethod
    def _known_loggers(cls, names: list[str]) -> list[str]:
        from .loggers import LOGGERS

        for name in names:
            if name not in LOGGERS:
                raise rule_error(f"unknown logger {name!r} (valid: {', '.join(LOGGERS)})")
        return names


class CheckpointConfig(Section):
    monitor: Annotated[str | None, Field(description="null or a metric name such as val/acc")]
    mode: Literal["min", "max"]
    evaluate: Literal["best", "last"]  # which weights the final test uses


class DataConfig(Section):
    """Base of a task's ``data`` section. Each task's model declares all its keys, in the order
    ``config.yaml`` lists them; these four every task has."""

    if TYPE_CHECKING:
        data_dir: str | None
        synthetic: bool  # true: the task's small generated dataset (smoke tests, no files needed)
        batch_size: int
        eval_batch_size: int


class RunConfig(Section):
    """A whole run config. The field order is ``config.yaml``'s."""

    task: str
    preset: Preset | None
    seed: Annotated[int, Field(description="an integer")]
    model: ModelConfig
    optim: OptimConfig
    schedule: ScheduleConfig
    loss: LossConfig
    eval: EvalConfig
    trainer: TrainerConfig
    checkpoint: CheckpointConfig
    plots: Flag
    data: DataConfig

    @field_validator("task", mode="before")
    @classmethod
    def _registered_task(cls, v: Any) -> Any:
        if v not in TASKS:
            raise rule_error(f"must be one of {', '.join(TASKS)}, got {v!r}")
        return v

    @model_validator(mode="after")
    def _tta_only_for_image_classification(self) -> RunConfig:
        entry = get_task(self.task)
        if self.eval.tta != "none" and not entry.supports_tta:
            raise rule_error(
                f"test-time augmentation is for image classification, not {self.task} ({entry.kind})",
                "eval.tta",
            )
        return self


# ---------------------------------------------------------------------------- the tasks' sections


class Augment(Section):
    crop_pad: NonNegativeInt  # zero-pad + random crop; 0 = off
    flip: Flag
    #: each image flipped every other epoch (its first-epoch flip is random)
    alternate_flip: Flag = False
    cutout: NonNegativeInt  # Cutout square size; 0 = off

    @model_validator(mode="after")
    def _alternate_needs_flip(self) -> Augment:
        if self.alternate_flip and not self.flip:
            raise rule_error("needs 'augment.flip: true'", "alternate_flip")
        return self


class Cifar10Data(DataConfig):
    data_dir: DataDir
    synthetic: Flag = False
    batch_size: PositiveInt
    eval_batch_size: PositiveInt
    val_size: NonNegativeInt  # held out from the training images (stratified); 0 = none
    augment: Augment
    limit_train: OptionalPositiveInt  # only this many training images (stratified, seeded)
    limit_eval: OptionalPositiveInt = None  # a stratified subset of val and test; smoke tests


class Isbi2012Data(DataConfig):
    data_dir: DataDir
    synthetic: Flag = False
    fold: NonNegativeInt  # contiguous split of the labelled slices; val = one fold of whole slices
    n_folds: Annotated[int, Field(ge=2, description="an integer >= 2")]
    crop: PositiveInt
    crops_per_epoch: PositiveInt
    batch_size: PositiveInt
    eval_batch_size: PositiveInt
    pad_multiple: PositiveInt


class CicIds2017Data(DataConfig):
    data_dir: DataDir
    synthetic: Flag = False
    dataset: Literal["cicids2017", "cicids2017_improved"]
    label_mode: Literal["binary", "multiclass"]
    split: Annotated[
        list[Number], Field(min_length=3, max_length=3, description="three fractions [train, val, test]")
    ]
    nonfinite: Literal["drop", "clip"]
    scale: Literal["standard", "minmax", "none"] | None
    batch_size: PositiveInt
    eval_batch_size: PositiveInt
    class_weights: Flag
    limit_eval: OptionalPositiveInt = None
    drop_duplicates: Flag = True  # exact copies of a row (features + label) removed before the split


class Cifar10Model(ModelConfig):
    #: fastnet's stem set to patch-whitening filters of 5,000 training images
    whitening_init: Flag

    @model_validator(mode="after")
    def _whitening_is_fastnets(self) -> Cifar10Model:
        if self.whitening_init and self.name != "fastnet":
            raise rule_error(
                f"is a fastnet stem initialisation; model.name is {self.name!r}", "whitening_init"
            )
        return self


class Cifar10Config(RunConfig):
    model: Cifar10Model
    data: Cifar10Data


class Isbi2012Config(RunConfig):
    data: Isbi2012Data


class CicIds2017Config(RunConfig):
    data: CicIds2017Data


# ---------------------------------------------------------------------------- errors


def _field(model: type[BaseModel], loc: tuple) -> tuple[list[str], FieldInfo | None, type[BaseModel] | None]:
    """The field names along ``loc`` (union branch tags and list indices dropped), the last
    field's info, and the section model the path leads to (None past a leaf)."""
    names: list[str] = []
    info: FieldInfo | None = None
    cls: type[BaseModel] | None = model
    for part in loc:
        if cls is None or not isinstance(part, str) or part not in cls.model_fields:
            break
        names.append(part)
        info = cls.model_fields[part]
        annotation = info.annotation
        cls = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return names, info, cls


def _literals(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [v for arg in get_args(annotation) for v in _literals(arg)]


def _describe(info: FieldInfo | None, *, data_style: bool = False) -> str:
    if info is None:
        return "valid"
    if data_style:
        bounds = [m.ge for m in info.metadata if hasattr(m, "ge")]
        if info.annotation is int and bounds:
            return f"an int >= {bounds[0]}"
    if info.description:
        return info.description
    choices = ["null" if v is None else str(v) for v in _literals(info.annotation)]
    if choices:
        two = len(choices) == 2 and not data_style
        return f"{choices[0]} or {choices[1]}" if two else f"one of {', '.join(choices)}"
    return "valid"


def config_error_message(
    model: type[BaseModel], err: ValidationError, *, data_style: bool = False, task: str = ""
) -> str:
    """The first error of ``err`` (validating ``model``) in one line.

    Config style: ``config key 'optim.lr' must be a positive number, got -1``,
    ``unknown config key 'optim.lrr' (valid here: ...)``. Data style (a task's data section
    given to a data module as a plain mapping): ``data_cfg 'batch_size' must be an int >= 1, got 0``,
    ``unknown data_cfg key(s) ...``.
    """
    errors = err.errors(include_url=False)
    first = errors[0]
    kind, loc, ctx = first["type"], tuple(first["loc"]), first.get("ctx") or {}
    if kind in ("extra_forbidden", "missing"):
        where, _, section = _field(model, loc[:-1])
        section = section or model
        # every unknown (missing) key of the same section, in one message
        keys = [str(e["loc"][-1]) for e in errors if e["type"] == kind and tuple(e["loc"][:-1]) == loc[:-1]]
        valid = list(section.model_fields)
        required = [k for k, f in section.model_fields.items() if f.is_required()]
        if data_style:
            named = ", ".join(".".join([*where, k]) for k in keys) if where else ", ".join(map(repr, keys))
            of = "" if where else f" for task {task!r}:"
            if kind == "extra_forbidden":
                return f"unknown data_cfg key(s){of} {named}; valid keys: {', '.join(valid)}"
            return f"missing data_cfg key(s){of} {named}; required keys: {', '.join(required)}"
        dotted = ".".join([*where, keys[0]])
        if kind == "extra_forbidden":
            return f"unknown config key '{dotted}' (valid here: {', '.join(sorted(valid))})"
        return f"config key '{dotted}' is missing (required here: {', '.join(required)})"
    names, info, _ = _field(model, loc)
    if kind == "config_rule":
        names += str(ctx["key"]).split(".") if ctx.get("key") else []
        text = str(ctx["message"])
    else:
        text = f"must be {_describe(info, data_style=data_style)}, got {first['input']!r}"
    dotted = ".".join(names)
    return f"data_cfg '{dotted}' {text}" if data_style else f"config key '{dotted}' {text}"
