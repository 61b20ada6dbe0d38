"""The cockpit's tabs: a tab key typed after another in one read wins, even over the first one's focus message."""

from __future__ import annotations

from textual.widgets import TabbedContent, TabPane


class CockpitTabs(TabbedContent):
    """A TabbedContent that shows a pane for the widget focused in it only while that widget still has the keyboard.

    Focusing a widget inside a pane posts TabPane.Focused, which TabbedContent answers by showing that pane.
    The tab keys focus a widget in the tab they open, and a tab key typed with it in one read ("41", "34" over
    tmux/SSH) switches again before that message is handled: the stale message then showed the first tab again,
    with the keyboard nowhere (the second key was lost). Here a pane is shown for the message only if the
    keyboard is still inside it.
    """

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        focused = self.screen.focused
        if focused is None or event.tab_pane not in focused.ancestors_with_self:
            event.stop()  # the keyboard has moved on since (another tab key): that tab stays shown
            event.prevent_default()  # Textual runs TabbedContent's own handler after this one unless prevented
