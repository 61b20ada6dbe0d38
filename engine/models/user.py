"""Bring your own code: `package.module:factory` or `path/to/file.py:factory`, for models and tasks.

A file is loaded by path under a private module name and sys.path is left alone, so a user's folder
holding its own engine.py or tui/ can neither shadow ptviz's packages nor be shadowed by them.
Errors name the field that pointed at the code, and the file and line in the user's code where it failed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import re
import sys
import sysconfig
import threading
import traceback
from pathlib import Path
from types import ModuleType

from torch import nn

from ..errors import ModelError, UserError

# User code may raise anything, SystemExit included; Ctrl+C (KeyboardInterrupt) still stops ptviz.
USER_CODE_ERRORS = (Exception, SystemExit)
# Loading runs module-level user code, which may write files (an example making its data): one at a time,
# even when the cockpit's previews and a run load the same file on different threads.
LOAD_LOCK = threading.RLock()
_PTVIZ_ROOT = Path(__file__).resolve().parents[2]
_OURS = tuple(str(_PTVIZ_ROOT / name) + "/" for name in ("engine", "tui", "ptviz"))
_LIBRARY = tuple({sysconfig.get_paths()[key] + "/" for key in ("stdlib", "platstdlib")})


def split_spec(spec: str, field: str = "model.name", error: type[UserError] = ModelError) -> tuple[str, str]:
    """'target:factory' -> (target, factory); `error` when either part is missing."""
    target, sep, factory = spec.rpartition(":")
    if not sep or not target or not factory.isidentifier():
        raise error(f"{field}: {spec!r} must look like package.module:factory or path/file.py:factory")
    return target, factory


class _FreshLoader(importlib.machinery.SourceFileLoader):
    """Compiles the file on every load and writes no __pycache__: an edited model never runs stale bytecode."""

    def path_stats(self, path: str):
        raise OSError("ptviz reads model files from source")  # SourceLoader then skips the bytecode cache


def _load_file(path: Path, field: str, error: type[UserError]) -> ModuleType:
    if not path.is_file():
        raise error(f"{field}: file {path} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"_ptviz_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path, loader=_FreshLoader(name, str(path)))
    if spec is None or spec.loader is None:
        raise error(f"{field}: {path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # lets dataclasses and pickling inside the file find their module
    try:
        spec.loader.exec_module(module)
    except USER_CODE_ERRORS as exc:
        sys.modules.pop(name, None)
        hint = SIBLING_HINT if isinstance(exc, ModuleNotFoundError) else ""
        raise user_code_error(f"loading {path}", exc, hint, field, error) from None
    return module


SIBLING_HINT = (" (a model file is loaded on its own, without its folder on sys.path: put shared code in an "
                "installed package, or use package.module:factory with PYTHONPATH set)")


def user_code_error(what: str, exc: BaseException, hint: str = "", field: str = "model.name",
                    error: type[UserError] = ModelError) -> UserError:
    """One-line message naming what failed and where in the user's code; the full traceback goes to .details."""
    place = where(exc)
    at = f" ({place})" if place else ""
    err = error(f"{field}: {what} failed: {type(exc).__name__}: {exc}{hint}{at}")
    err.details = "".join(traceback.format_exception(exc))  # type: ignore[attr-defined]
    return err


def is_user_file(filename: str) -> bool:
    """Whether a traceback frame's file is the user's code (not ptviz, Python or an installed package)."""
    if filename.startswith("<") or "/site-packages/" in filename or "/dist-packages/" in filename:
        return False
    return not filename.startswith(_OURS) and not filename.startswith(_LIBRARY)


def where(exc: BaseException) -> str:
    """'file.py, line 7': the deepest frame of `exc`'s traceback in the user's code, or ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_user_file(f.filename)]
    if not frames and isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f"{exc.filename}, line {exc.lineno}"
    return f"{frames[-1].filename}, line {frames[-1].lineno}" if frames else ""


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def where_in_text(text: str) -> str:
    """Like where(), for a traceback that only survives as text (re-raised from a DataLoader worker)."""
    frames = [(f, n) for f, n in _FRAME.findall(text) if is_user_file(f)]
    return f"{frames[-1][0]}, line {frames[-1][1]}" if frames else ""


def defined_at(obj: object) -> str:
    """'file.py, line 12' where a function or class (or an instance's class) is defined, or ''."""
    target = obj if inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj) else type(obj)
    try:
        filename = inspect.getsourcefile(target)  # type: ignore[arg-type]
        line = inspect.getsourcelines(target)[1]  # type: ignore[arg-type]
    except (TypeError, OSError):
        return ""
    return f"{filename}, line {line}" if filename and is_user_file(filename) else ""


def load_factory(spec: str, field: str = "model.name", error: type[UserError] = ModelError):
    """The factory callable named by `spec`."""
    target, factory = split_spec(spec, field, error)
    with LOAD_LOCK:
        if target.endswith(".py") or "/" in target or "\\" in target:
            module = _load_file(Path(target).expanduser(), field, error)
        else:
            try:
                module = importlib.import_module(target)
            except ModuleNotFoundError as exc:
                if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
                    raise error(f"{field}: no module named {exc.name!r} (is it installed or on PYTHONPATH?)") from None
                raise user_code_error(f"importing {target}", exc, "", field, error) from None
            except USER_CODE_ERRORS as exc:
                raise user_code_error(f"importing {target}", exc, "", field, error) from None
    fn = getattr(module, factory, None)
    if fn is None or not callable(fn):
        raise error(f"{field}: {target} has no callable {factory!r}")
    return fn


def build(spec: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Call the user's factory, passing the class count when it takes an argument."""
    fn = load_factory(spec)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    try:
        with LOAD_LOCK:
            if "num_classes" in params:
                model = fn(num_classes=num_classes)
            elif params and next(iter(params.values())).default is inspect.Parameter.empty:
                model = fn(num_classes)
            else:
                model = fn()
    except USER_CODE_ERRORS as exc:
        raise user_code_error(f"calling {spec}", exc) from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model.name: {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model
