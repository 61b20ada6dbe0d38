"""Bring your own model: `package.module:factory` or `path/to/file.py:factory`.

A file is loaded by path under a private module name and sys.path is left alone, so a user's folder
holding its own engine.py or tui/ can neither shadow ptviz's packages nor be shadowed by them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType

from torch import nn

from ..errors import ModelError


def split_spec(spec: str) -> tuple[str, str]:
    """'target:factory' -> (target, factory); ModelError when either part is missing."""
    target, sep, factory = spec.rpartition(":")
    if not sep or not target or not factory.isidentifier():
        raise ModelError(f"model.name: {spec!r} must look like package.module:factory or path/file.py:factory")
    return target, factory


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise ModelError(f"model.name: model file {path} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"_ptviz_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"model.name: {path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # lets dataclasses and pickling inside the file find their module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit included
        sys.modules.pop(name, None)
        raise _user_code_error(f"loading {path}", exc) from None
    return module


def _user_code_error(what: str, exc: BaseException) -> ModelError:
    err = ModelError(f"model.name: {what} failed: {type(exc).__name__}: {exc}")
    err.details = "".join(traceback.format_exception(exc))  # type: ignore[attr-defined]
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
            if exc.name and target.startswith(exc.name):
                raise ModelError(f"model.name: no module named {exc.name!r} (is it installed or on PYTHONPATH?)") from None
            raise _user_code_error(f"importing {target}", exc) from None
        except BaseException as exc:  # noqa: BLE001
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
    except BaseException as exc:  # noqa: BLE001
        raise _user_code_error(f"calling {spec}", exc) from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model.name: {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model
