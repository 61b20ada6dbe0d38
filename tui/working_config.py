"""The configuration the cockpit edits: kept in step with its forms, the Data and Model tabs and the status line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptviz.engine import config as cfgmod
from ptviz.engine.recipes import recipe

from .config_form import ConfigForm
from .engine_feed import FAILED_HINT
from .headless import run_names, what_trains
from .train.log_pane import LogPane
from .train.status_bar import StatusBar

if TYPE_CHECKING:
    from .app import PtvizApp


class WorkingConfig:
    """Applies edits to the app's configuration (one object: the tabs hold a reference to it) and checks it."""

    def __init__(self, app: PtvizApp):
        self.app = app

    def field_changed(self, path: str, value: object) -> None:
        """A form field changed: set it, and tell the tabs which one."""
        app = self.app
        if cfgmod.get_value(app.config, path) != value:
            cfgmod.set_value(app.config, path, value)
            self.edited()
            for tab in (app.model_tab, app.data_tab):
                if tab is not None:
                    tab.config_changed(path)

    def edited(self) -> None:
        """A failed run's state and hint describe the configuration it ran with: an edit makes them stale."""
        app = self.app
        if not app.runner.active and not app.runner.remote_run:
            app.query_one(StatusBar).name_run(*run_names(app.config))
        if app.run_state == "failed" and not app.runner.active:
            app.run_state = "idle"
            status = app.query_one(StatusBar)
            if status.note == FAILED_HINT:
                status.note = ""

    def load_recipe(self, name: str) -> None:
        """The recipe list picked a preset: load it into every form (where runs go stays the user's choice)."""
        app = self.app
        chosen = recipe(name)
        chosen.output = app.config.output  # where runs go is the user's choice, not the recipe's
        app.config.__dict__.update(chosen.__dict__)  # same object: the tabs hold a reference to it
        for form in app.query(ConfigForm):
            form.load(app.config)
        self.edited()
        if app.model_tab is not None and app.data_tab is not None:
            app.model_tab.schedule_preview()
            app.data_tab.refresh_pane()
        app.query_one(LogPane).say(f"recipe {name} loaded ({what_trains(app.config)})")

    def errors(self) -> list[str]:
        """Every invalid field shown in a form or found by whole-config validation."""
        app = self.app
        errors = [f"{path}: {reason}" for form in app.query(ConfigForm) for path, reason in form.errors.items()]
        if app.data_tab is not None:
            errors += app.data_tab.pipeline_errors()
        if not errors:
            errors = [str(e) for e in cfgmod.validate(app.config)]
        return errors

    def set_lr(self, lr: float) -> None:
        """Put `lr` into optim.lr, as if typed in the Model tab's form."""
        app = self.app
        cfgmod.set_value(app.config, "optim.lr", lr)
        for form in app.query(ConfigForm):
            if "optim.lr" in form.paths:
                form.show_value("optim.lr", lr)
        app.query_one(LogPane).say(f"optim.lr set to {lr:g} (lr finder)")
