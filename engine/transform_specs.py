"""The catalogue of image transforms a pipeline may hold, with their parameters and allowed ranges.

This module is plain data (no torch) so that configuration can be parsed and validated instantly;
`engine.data.augment` turns specs into batched tensor operations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    """One numeric parameter of a transform: its type, default and inclusive range."""

    name: str
    kind: type  # int or float
    default: float
    low: float | None = None
    high: float | None = None
    help: str = ""

    def check(self, value: Any) -> str | None:
        """Return why `value` is not allowed, or None when it is fine."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number ({self.kind.__name__})"
        if not math.isfinite(value):
            return "must be a finite number"
        if self.kind is int and not float(value).is_integer():
            return "must be a whole number"
        if self.low is not None and value < self.low:
            return f"must be >= {self.low:g}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high:g}"
        return None


@dataclass(frozen=True)
class TransformKind:
    """A transform the pipeline knows: whether it is random (train only) and its parameters."""

    name: str
    random: bool
    params: tuple[ParamSpec, ...]
    help: str

    def defaults(self) -> dict[str, float]:
        """Default parameter values."""
        return {p.name: p.default for p in self.params}


_P = ParamSpec
CATALOGUE: dict[str, TransformKind] = {
    k.name: k
    for k in (
        TransformKind("Resize", False, (_P("size", int, 32, 1, 1024, "output height and width"),),
                      "resize to size×size (bilinear)"),
        TransformKind("CenterCrop", False, (_P("size", int, 24, 1, 1024, "output height and width"),),
                      "crop the centre size×size"),
        TransformKind("RandomCrop", True,
                      (_P("size", int, 32, 1, 1024, "output height and width"),
                       _P("padding", int, 4, 0, 256, "zero padding on each side before cropping")),
                      "pad, then crop size×size at a random position"),
        TransformKind("RandomHorizontalFlip", True, (_P("p", float, 0.5, 0.0, 1.0, "flip probability"),),
                      "mirror left-right with probability p"),
        TransformKind("RandomVerticalFlip", True, (_P("p", float, 0.5, 0.0, 1.0, "flip probability"),),
                      "mirror top-bottom with probability p"),
        TransformKind("RandomRotation", True,
                      (_P("degrees", float, 15.0, 0.0, 180.0, "largest rotation either way"),),
                      "rotate by a random angle in [-degrees, degrees]"),
        TransformKind("ColorJitter", True,
                      (_P("brightness", float, 0.2, 0.0, 1.0, "brightness factor range 1±b"),
                       _P("contrast", float, 0.2, 0.0, 1.0, "contrast factor range 1±c"),
                       _P("saturation", float, 0.0, 0.0, 1.0, "saturation factor range 1±s (RGB only)")),
                      "randomly change brightness, contrast and saturation"),
        TransformKind("RandomErasing", True,
                      (_P("p", float, 0.5, 0.0, 1.0, "probability of erasing a patch"),
                       _P("scale", float, 0.2, 0.01, 1.0, "largest erased area as a share of the image")),
                      "blank a random rectangle with probability p"),
    )
}


@dataclass
class TransformSpec:
    """One step of the image pipeline, for example RandomCrop(size=32, padding=4)."""

    name: str
    params: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"{self.name}({inner})"

    @property
    def kind(self) -> TransformKind | None:
        """The catalogue entry for this transform, or None when the name is unknown."""
        return CATALOGUE.get(self.name)

    def resolved(self) -> dict[str, float]:
        """Parameters with defaults filled in."""
        kind = self.kind
        return {**(kind.defaults() if kind else {}), **self.params}


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def check_spec(spec: TransformSpec) -> list[str]:
    """Return every problem with one transform spec (unknown name, unknown or out-of-range parameter)."""
    kind = spec.kind
    if kind is None:
        return [f"unknown transform {spec.name!r}; known: {', '.join(CATALOGUE)}"]
    problems = []
    known = {p.name: p for p in kind.params}
    for key, value in spec.params.items():
        param = known.get(key)
        if param is None:
            problems.append(f"{spec.name} has no parameter {key!r}; it takes {', '.join(known) or 'none'}")
            continue
        why = param.check(value)
        if why:
            problems.append(f"{spec.name}.{key} = {value!r} {why}")
    return problems


_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$", re.S)


def parse_spec(text: str) -> TransformSpec:
    """Parse 'RandomCrop(32, padding=4)' or 'RandomHorizontalFlip' into a spec; raises ValueError."""
    m = _CALL.match(text)
    if not m:
        raise ValueError(f"cannot read transform {text!r}; write it like RandomCrop(size=32, padding=4)")
    name, inner = m.group(1), (m.group(2) or "").strip()
    kind = CATALOGUE.get(name)
    if kind is None:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(CATALOGUE)}")
    params: dict[str, float] = {}
    if inner:
        for i, part in enumerate(p.strip() for p in inner.split(",")):
            if not part:
                continue
            if "=" in part:
                key, raw = (s.strip() for s in part.split("=", 1))
            else:
                if i >= len(kind.params):
                    raise ValueError(f"{name} takes at most {len(kind.params)} values, got {inner!r}")
                key, raw = kind.params[i].name, part
            params[key] = _number(raw, f"{name}.{key}")
    return TransformSpec(name, params)


def parse_pipeline(text: str) -> list[TransformSpec]:
    """Parse a comma-separated list of transform calls; an empty string is an empty pipeline."""
    specs, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            if text[start:i].strip():
                specs.append(parse_spec(text[start:i]))
            start = i + 1
    if text[start:].strip() and text[start:].strip().lower() != "none":
        specs.append(parse_spec(text[start:]))
    return specs


def _number(raw: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{where} must be a number, got {raw!r}") from None
    return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value
