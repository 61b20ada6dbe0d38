"""Typed run configuration: what to train, on which data, how, and where results go.

Plain dataclasses (no torch import) so the command line and the TUI form can parse and validate
instantly. Every field has a docstring; `field_docs()` reads them for help texts.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import math
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .errors import ConfigError, FieldError
from .transform_specs import TransformSpec, check_spec, parse_pipeline

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "imagefolder", "fake")
MODELS = ("mnist-mlp", "cnn", "resnet18")
OPTIMIZERS = ("sgd", "sgd-momentum", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine", "one-cycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BAD_SAMPLES = ("skip", "fail")
TASK_FROM_FIT = "python"  # data.task of a run whose Task was handed to ptviz.fit() in a script
# The data settings a task run reads; a task brings its own data, so the others (data set, files, image
# pipeline, normalisation, residency) describe only the built-in data sets.
TASK_DATA_FIELDS = ("data.task", "data.batch_size", "data.test_batch_size", "data.workers")
FREEZE_EDIT = re.compile(r"[+-][A-Za-z0-9_.]*")  # matched whole (fullmatch): no trailing newline slips by
# An epoch result early stopping can watch: train_loss, val_accuracy, test_mae (a task's metric), ema_test_loss...
EARLY_STOP_METRIC = re.compile(r"none|(ema_)?(train|val|test)_[A-Za-z0-9_]+")  # matched whole (fullmatch)
EARLY_STOP_MODES = ("auto", "min", "max")


def _rule(**kw: Any) -> dict[str, Any]:
    return kw


@dataclass
class DataConfig:
    """Which data set to load and how to turn its images into model inputs."""

    dataset: str = field(default="digits", metadata=_rule(choices=DATASETS))
    """Data set name: digits (embedded), mnist, fashion-mnist, cifar10, imagefolder or fake."""
    task: str = field(default="", metadata=_rule(task=True))
    """Your own task instead of a data set: path/task.py:factory or package.module:factory returning a ptviz.Task."""
    root: str = "data"
    """Folder that holds (or will receive) the data set's files; for imagefolder, the class folders."""
    download: bool = False
    """Allow downloading a missing data set; when false, missing files are an error."""
    batch_size: int = field(default=64, metadata=_rule(min=1, max=1_000_000))
    """Training batch size."""
    test_batch_size: int = field(default=1000, metadata=_rule(min=1, max=1_000_000))
    """Batch size for evaluation on the validation and test sets."""
    val_split: float = field(default=0.0, metadata=_rule(min=0.0, below=1.0))
    """Share of the training set held out for validation (0 keeps it all for training)."""
    workers: int = field(default=0, metadata=_rule(min=0, max=64))
    """DataLoader worker processes for data sets read from disk per batch (imagefolder)."""
    bad_samples: str = field(default="skip", metadata=_rule(choices=BAD_SAMPLES))
    """An image file that does not decode: skip (replaced by the next readable one of its split, named in a
    warning and counted) or fail (the run stops, naming the file)."""
    transforms: list[TransformSpec] = field(default_factory=list)
    """Image pipeline in order, on tensors in [0, 1]; random transforms apply to training only."""
    mean: tuple[float, ...] = field(default=(0.5,), metadata=_rule(min=-1e6, max=1e6))
    """Normalize mean per channel, applied after the pipeline; empty for no normalisation."""
    std: tuple[float, ...] = field(default=(0.5,), metadata=_rule(min=1e-6, max=1e6))
    """Normalize standard deviation per channel; one value per mean value."""
    resident: bool = True
    """Keep a data set that fits in memory as uint8 tensors on the training device (fast path)."""
    fake_size: int = field(default=1000, metadata=_rule(min=10, max=10_000_000))
    """Number of training images of the fake data set (its test set is a fifth of that)."""


@dataclass
class ModelConfig:
    """Which network to build."""

    name: str = field(default="mnist-mlp", metadata=_rule(model=True))
    """Model: mnist-mlp, cnn, resnet18, or your own as package.module:factory or path/file.py:factory."""
    pretrained: bool = False
    """Start from pretrained weights (resnet18: ImageNet weights from the torch hub cache)."""
    freeze_backbone: bool = False
    """Freeze every parameter except the classification head (a linear probe); while training, a frozen module
    runs in eval mode: BatchNorm keeps its running statistics and dropout is off."""
    num_classes: int = field(default=0, metadata=_rule(min=0, max=100_000))
    """Output classes; 0 takes the data set's class count."""
    freeze: list[str] = field(default_factory=list)
    """Freeze edits applied in order after building: -name freezes a module subtree, +name unfreezes it,
    a lone - or + means the whole model (the tutorial's fine-tuning is: -, +fc); frozen modules run in eval mode."""


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule."""

    optimizer: str = field(default="sgd", metadata=_rule(choices=OPTIMIZERS))
    """Optimizer: sgd, sgd-momentum, adam or adamw."""
    lr: float = field(default=0.01, metadata=_rule(above=0.0, max=100.0))
    """Learning rate (peak learning rate for one-cycle)."""
    momentum: float = field(default=0.9, metadata=_rule(min=0.0, below=1.0))
    """Momentum for sgd-momentum (ignored by the others)."""
    weight_decay: float = field(default=0.0, metadata=_rule(min=0.0, max=1.0))
    """L2 penalty (decoupled for adamw)."""
    scheduler: str = field(default="none", metadata=_rule(choices=SCHEDULERS))
    """Learning-rate schedule: none, step (every step_size epochs ×gamma), cosine or one-cycle."""
    step_size: int = field(default=5, metadata=_rule(min=1, max=100_000))
    """Epochs between decays of the step schedule."""
    gamma: float = field(default=0.1, metadata=_rule(above=0.0, max=1.0))
    """Decay factor of the step schedule."""
    warmup_steps: int = field(default=0, metadata=_rule(min=0, max=1_000_000_000))
    """Optimizer steps whose learning rate ramps linearly up to the scheduled one (step s of W uses s/W of it;
    0: off). A learning rate set during warm-up is the ramp's target."""


@dataclass
class TrainConfig:
    """How long and where to train."""

    epochs: int = field(default=10, metadata=_rule(min=1, max=1_000_000))
    """Number of passes over the training set."""
    max_steps: int = field(default=0, metadata=_rule(min=0, max=2**63 - 1))
    """Stop after this many optimizer steps in total (0: no limit)."""
    device: str = field(default="auto", metadata=_rule(choices=DEVICES))
    """Device: auto (cuda, then mps, then cpu), cpu, cuda or mps."""
    seed: int = field(default=0, metadata=_rule(min=0, max=2**63 - 1))
    """Seed for weights, shuffling and augmentation; the same seed repeats a run exactly on CPU."""
    precision: str = field(default="auto", metadata=_rule(choices=PRECISIONS))
    """Arithmetic: auto (bf16 for convnets on CUDA, else fp32), fp32, bf16 (autocast) or fp16 (CUDA only)."""
    log_interval: int = field(default=10, metadata=_rule(min=1, max=1_000_000))
    """Steps between reads of the loss from the device (the only sync point of the step loop)."""
    compile: bool = False
    """Compile the model with torch.compile (steps on a frozen backbone's cached features run the head alone)."""
    cache_features: bool = True
    """With a frozen backbone, compute its features once per split (training's only without random transforms)."""
    fast_paths: bool = True
    """Frozen-backbone shortcuts and channels-last; false runs every step through the whole model with
    autograd, and the results are identical."""
    threads: int = field(default=0, metadata=_rule(min=0, max=1024, auto=True))
    """Torch's intra-op threads for CPU work; 0 or auto: one per core that other processes leave idle when the
    run starts (OMP_NUM_THREADS wins when set). Set it for runs that must repeat bit for bit."""
    accumulate: int = field(default=1, metadata=_rule(min=1, max=100_000))
    """Batches whose gradients add up to one optimizer step, weighted as one batch that size (1: off); steps,
    max_steps, log rows and commands count optimizer steps."""
    clip_norm: float = field(default=0.0, metadata=_rule(min=0.0, max=1e12))
    """Scale the gradients down to this global L2 norm before each optimizer step and chart the norm they had
    (0: off)."""
    ema_decay: float = field(default=0.0, metadata=_rule(min=0.0, below=1.0))
    """Keep an exponential moving average of the weights (ema = decay*ema + (1-decay)*weights each step),
    evaluated each epoch and saved as the checkpoint's "ema"; it then decides best.pt (0: off)."""
    early_stop_metric: str = field(default="none", metadata=_rule(early_stop=True))
    """Epoch result whose stalling ends the run: val_loss, test_accuracy, a task's val_<metric>, ema_test_loss...
    (none: off)."""
    early_stop_patience: int = field(default=5, metadata=_rule(min=1, max=1_000_000))
    """Epochs in a row without improvement after which early stopping ends the run."""
    early_stop_min_delta: float = field(default=0.0, metadata=_rule(min=0.0, max=1e12))
    """Smallest change of the watched result that counts as an improvement."""
    early_stop_mode: str = field(default="auto", metadata=_rule(choices=EARLY_STOP_MODES))
    """Whether the watched result improves by falling (min) or rising (max); auto: accuracies rise, the rest fall."""
    health_interval: int = field(default=50, metadata=_rule(min=0, max=1_000_000))
    """Optimizer steps between samples of per-layer health (gradient and weight norms, update/weight ratio, dead
    units), read with the loss and shown in the Model tab (0: off, and no hook is ever registered)."""
    spike_factor: float = field(default=0.0, metadata=_rule(min=0.0, max=1e6))
    """A step loss above this multiple of the median of the last 100 counts as a spike and is handled like a NaN
    loss: the cockpit pauses (roll back with R), headless stops (0: off; 1 or less is refused)."""


@dataclass
class OutputConfig:
    """Where a run's directory, logs and checkpoints go."""

    runs_dir: str = "runs"
    """Parent folder of run directories; empty to write nothing (checkpoints then impossible)."""
    checkpoint_every: int = field(default=1, metadata=_rule(min=0, max=1_000_000))
    """Save a numbered checkpoint every N epochs (0: only last and best)."""
    keep: int = field(default=3, metadata=_rule(min=1, max=1000))
    """Numbered checkpoints to keep; older ones are deleted once a newer one is on disk."""
    checkpoint_steps: int = field(default=0, metadata=_rule(min=0, max=1_000_000_000))
    """Also save last.pt every N steps, mid-epoch (0: off)."""
    checkpoint_minutes: float = field(default=10.0, metadata=_rule(min=0.0, max=100_000.0))
    """Also save last.pt when this many minutes passed since the last save (0: off)."""
    tensorboard: bool = True
    """Write TensorBoard event files into the run directory when the tensorboard package is installed."""
    print_every: int = field(default=0, metadata=_rule(min=0, max=1_000_000_000))
    """Headless: also print the mean training loss every N batches, as the tutorial's CIFAR-10 loop does
    ('[1,   100] loss: 2.103'); 0 prints only the epoch lines."""


@dataclass
class RunConfig:
    """Everything a training run needs."""

    recipe: str = "digits-mlp"
    """Name of the preset this configuration started from."""
    data: DataConfig = field(default_factory=DataConfig)
    """Data set and pipeline."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Network."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and schedule."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Duration, device and precision."""
    output: OutputConfig = field(default_factory=OutputConfig)
    """Run directory and checkpoints."""

    def copy(self) -> RunConfig:
        """A deep copy the caller may edit."""
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (TOML-ready: tuples become lists, transforms become tables)."""
        return to_plain(self)


SECTIONS = ("data", "model", "optim", "train", "output")


# ----------------------------------------------------------------------------- introspection


@cache
def field_docs() -> dict[str, str]:
    """Map 'section.field' to the docstring written under that field."""
    docs: dict[str, str] = {}
    for section in SECTIONS:
        cls = _section_class(section)
        tree = ast.parse(inspect.getsource(cls))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
                if isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                    docs[f"{section}.{node.target.id}"] = nxt.value.value  # type: ignore[attr-defined]
    return docs


def _section_class(section: str) -> type:
    return {f.name: f for f in dataclasses.fields(RunConfig)}[section].default_factory  # type: ignore[return-value]


def field_paths() -> list[str]:
    """Every settable 'section.field' path, in declaration order."""
    return [f"{s}.{f.name}" for s in SECTIONS for f in dataclasses.fields(_section_class(s))]


def _field(path: str) -> dataclasses.Field:
    section, _, name = path.partition(".")
    if section not in SECTIONS:
        raise KeyError(path)
    for f in dataclasses.fields(_section_class(section)):
        if f.name == name:
            return f
    raise KeyError(path)


def get_value(config: RunConfig, path: str) -> Any:
    """Read a field by its dotted path."""
    section, _, name = path.partition(".")
    return getattr(getattr(config, section), name)


def set_value(config: RunConfig, path: str, value: Any) -> None:
    """Write a field by its dotted path (no validation; call validate() afterwards)."""
    section, _, name = path.partition(".")
    setattr(getattr(config, section), name, value)


# ----------------------------------------------------------------------------- parsing text


def field_type(path: str) -> str:
    """The field's value kind: int, float, bool, str, floats, pipeline or freeze."""
    ann = str(_field(path).type)
    if "TransformSpec" in ann:
        return "pipeline"
    if ann == "list[str]":
        return "freeze"
    if ann.startswith("tuple"):
        return "floats"
    return ann


def parse_text(path: str, text: str) -> Any:
    """Turn text typed by a user (CLI flag or form field) into the field's value; ValueError says why."""
    kind = field_type(path)
    text = text.strip()
    if kind == "int" and _field(path).metadata.get("auto") and text.lower() == "auto":
        return 0
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "bool":
        low = text.lower()
        if low in ("1", "true", "yes", "on", "y"):
            return True
        if low in ("0", "false", "no", "off", "n"):
            return False
        raise ValueError(f"{text!r} is not true or false")
    if kind == "floats":
        if not text or text.lower() == "none":
            return ()
        try:
            return tuple(float(p) for p in text.replace("(", "").replace(")", "").split(",") if p.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a comma-separated list of numbers") from None
    if kind == "pipeline":
        return parse_pipeline(text)
    if kind == "freeze":
        return [p for p in re.split(r"[\s,]+", text) if p and p.lower() != "none"]
    return text


def format_value(value: Any) -> str:
    """Inverse of parse_text: the text a form field shows for a value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(f"{v:g}" for v in value)
    if isinstance(value, list):
        return ", ".join(str(s) for s in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ----------------------------------------------------------------------------- validation


def check_field(path: str, value: Any) -> str | None:
    """Why `value` is not allowed in field `path`, or None when it is fine."""
    kind = field_type(path)
    rule = _field(path).metadata
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be a whole number"
    if kind == "float" and not _is_number(value):
        return "must be a number"
    if kind == "bool" and not isinstance(value, bool):
        return "must be true or false"
    if kind == "str" and not isinstance(value, str):
        return "must be text"
    if kind == "str" and (why := _text_problem(value)):
        return why
    if kind in ("int", "float") and (why := _out_of_range(value, rule)):
        return why
    if "choices" in rule and value not in rule["choices"]:
        return f"must be one of: {', '.join(rule['choices'])}"
    if rule.get("task") and value and value != TASK_FROM_FIT and ":" not in value:
        return "must be path/task.py:factory or package.module:factory (empty: the data set)"
    if rule.get("early_stop") and not EARLY_STOP_METRIC.fullmatch(value):
        return "must be none or a split's result like val_loss, test_accuracy, val_mae or ema_test_loss"
    if rule.get("model") and value not in MODELS and ":" not in value:
        return f"must be one of: {', '.join(MODELS)}, or module:factory / file.py:factory"
    if kind == "floats":
        if not isinstance(value, tuple) or not all(_is_number(v) for v in value):
            return "must be a list of numbers"
        for v in value:
            if why := _out_of_range(v, rule):
                return f"each value {why}, got {v:g}"
    if kind == "freeze":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "must be a list of edits like -, +fc"
        bad = [v for v in value if not FREEZE_EDIT.fullmatch(v)]
        if bad:
            return f"{', '.join(map(repr, bad))}: each edit is -name (freeze) or +name (unfreeze); - or + alone is the whole model"
    if kind == "pipeline":
        problems = [p for spec in value for p in check_spec(spec)]
        if problems:
            return "; ".join(problems)
    return None


def _text_problem(text: str) -> str | None:
    """Why a text field cannot hold `text` (it must reach config.toml and the file system intact), or None."""
    if "\0" in text:
        return "must not contain a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid UTF-8 text"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _out_of_range(value: float, rule: dict[str, Any]) -> str | None:
    """Why a number breaks a field's range rule (min, max, above, below), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if "min" in rule and value < rule["min"]:
        return f"must be >= {_bound(rule['min'])}"
    if "max" in rule and value > rule["max"]:
        return f"must be <= {_bound(rule['max'])}"
    if "above" in rule and value <= rule["above"]:
        return f"must be > {_bound(rule['above'])}"
    if "below" in rule and value >= rule["below"]:
        return f"must be < {_bound(rule['below'])}"
    return None


def _bound(limit: float) -> str:
    return f"{limit:g}" if isinstance(limit, float) else str(limit)


def validate(config: RunConfig) -> list[FieldError]:
    """Every invalid field of `config`, including rules that tie fields together."""
    errors = []
    for path in field_paths():
        value = get_value(config, path)
        why = check_field(path, value)
        if why:
            errors.append(FieldError(path, _shown(value), why))
    d = config.data
    if not errors and len(d.mean) != len(d.std):
        errors.append(FieldError("data.std", d.std, f"needs one value per mean value ({len(d.mean)})"))
    if config.train.precision == "fp16" and config.train.device in ("cpu", "mps"):
        errors.append(FieldError("train.precision", "fp16", "fp16 needs CUDA; use bf16 or fp32 on this device"))
    errors += _option_conflicts(config)
    return errors


def _option_conflicts(config: RunConfig) -> list[FieldError]:
    """Training options that do not fit the rest of the configuration."""
    errors = []
    o, t = config.optim, config.train
    if o.warmup_steps and o.scheduler == "one-cycle":
        errors.append(FieldError("optim.warmup_steps", o.warmup_steps, "one-cycle warms up by itself (its first "
                                 "30% of steps); set 0 or choose another scheduler"))
    if 0 < t.spike_factor <= 1:
        errors.append(FieldError("train.spike_factor", t.spike_factor, "must be above 1 (a loss above its own median "
                                 "is no spike), or 0 for off"))
    metric = t.early_stop_metric
    if metric.startswith("ema_") and t.ema_decay == 0:
        errors.append(FieldError("train.early_stop_metric", metric, "needs the weight average: set train.ema_decay"))
    return errors


def _shown(value: Any) -> Any:
    return format_value(value) if isinstance(value, list) else value


def check(config: RunConfig) -> RunConfig:
    """Return `config` unchanged if valid, else raise ConfigError naming every bad field."""
    errors = validate(config)
    if errors:
        raise ConfigError(errors)
    return config


# ----------------------------------------------------------------------------- dict / TOML


def to_plain(config: RunConfig) -> dict[str, Any]:
    """The configuration as nested plain dicts, lists and scalars."""
    out: dict[str, Any] = {"recipe": config.recipe}
    for section in SECTIONS:
        part = {}
        for f in dataclasses.fields(_section_class(section)):
            v = getattr(getattr(config, section), f.name)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, list) and field_type(f"{section}.{f.name}") == "pipeline":
                v = [{"name": s.name, **s.params} for s in v]
            elif isinstance(v, list):
                v = list(v)
            part[f.name] = v
        out[section] = part
    return out


def apply_dict(config: RunConfig, data: dict[str, Any], source: str = "config") -> RunConfig:
    """Overlay nested dict values (as read from TOML) onto `config`; unknown keys are errors."""
    errors: list[FieldError] = []
    touched: set[str] = set()
    for key, part in data.items():
        if key == "recipe":
            continue
        if key not in SECTIONS:
            errors.append(FieldError(f"{source}: [{key}]", None,
                                     f"unknown section; allowed: recipe, {', '.join(SECTIONS)}"))
            continue
        if not isinstance(part, dict):
            errors.append(FieldError(f"{source}: {key}", None, "must be a table, like [data]"))
            continue
        for name, raw in part.items():
            path = f"{key}.{name}"
            try:
                _field(path)
            except KeyError:
                allowed = ", ".join(p.split(".", 1)[1] for p in field_paths() if p.startswith(key + "."))
                errors.append(FieldError(f"{source}: {path}", None, f"unknown field; [{key}] takes {allowed}"))
                continue
            try:
                set_value(config, path, _coerce(path, raw))
                touched.add(path)
            except ValueError as exc:
                errors.append(FieldError(path, raw, str(exc)))
    if errors:
        # Name the out-of-range values this file set as well, so one round of fixes is enough.
        errors += [e for e in validate(config) if e.path in touched]
        raise ConfigError(errors)
    return config


def _coerce(path: str, raw: Any) -> Any:
    kind = field_type(path)
    if isinstance(raw, str) and kind != "str":
        return parse_text(path, raw)
    if kind == "float" and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if kind == "floats":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return (float(raw),)
        if isinstance(raw, list):
            return tuple(raw)
    if kind == "freeze" and isinstance(raw, list):
        return [str(v) for v in raw]
    if kind == "pipeline" and isinstance(raw, list):
        specs = []
        for item in raw:
            if isinstance(item, str):
                specs.extend(parse_pipeline(item))
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                specs.append(TransformSpec(item["name"], {k: v for k, v in item.items() if k != "name"}))
            else:
                raise ValueError("each transform must be a string like 'RandomCrop(32, padding=4)' "
                                 "or a table with a name")
        return specs
    return raw


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file raises ConfigError with the line and column."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None


def dump_toml(config: RunConfig) -> str:
    """The configuration as TOML text that load_toml() and apply_dict() read back."""
    plain = to_plain(config)
    lines = [f"recipe = {_toml(plain['recipe'])}"]
    for section in SECTIONS:
        lines.append(f"\n[{section}]")
        for key, value in plain[section].items():
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


# TOML basic strings must escape the backslash, the quote and every control character.
_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    return '"' + "".join(_TOML_ESCAPES.get(ch) or (f"\\u{ord(ch):04X}" if ch < " " or ch == "\x7f" else ch)
                         for ch in text) + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
