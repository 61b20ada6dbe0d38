"""Messages that cross from the training thread (and other workers) into the app."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class EngineEvent(Message):
    """An engine event arrived from the training thread."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class EngineEventsWaiting(Message):
    """Engine events are queued in `inbox`; the handler takes all of them (one message per burst, not per event)."""

    def __init__(self, inbox: Any) -> None:
        super().__init__()
        self.inbox = inbox


class HistoryLoaded(Message):
    """A run's history was read from its log (a Snapshot, reduced); `follower` reads what the run logs next."""

    def __init__(self, snapshot: Any, follower: Any) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.follower = follower


class DeviceSampled(Message):
    """A fresh reading of GPU/CPU utilisation and memory (latest value wins)."""

    def __init__(self, sample: Any) -> None:
        super().__init__()
        self.sample = sample

    def can_replace(self, message: Message) -> bool:
        """An older, unprocessed reading is worthless once a newer one is queued."""
        return isinstance(message, DeviceSampled)


class LogRequested(Message):
    """A widget wants a line (and optional details, such as a traceback) in the run log."""

    def __init__(self, text: str, style: str = "", details: str = "") -> None:
        super().__init__()
        self.text = text
        self.style = style
        self.details = details


class TabsLoaded(Message):
    """The Data and Model tabs' modules (torch among them) were imported on a worker thread."""

    def __init__(self, seconds: float, torch_version: str) -> None:
        super().__init__()
        self.seconds = seconds
        self.torch_version = torch_version


class ConfigEdited(Message):
    """A tab changed the working configuration outside the forms (pipeline editor, model field, freezes)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


class TaskPreviewDone(Message):
    """A tab finished (or gave up) building its preview of a task: ptviz.fit's cockpit starts once both have."""

    def __init__(self, tab: str) -> None:
        super().__init__()
        self.tab = tab
