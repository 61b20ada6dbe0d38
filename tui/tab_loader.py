"""Puts the Data and Model tabs into the cockpit: at once when their modules are imported already, otherwise a
stand-in on the first screen and the tabs once a worker thread has imported them (see heavy_tabs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import TabbedContent, TabPane

from . import heavy_tabs
from .messages import TabsLoaded
from .train.log_pane import LogPane
from .train.status_bar import StatusBar

if TYPE_CHECKING:
    from .app import PtvizApp

TABS_GROUP = "tabs"  # the worker group of the import


class TabLoader:
    """Composes the tabs or their stand-ins, imports them off the UI thread, and mounts them when imported."""

    def __init__(self, app: PtvizApp, defer: bool | None = None):
        self.app = app
        # Stand-ins first unless told otherwise: by default, when the tabs' modules are not imported yet.
        self.deferred = not heavy_tabs.imported() if defer is None else defer

    def compose(self, name: str) -> ComposeResult:
        """The "data" or "model" tab, or its stand-in while the modules load."""
        app = self.app
        if self.deferred:
            yield heavy_tabs.TabLoading(name)
        else:
            yield heavy_tabs.build(name, app.config, app.unconfirmed_code, app.fit_task)

    def start(self) -> None:
        """On mount: take the tabs composed, or import them once the first screen is drawn."""
        if not self.deferred:
            self.mounted()
            return
        self.app.query_one(StatusBar).note = heavy_tabs.LOADING_NOTE
        self.app.call_after_refresh(self._start_import)  # after the first screen is drawn

    def _start_import(self) -> None:
        self.app.run_worker(self._import, name="load tabs", group=TABS_GROUP, thread=True, exit_on_error=False)

    def _import(self) -> None:
        """Import the Data and Model tabs, and torch with them (worker thread)."""
        self.app.post_message(TabsLoaded(*heavy_tabs.load()))

    async def mount(self, message: TabsLoaded) -> None:
        """Put the imported tabs in place of their stand-ins, and say how long torch took."""
        app = self.app
        for name in ("data", "model"):
            pane = app.query_one(f"#{name}", TabPane)
            await pane.remove_children()
            await pane.mount(heavy_tabs.build(name, app.config, app.unconfirmed_code, app.fit_task))
        self.mounted()
        status = app.query_one(StatusBar)
        if status.note == heavy_tabs.LOADING_NOTE:
            status.note = ""
        app.query_one(LogPane).say(f"torch {message.torch_version} loaded in {message.seconds:.1f} s", "dim")
        tabs = app.query_one(TabbedContent)
        if tabs.active in ("data", "model"):  # shown while loading: its keys reach it now
            app.action_show_tab(tabs.active)

    def mounted(self) -> None:
        """The tabs are in the app: size them, and hand them the engine events kept meanwhile."""
        app = self.app
        app.data_tab = app.query_one("#data-tab")
        app.model_tab = app.query_one("#model-tab")
        app.apply_size(force=True)
        app.feed.tabs_ready()

    def failed(self, error: BaseException | None) -> None:
        """The import failed: the stand-ins and the log say why."""
        for loading in self.app.query(heavy_tabs.TabLoading):
            loading.failed(error)
        self.app.query_one(LogPane).say(f"the Data and Model tabs could not load: {error!r}", "bold red")
