"""The question before a run folder's own code runs: ptviz imports code a run folder names only after a yes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ptviz.engine import trust

from .screens.confirm import ConfirmScreen
from .train.log_pane import LogPane

if TYPE_CHECKING:
    from .app import PtvizApp


def ask_to_run_code(app: PtvizApp, purpose: str, then: Callable[[], None] | None = None) -> None:
    """Show the user code the run folder names; import it (then call `then`) only after a yes."""
    shown = "\n".join(f"  {trust.describe(path, spec)}"
                      for path, spec in trust.pending(app.config, app.unconfirmed_code).items())
    log = app.query_one(LogPane)

    def answered(yes: bool | None) -> None:
        if not yes:
            log.say("not run: the run folder's code was not confirmed. Name your own (model.name in the Model "
                    "tab, data.task in the Data tab) and press s, or quit with q", "yellow")
            return
        app.unconfirmed_code.clear()
        log.say("confirmed: the run folder's code may run", "bold")
        if app.model_tab is not None:
            app.model_tab.schedule_preview()
        if app.data_tab is not None:
            app.data_tab.refresh_pane()
        if then is not None:
            then()

    app.push_screen(ConfirmScreen(f"This run folder names code that {purpose} imports and runs:\n{shown}\n\n"
                                  "Run it? Say yes only if you trust where the folder came from.",
                                  enter_says_yes=False), answered)
