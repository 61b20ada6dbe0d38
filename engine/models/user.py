"""Bring your own model: `package.module:factory` or `path/to/file.py:factory`.

A file is loaded by path under a private module name and sys.path is left alone, so a user's folder
holding its own engine.py or tui/ can neither shadow ptviz's packages nor be shadowed by them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType

from torch import nn

from ..errors import ModelError

# User code may raise anything, SystemExit included; Ctrl+C (KeyboardInterrupt) still stops ptviz.
USER_CODE_ERRORS = (Exception, SystemExit)


def split_spec(spec: str) -> tuple[str, str]:
    """'target:factory' -> (target, factory); ModelError when either part is missing."""
    target, sep, factory = spec.rpartition(":")
    if not sep or not target or not factory.isidentifier():
        raise ModelError(f"model.name: {spec!r} must look like package.module:factory or path/file.py:factory")
    return target, factory


class _FreshLoader(importlib.machinery.SourceFileLoader):
    """Compiles the file on every load and writes no __pycache__: an edited model never runs stale bytecode."""

    def path_stats(self, path: str):
        raise OSError("ptviz reads model files from source")  # SourceLoader then skips the bytecode cache


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ModelError(f"model.name: model file {path} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"_ptviz_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path, loader=_FreshLoader(name, str(path)))
    if spec is None or spec.loader is None:
        raise ModelError(f"model.name: {path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # lets dataclasses and pickling inside the file find their module
    try:
        spec.loader.exec_module(module)
    except USER_CODE_ERRORS as exc:
        sys.modules.pop(name, None)
        hint = SIBLING_HINT if isinstance(exc, ModuleNotFoundError) else ""
        raise _user_code_error(f"loading {path}", exc, hint) from None
    return module


SIBLING_HINT = (" (a model file is loaded on its own, without its folder on sys.path: put shared code in an "
                "installed package, or use package.module:factory with PYTHONPATH set)")


def _user_code_error(what: str, exc: BaseException, hint: str = "") -> ModelError:
    """One-line message naming what failed; the full traceback goes to .details."""
    err = ModelError(f"model.name: {what} failed: {type(exc).__name__}: {exc}{hint}")
    err.details = "".join(traceback.format_exception(exc))
    return err


def load_factory(spec: str):
    """The factory callable named by `spec`."""
    target, factory = split_spec(spec)
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _load_file(Path(target).expanduser())
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
                raise ModelError(f"model.name: no module named {exc.name!r} (is it installed or on PYTHONPATH?)") from None
            raise _user_code_error(f"importing {target}", exc) from None
        except USER_CODE_ERRORS as exc:
            raise _user_code_error(f"importing {target}", exc) from None
    fn = getattr(module, factory, None)
    if fn is None or not callable(fn):
        raise ModelError(f"model.name: {target} has no callable {factory!r}")
    return fn


def build(spec: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Call the user's factory, passing the class count when it takes an argument."""
    fn = load_factory(spec)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    try:
        if "num_classes" in params:
            model = fn(num_classes=num_classes)
        elif params and next(iter(params.values())).default is inspect.Parameter.empty:
            model = fn(num_classes)
        else:
            model = fn()
    except USER_CODE_ERRORS as exc:
        raise _user_code_error(f"calling {spec}", exc) from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model.name: {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model
