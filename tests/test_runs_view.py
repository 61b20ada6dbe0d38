"""The Runs view driven from the keyboard: columns, overlay, sort, live rows, damaged logs, notes, diff, fork, export."""

from __future__ import annotations

import os
import sys

import pytest

from cockpit_helpers import settle, wait_for
from pty_terminal import PtyTerminal
from runs_helpers import LRS, copy_run, synthetic_run, train_digits
from ptviz.engine.recipes import recipe
from ptviz.tui.app import PtvizApp
from ptviz.tui.runs.diff import DiffScreen, setting_rows
from ptviz.tui.runs.fork import ForkScreen
from ptviz.tui.runs.tab import RunsTab


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Three 2-epoch digits runs that differ only in lr."""
    runs = tmp_path_factory.mktemp("three") / "runs"
    return [train_digits(runs, lr=lr) for lr in LRS]


def app_on(runs, epochs: int = 2) -> PtvizApp:
    config = recipe("digits-mlp")
    config.output.runs_dir = str(runs)
    config.output.tensorboard = False
    config.train.epochs = epochs
    return PtvizApp(config, tab="runs")


async def opened(pilot, rows: int) -> RunsTab:
    tab = pilot.app.query_one(RunsTab)
    await wait_for(pilot, lambda: len(tab.shown) >= rows and pilot.app.focused is tab.table, what="the runs table")
    return tab


def chart_text(tab, chart_id: str) -> str:
    tab.overlay.redraw()
    return tab.query_one(f"#{chart_id}").text()


async def test_three_runs_are_listed_with_lr_as_the_one_differing_column_and_sort_by_best_accuracy(three_runs):
    async with app_on(three_runs[0].parent).run_test(size=(160, 48)) as pilot:
        tab = await opened(pilot, 3)
        assert [c.title for c in tab.columns if c.key.startswith("set:")] == ["lr"]
        lr_column = [c.key for c in tab.columns].index("set:optim.lr") + 1  # after the selection mark
        shown = [tab.table.get_row_at(i)[lr_column].plain for i in range(tab.table.row_count)]
        assert sorted(shown) == sorted(f"{lr:g}" for lr in LRS)
        assert all(r.state == "finished" and r.best_accuracy > 0.5 for r in tab.shown)

        for _ in range(len(tab.columns) + 1):
            if tab.sort_key == "best":
                break
            await pilot.press("greater_than_sign")
        assert tab.sort_key == "best" and tab.reverse
        best = [r.best_accuracy for r in tab.shown]
        assert best == sorted(best, reverse=True) and len(set(best)) == 3
        rows = [str(tab.table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(3)]
        assert rows == [str(r.path) for r in tab.shown]
        await pilot.press("r")
        assert [r.best_accuracy for r in tab.shown] == sorted(best)


async def test_selecting_two_runs_overlays_both_with_a_legend(three_runs):
    async with app_on(three_runs[0].parent).run_test(size=(160, 48)) as pilot:
        tab = await opened(pilot, 3)
        await pilot.press("space", "down", "space")
        assert len(tab.selected) == 2 and len(set(tab.selected.values())) == 2
        await wait_for(pilot, lambda: len(tab.state.runs) == 2 and all(r.curves.loss.count == 2 * 45 for r in tab.state.runs),
                       what="both runs' curves")
        labels = [run.label for run in tab.state.runs]
        assert sorted(labels) == sorted(f"lr={lr:g}" for lr in LRS[:2])
        for chart_id in ("overlay-loss", "overlay-accuracy"):
            text = chart_text(tab, chart_id)
            assert all(f"⢕⢕ {label}" in text for label in labels), text
        colours = {color for row in tab.query_one("#overlay-loss").rows for _, color in row if color}
        assert set(tab.selected.values()) <= colours
        await pilot.press("t")  # x by epoch: the loss curve now spans epochs 0..2
        assert "train loss by epoch" in chart_text(tab, "overlay-loss")
        await pilot.press("space")  # deselect the second
        assert len(tab.state.runs) == 1


async def test_a_run_started_in_the_cockpit_appears_and_its_row_and_curve_update(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    async with app_on(runs, epochs=200).run_test(size=(160, 48)) as pilot:
        tab = pilot.app.query_one(RunsTab)
        await wait_for(pilot, lambda: tab.loaded, what="the empty folder read")
        assert tab.shown == []
        await pilot.press("s")
        await wait_for(pilot, lambda: len(tab.shown) == 1 and tab.shown[0].state == "running", what="the new row")
        run = tab.shown[0].path
        await wait_for(pilot, lambda: [r.path for r in tab.state.runs] == [run], what="the run drawn")
        curves = tab.state.runs[0].curves
        await wait_for(pilot, lambda: curves.loss.count > 0, what="first points")
        step, points = tab.shown[0].step, curves.loss.count
        await wait_for(pilot, lambda: tab.shown[0].step > step and curves.loss.count > points, what="row and curve")
        assert chart_text(tab, "overlay-loss").count("┤") >= 2  # a drawn line has y ticks
        await pilot.press("x", "x")  # stop asks first; x again says yes
        await wait_for(pilot, lambda: tab.shown[0].state == "stopped", what="the stopped state")


async def test_logs_cut_mid_line_or_garbled_load_with_a_notice(three_runs):
    runs = three_runs[0].parent.parent / "damaged"
    runs.mkdir(exist_ok=True)
    cut = copy_run(three_runs[0], "../damaged/cut")
    data = (cut / "metrics.jsonl").read_bytes()
    (cut / "metrics.jsonl").write_bytes(data[: data.rindex(b'{"kind":"step"') + 30])
    garbled = copy_run(three_runs[1], "../damaged/garbled")
    for copy in ("steps.bin", "events.idx"):  # as a run written before the log kept its binary copy
        (garbled / copy).unlink()
    lines = (garbled / "metrics.jsonl").read_bytes().split(b"\n")
    lines[20] = lines[20][:25] + b"\x00#garbage"
    (garbled / "metrics.jsonl").write_bytes(b"\n".join(lines))
    (runs / "not-a-run").mkdir(exist_ok=True)
    async with app_on(runs).run_test(size=(160, 48)) as pilot:
        tab = await opened(pilot, 3)
        await pilot.press("a")
        await wait_for(pilot, lambda: all(r.curves.loss.count > 60 for r in tab.state.runs) and len(tab.state.runs) == 2,
                       what="both damaged runs' curves")
        await wait_for(pilot, lambda: any("garbled" in p for r in tab.shown for p in r.problems), what="the notice")
        problems = {r.name: r.problems for r in tab.shown}
        assert "last line was cut short" in problems["cut"][0]
        assert problems["garbled"] == ("metrics.jsonl: 1 garbled line skipped",)
        assert "not a run" in problems["not-a-run"][0]
        assert pilot.app.is_running and pilot.app._exception is None


async def test_note_diff_filter_and_export_from_the_keyboard(three_runs):
    runs = three_runs[0].parent
    async with app_on(runs).run_test(size=(160, 48)) as pilot:
        tab = await opened(pilot, 3)
        first = tab.table.cursor_path
        await pilot.press("n")
        await wait_for(pilot, lambda: pilot.app.screen.query("#note-text"), what="the note form")
        await pilot.press(*"too hot", "tab", *"sweep", "enter")
        await wait_for(pilot, lambda: next(r for r in tab.shown if r.path == first).notes.text == "#sweep too hot",
                       what="the note in the table")
        assert (first / "notes.json").is_file()

        await pilot.press("space", "down", "space", "d")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DiffScreen) and pilot.app.screen.changes is not None,
                       what="the diff")
        diff = pilot.app.screen
        assert [row[0] for row in setting_rows(diff.a, diff.b, everything=False)] == ["optim.lr"]
        assert {diff.a.path, diff.b.path} == set(tab.selected)
        await pilot.press("escape")

        await pilot.press("slash", *"lr=0.2")
        await wait_for(pilot, lambda: len(tab.shown) == 1, what="the filtered table")
        assert tab.shown[0].settings["optim.lr"] == "0.2" and tab.table.row_count == 1
        await pilot.press("escape")  # clears the filter and gives the keyboard back to the table
        await wait_for(pilot, lambda: len(tab.shown) == 3 and pilot.app.focused is tab.table, what="all rows")

        await pilot.press("C")
        (csv_file,) = runs.glob("runs-*.csv")
        lines = csv_file.read_text().splitlines()
        assert len(lines) == 4 and lines[0].startswith("path,run,state,lr,")
        csv_file.unlink()
        await pilot.press("G")
        (svg,) = runs.glob("runs-*.svg")
        assert "<svg" in svg.read_text()[:500]
        svg.unlink()


def fork_form_ready(app) -> bool:
    """The fork screen shows its form with the fields mounted and has put the keyboard in the first one (it does
    so after a refresh: keys typed before that would land in whichever field had it)."""
    screen = app.screen
    return (isinstance(screen, ForkScreen) and bool(screen.query("#f-optim-lr")) and screen.focused is not None
            and any(form.id == "fork-form" for form in screen.focused.ancestors if hasattr(form, "id")))


async def test_fork_key_trains_a_child_drawn_over_its_parent(tmp_path):
    """f on a finished run: the form refuses to fork past the last epoch, then trains one more epoch at a new lr;
    the child appears under its parent and the overlay draws both."""
    runs = tmp_path / "runs"
    parent = train_digits(runs, lr=0.05, epochs=2)
    async with app_on(runs).run_test(size=(160, 48)) as pilot:
        tab = await opened(pilot, 1)
        await pilot.press("f")
        await wait_for(pilot, lambda: fork_form_ready(pilot.app), what="the fork form, its first field focused")
        screen = pilot.app.screen
        assert screen.query_one("#fork-checkpoint").value == "last.pt"

        async def type_field(widget_id: str, text: str) -> None:
            field = screen.query_one(f"#{widget_id}")
            field.focus()
            field.value = ""
            await pilot.press(*text)

        await type_field("f-optim-lr", "0.01")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "--epochs" in str(screen.query_one("#fork-reason").render()), what="the refusal")
        assert not (set(runs.iterdir()) - {parent})
        await type_field("f-train-epochs", "3")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, ForkScreen), what="the fork to start")
        await wait_for(pilot, lambda: len(tab.shown) == 2 and tab.shown[1].lineage is not None, what="the child row")
        child = tab.shown[1]
        assert tab.shown[0].path == parent and tab.table.get_row_at(1)[1].plain.startswith("└ ")
        await wait_for(pilot, lambda: [r.path for r in tab.state.runs] == [parent, child.path]
                       and tab.state.runs[1].curves.loss.count > 0, what="both drawn")
        text = chart_text(tab, "overlay-loss")
        assert "⢕⢕ lr=0.05" in text and "⢕⢕ lr=0.01" in text
        await wait_for(pilot, lambda: tab.shown[1].state == "finished", what="the child to finish")
        assert tab.state.runs[1].curves.first_step == 2 * 45 + 1 and tab.shown[1].step == 3 * 45



async def test_the_fork_form_says_the_rate_the_checkpoint_was_training_at(tmp_path):
    """A step schedule took lr 0.05 to 0.0005 by epoch 2's end: the fork form's optim.lr is 0.0005, the rate the
    fork goes on at when left as it is (a typed rate, even 0.05, wins), and the head names the run's setting."""
    from runs_helpers import train

    runs = tmp_path / "runs"
    config = recipe("digits-mlp")
    config.output.runs_dir, config.output.tensorboard = str(runs), False
    config.train.epochs, config.optim.scheduler, config.optim.step_size, config.optim.gamma = 2, "step", 1, 0.1
    train(config, listen=False)
    async with app_on(runs).run_test(size=(160, 48)) as pilot:
        await opened(pilot, 1)
        await pilot.press("f")
        await wait_for(pilot, lambda: fork_form_ready(pilot.app), what="the fork form, its first field focused")
        head = str(pilot.app.screen.query_one("#fork-slot-head").render())
        assert "step 90, 2 epoch(s) done, training at lr 0.0005 there (the run's setting: 0.05)" in head
        assert pilot.app.screen.query_one("#f-optim-lr").value == "0.0005"

def test_runs_on_a_terminal_opens_the_runs_view_and_quits(tmp_path):
    """`ptviz-tui runs DIR` on a terminal opens the cockpit on its Runs tab (pipes and --list get the listing)."""
    synthetic_run(tmp_path / "runs", "20261129-120000-digits-mlp", lr=0.05)
    term = PtyTerminal([sys.executable, "-m", "ptviz", "runs", "runs"], cwd=tmp_path,
                       env={**os.environ, "TERM": "xterm-256color"}, rows=24, columns=100)
    try:
        term.wait_for(rb"runs: 1 run")  # the Runs tab's status line, shown only on that tab
        term.write(b"q")
        assert term.proc.wait(timeout=120) == 0, term.text()[-2000:]
    finally:
        term.hang_up()
        if term.proc.poll() is None:
            term.proc.kill()


async def test_the_lr_column_shows_a_live_changed_rate_beside_the_setting(tmp_path):
    """Two runs set to lr 0.05, one halved live after its last step: the Runs tab gets an lr column (the settings
    agree, the rates do not) showing 0.025 marked with its setting, and 0.05."""
    runs = tmp_path / "runs"
    synthetic_run(runs, "20261129-120000-digits-mlp", lr=0.05, epochs=2)
    synthetic_run(runs, "20261129-130000-digits-mlp", lr=0.05, epochs=4)
    async with app_on(runs).run_test(size=(160, 48)) as pilot:
        tab = await opened(pilot, 2)
        lr_column = [c.key for c in tab.columns].index("set:optim.lr") + 1  # after the selection mark
        shown = {tab.shown[i].name: tab.table.get_row_at(i)[lr_column].plain for i in range(tab.table.row_count)}
        assert shown == {"20261129-120000-digits-mlp": "0.025 (set 0.05)", "20261129-130000-digits-mlp": "0.05"}


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_table_ends_at_a_whole_column_and_scrolls_to_the_rest(tmp_path, size):
    """At 80x24 the table ends after the last column that fits whole (before, the epoch column was cut to 'ep' over
    blank cells, its numbers right-aligned out of sight); the rest scroll into view; wide, it takes the whole width."""
    runs = tmp_path / "runs"
    base = synthetic_run(runs, "20261129-120000-digits-mlp", lr=0.05, seconds=12.5)
    synthetic_run(runs, "20261129-123000-digits-mlp", lr=0.01, seconds=6.0, parent=base, branch_epoch=2)
    async with app_on(runs).run_test(size=size) as pilot:
        tab = await opened(pilot, 2)
        await settle(pilot)
        table = tab.table
        edges, x = [], 0
        for column in table.ordered_columns:
            x += column.get_render_width(table)
            edges.append(x)
        region = table.scrollable_content_region.width
        if edges[-1] > size[0]:
            assert region in edges and region < size[0], (region, edges)
            assert table.max_scroll_x > 0  # the columns beyond scroll into view
        else:
            assert table.size.width == tab.size.width
