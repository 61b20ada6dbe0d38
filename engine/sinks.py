"""Where events go: a small Protocol with a do-nothing default and a fan-out."""

from __future__ import annotations

from typing import Protocol

from .events import Event


class EventSink(Protocol):
    """Receives events on the training thread; must return quickly and never block."""

    def emit(self, event: Event) -> None:
        """Take one event."""


class NullSink:
    """Drops every event: the default when nobody listens."""

    def emit(self, event: Event) -> None:
        """Drop the event."""


class FanOut:
    """Sends each event to several sinks in order."""

    def __init__(self, *sinks: EventSink):
        self.sinks = [s for s in sinks if s is not None]

    def emit(self, event: Event) -> None:
        """Hand the event to every sink."""
        for sink in self.sinks:
            sink.emit(event)


class ListSink:
    """Keeps every event in a list (tests and scripts)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        """Append the event."""
        self.events.append(event)

    def of(self, kind: type) -> list:
        """The events of one type, in order."""
        return [e for e in self.events if isinstance(e, kind)]
