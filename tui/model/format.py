"""Short, fixed-width renderings of counts, bytes, shapes and shares for the model pane."""

from __future__ import annotations

from ptviz.engine.models.summary import ModuleInfo


def compact(n: float) -> str:
    """A count in at most six characters: 640, 36.9K, 11.2M, 1.82G."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            value = n / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f}{suffix}"
    return f"{n:.0f}"


def exact(n: int) -> str:
    """A count with thousands separators: 11,181,642."""
    return f"{n:,}"


def size(nbytes: float) -> str:
    """Bytes in binary units: 42.7 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def shape(info: ModuleInfo) -> str:
    """The first output tensor's shape per sample (batch dimension dropped): 64×8×8; '–' if never called."""
    if info.calls == 0:
        return "–"
    if not info.output_shapes:
        return ""
    first = info.output_shapes[0]
    text = "×".join(map(str, first[1:])) or "scalar"
    extra = len(info.output_shapes) - 1
    return f"{text} +{extra}" if extra else text


def share(fraction: float) -> str:
    """A share of the total in five characters: 95.7%, 100%, <0.1%, or blank for nothing."""
    if fraction <= 0:
        return ""
    if fraction >= 0.9995:
        return "100%"
    if fraction < 0.001:
        return "<0.1%"
    return f"{100 * fraction:.1f}%"


STATE_WORDS = {"trainable": "train", "frozen": "frozen", "mixed": "mixed", "": ""}


def state(info: ModuleInfo) -> str:
    """train / frozen / mixed for a subtree's parameters, blank when it holds none."""
    return STATE_WORDS[info.state]


def mode(info: ModuleInfo) -> str:
    """The module's mode as the call that sets it: train() or eval()."""
    return "train()" if info.training else "eval()"


def compact_float(x: float) -> str:
    """A positive measurement in at most six characters: 0.0123, 4.56, 789, 1e-05, 3e+04, inf."""
    if x != x or x in (float("inf"), float("-inf")):
        return "nan" if x != x else "inf"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        for digits in (3, 2, 1):  # 0.00512 has seven characters: fewer digits rather than a cut-off cell
            text = f"{x:.{digits}g}"
            if len(text) <= 6:
                return text
    return f"{x:.0e}"
