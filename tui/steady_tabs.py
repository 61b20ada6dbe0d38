"""Tabs whose last switch wins, even over a focus message sent by the switch before it."""

from __future__ import annotations

from textual.widgets import TabbedContent, TabPane


class SteadyTabs(TabbedContent):
    """A TabbedContent that shows a pane for the widget focused in it only while that widget still has the keyboard.

    Focusing a widget inside a pane posts TabPane.Focused, which TabbedContent answers by showing that pane. Keys
    that switch tab focus a widget in the tab they open, and a key typed with it in one read (tmux, SSH) switches
    again before that message is handled: the stale message showed the first tab again, with the keyboard
    nowhere ("41", "34" on the cockpit's tabs; "o>" in the Data pane, whose o focuses the editor in Samples).
    Here a pane is shown for the message only if the keyboard is still inside it.
    """

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        focused = self.screen.focused
        if focused is None or event.tab_pane not in focused.ancestors_with_self:
            event.stop()  # the keyboard has moved on since (another tab key): that tab stays shown
            event.prevent_default()  # Textual runs TabbedContent's own handler after this one unless prevented
