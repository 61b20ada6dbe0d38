"""Branch a run from the Runs view: pick one of its checkpoints, change settings, check, then train."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select, Static

from ptviz.engine import config as cfgmod

from ..config_form import ConfigForm
from ..screens.confirm import ConfirmScreen

FORK_FIELDS = ["optim.lr", "optim.momentum", "optim.weight_decay", "optim.step_size", "optim.gamma",
               "train.epochs", "train.max_steps", "train.log_interval", "data.batch_size", "data.transforms",
               "model.freeze", "model.name"]


def live_lr_text(state: dict) -> str:
    """', training at lr 0.0005 there (the run's setting: 0.05)' when the checkpoint's optimizer ran at another
    rate than optim.lr (a schedule or a live change moved it); optim.lr below starts at that rate."""
    from ptviz.engine.fork import checkpoint_lr

    live = checkpoint_lr(state)
    try:
        configured = float(state["config"]["optim"]["lr"])
    except (KeyError, TypeError, ValueError):
        return ""
    if live is None or live == configured:
        return ""
    return f", training at lr {live:.3g} there (the run's setting: {configured:.3g})"


class ForkScreen(ModalScreen[Any]):
    """Dismisses with a checked ForkPlan, or None when cancelled."""

    DEFAULT_CSS = """
    ForkScreen { align: center middle; }
    ForkScreen > Vertical { width: 76; max-width: 98%; height: 90%; border: thick $accent;
                            background: $surface; padding: 0 1; }
    ForkScreen #fork-head { height: auto; }
    ForkScreen #fork-checkpoint-row { height: 1; margin: 1 0; }
    ForkScreen #fork-checkpoint-row Label { width: 17; color: $text-muted; }
    ForkScreen #fork-checkpoint { width: 1fr; height: 1; }
    ForkScreen #fork-checkpoint > SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
    ForkScreen #fork-form-slot { height: 1fr; }
    ForkScreen #fork-reason { color: $error; height: auto; }
    ForkScreen #fork-buttons { height: auto; align-horizontal: right; }
    ForkScreen Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    @dataclass
    class CheckpointLoaded(Message):
        """A checkpoint of the parent was read (on a worker thread)."""

        name: str
        state: Any
        path: Path
        config: Any

    @dataclass
    class Checked(Message):
        """The fork was checked: `plan` when it can start, else `reason`."""

        plan: Any
        reason: str

    def __init__(self, parent_dir: Path, choices: list[str]):
        super().__init__()
        self.parent_dir = Path(parent_dir)
        self.choices = choices
        self.state: Any = None
        self.path: Path | None = None
        self.config: cfgmod.RunConfig | None = None
        self.edited: set[str] = set()
        self.confirmed: set[str] = set()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"[b]Fork {self.parent_dir.name}[/b]: a new run from one of its checkpoints (weights, "
                         "optimizer state, position) with the settings below; the parent is left as it is.",
                         id="fork-head")
            with Horizontal(id="fork-checkpoint-row"):
                yield Label("checkpoint")
                yield Select([(c, c) for c in self.choices], value=self.choices[0], allow_blank=False,
                             id="fork-checkpoint")
            yield Vertical(Static("reading the checkpoint…"), id="fork-form-slot")
            yield Static("", id="fork-reason")
            with Horizontal(id="fork-buttons"):
                yield Button("Fork and train (enter)", variant="primary", id="fork-start", disabled=True)
                yield Button("Cancel (esc)", id="fork-cancel")

    def on_mount(self) -> None:
        self.load(self.choices[0])

    @work(thread=True, exclusive=True, group="fork-load", exit_on_error=False)
    def load(self, name: str) -> None:
        """Read checkpoint `name` of the parent (torch work stays off the UI thread)."""
        from ptviz.engine.errors import UserError
        from ptviz.engine.fork import fork_config, load_parent

        try:
            state, path = load_parent(self.parent_dir, name)
            config = fork_config(state, source=str(path))  # optim.lr: the rate the checkpoint trains at
        except Exception as exc:  # noqa: BLE001 - a damaged or hostile file: say why, keep the screen
            self.post_message(self.Checked(None, str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"))
            return
        config.output.runs_dir = str(self.parent_dir.parent)  # beside its parent
        self.post_message(self.CheckpointLoaded(name, state, path, config))

    async def on_fork_screen_checkpoint_loaded(self, message: CheckpointLoaded) -> None:
        self.state, self.path, self.config = message.state, message.path, message.config
        slot = self.query_one("#fork-form-slot")
        await slot.remove_children()
        step, epoch = int(self.state["step"]), int(self.state["epoch"])
        await slot.mount(Static(f"{message.name}: step {step:,}, {epoch} epoch(s) done{live_lr_text(self.state)}; the "
                          f"fork's first step is {step + 1:,}. Edit what should change (tab moves, enter forks):",
                          id="fork-slot-head"))
        # Awaited: the form's fields exist before the keyboard is put in the first (they compose after the form).
        await slot.mount(ConfigForm(self.config, FORK_FIELDS, id="fork-form"))
        self.query_one("#fork-start", Button).disabled = False
        self.query_one("#fork-reason", Static).update("")
        self._focus_first_field()

    def _focus_first_field(self) -> None:
        for form in self.query(ConfigForm):
            form.editor(FORK_FIELDS[0]).focus()

    @on(Select.Changed, "#fork-checkpoint")
    def _checkpoint_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str) and self.path is not None and event.value != self.path.name:
            self.query_one("#fork-start", Button).disabled = True
            self.load(event.value)

    @on(ConfigForm.FieldChanged)
    def _field_changed(self, message: ConfigForm.FieldChanged) -> None:
        message.stop()
        if self.config is not None:
            cfgmod.set_value(self.config, message.path, message.value)
            self.edited.add(message.path)

    @on(ConfigForm.FieldInvalid)
    def _field_invalid(self, message: ConfigForm.FieldInvalid) -> None:
        message.stop()

    def on_input_submitted(self, event) -> None:
        event.stop()
        self.start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "fork-start":
            self.start()
        else:
            self.dismiss(None)

    def start(self) -> None:
        """Check the fork (off the UI thread); it starts once the check passes."""
        if self.config is None or self.path is None:
            return
        errors = [f"{p}: {why}" for form in self.query(ConfigForm) for p, why in form.errors.items()]
        if errors:
            self.query_one("#fork-reason", Static).update("fix first: " + "; ".join(errors))
            return
        from ptviz.engine.fork import user_code_fields

        unconfirmed = [p for p in user_code_fields(self.config) if p not in self.edited | self.confirmed]
        if unconfirmed:
            path = unconfirmed[0]

            def answered(yes: bool | None) -> None:
                if yes:
                    self.confirmed.add(path)
                    self.start()

            self.app.push_screen(ConfirmScreen(
                f"The parent trains user code: {path} = {cfgmod.get_value(self.config, path)}. ptviz only runs "
                "code you name yourself. Import and run this code for the fork?"), answered)
            return
        self.query_one("#fork-reason", Static).update("checking…")
        self.check(self.config.copy())

    @work(thread=True, exclusive=True, group="fork-check", exit_on_error=False)
    def check(self, config: cfgmod.RunConfig) -> None:
        """plan_fork: validates, refuses what a fork cannot change, and loads the weights into the new model."""
        from ptviz.engine.errors import UserError
        from ptviz.engine.fork import plan_fork

        try:
            plan = plan_fork(self.parent_dir, self.state, self.path, config,
                             named_by_user=frozenset(self.edited | self.confirmed))
        except UserError as exc:
            self.post_message(self.Checked(None, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - user code (a model factory) may fail in any way
            self.post_message(self.Checked(None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.Checked(plan, ""))

    def on_fork_screen_checked(self, message: Checked) -> None:
        if message.plan is not None:
            self.dismiss(message.plan)
        else:
            self.query_one("#fork-reason", Static).update(message.reason)

    def action_cancel(self) -> None:
        self.dismiss(None)
