"""Errors the engine raises for problems a user can fix (bad input), as opposed to bugs."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, reported as one clear message without a traceback."""


class ConfigError(UserError):
    """One or more configuration fields hold values that are not allowed."""

    def __init__(self, errors: list[FieldError] | str):
        if isinstance(errors, str):
            errors = [FieldError("", None, errors)]
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class DataUnavailable(UserError):
    """A data set's files are missing or unreadable and downloading is not allowed or failed."""


class UnreadableImage(DataUnavailable):
    """One image file cannot be decoded; `path` names it (None when only the message survived)."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class ModelError(UserError):
    """A model could not be built: unknown name, missing weights, or user code that failed."""

    details: str = ""  # the user code's traceback, for a log; the message alone is the one-line summary


class TaskError(UserError):
    """A task could not be loaded or broke its contract: a failing factory, loss, metric or Dataset."""

    details: str = ""  # the user code's traceback, for a log; the message alone is the one-line summary


class CheckpointError(UserError):
    """A file is not a valid ptviz checkpoint, or no usable checkpoint was found."""


class FieldError:
    """A single invalid field: its dotted path, the offending value and what is allowed."""

    __slots__ = ("path", "value", "reason")

    def __init__(self, path: str, value: object, reason: str):
        self.path = path
        self.value = value
        self.reason = reason

    def __str__(self) -> str:
        if not self.path:
            return self.reason
        if self.value is None:
            return f"{self.path}: {self.reason}"
        return f"{self.path}: got {self.value!r}; {self.reason}"

    def __repr__(self) -> str:
        return f"FieldError({self.path!r}, {self.value!r}, {self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldError) and (self.path, self.value, self.reason) == (
            other.path,
            other.value,
            other.reason,
        )
