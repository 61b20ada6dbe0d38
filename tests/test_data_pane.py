"""The data pane, driven by keys in a tiny app: samples, re-roll, the pipeline editor, statistics and evaluation."""

import asyncio
import threading

import numpy as np
import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Input, Label, OptionList, Static, TabbedContent

from ptviz.engine.data import sources
from ptviz.engine.data.samples import page_indices
from ptviz.engine.evaluate import evaluate
from ptviz.engine.events import Evaluated
from ptviz.engine.recipes import recipe
from ptviz.engine.setup import build
from ptviz.engine.transform_specs import TransformSpec
from ptviz.tui.data import DataPane
from ptviz.tui.data.pane import PER_PAGE
from ptviz.tui.data.evaluation import EvaluationView, MistakeTile
from ptviz.tui.data.pipeline_editor import PipelineEditor
from ptviz.tui.data.samples import SampleGrid
from ptviz.tui.data.stats import StatsView

from cockpit_helpers import settle, wait_for


# textual-image reads pixels through a Pillow call that Pillow 14 will drop; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


class PaneApp(App):
    """Just the data pane, as the cockpit would mount it."""

    def compose(self) -> ComposeResult:
        yield DataPane()


@pytest.fixture(autouse=True)
def halfcell_images(monkeypatch):
    """Tests have no terminal to ask; draw images as coloured half-cells, as over a plain SSH link."""
    monkeypatch.setenv("PTVIZ_IMAGES", "halfcell")


def shown(pilot) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(index, raw pixels, processed pixels) of every tile in the grid."""
    return [(t.sample.index, t.raw_pixels, t.processed_pixels) for t in pilot.app.query_one(SampleGrid).tiles]


def digits_with(*transforms: TransformSpec):
    config = recipe("digits-mlp")
    config.data.transforms = list(transforms)
    return config


async def test_reroll_changes_augmented_images_and_not_raw_ones():
    """r draws new augmentations of the same images; the raw images stay as they are."""
    app = PaneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one(DataPane).show_config(digits_with(TransformSpec("RandomRotation", {"degrees": 45})))
        await settle(pilot)
        before = shown(pilot)
        assert len(before) == 12 and before[0][1].shape == (8, 8, 1)
        await pilot.press("r")
        await settle(pilot)
        after = shown(pilot)
        assert [i for i, _, _ in after] == [i for i, _, _ in before]
        assert all(np.array_equal(a[1], b[1]) for a, b in zip(after, before))
        assert sum(not np.array_equal(a[2], b[2]) for a, b in zip(after, before)) >= 6
        await pilot.press("t")  # the evaluation path has no random rotation: it shows the raw image
        await settle(pilot)
        assert all(np.array_equal(raw, processed) for _, raw, processed in shown(pilot))
        # At 80×24 two tiles fit side by side and the rest is reached by scrolling.
        grid = app.query_one(SampleGrid)
        assert grid.query_one("#tiles").styles.grid_size_columns == 2 and grid.max_scroll_y > 0


@pytest.mark.parametrize("renderer", ["sixel", "tgp"])
async def test_graphics_terminals_draw_each_image_in_its_own_widget(monkeypatch, renderer):
    """Where the terminal draws Sixel or Kitty graphics each image is a textual-image widget (Picture) holding the
    sample's pixels; zoom redraws them larger in place. Half-cells draw a tile as one widget of cells."""
    from ptviz.tui.data.images import Picture
    from ptviz.tui.data.samples import PictureSampleTile, SampleTile

    monkeypatch.setenv("PTVIZ_IMAGES", renderer)
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(DataPane).show_config(digits_with())
        await settle(pilot)
        tiles = app.query_one(SampleGrid).tiles
        assert len(tiles) == 12 and all(isinstance(t, PictureSampleTile) for t in tiles)
        raw, processed = tiles[0].query_one(".raw", Picture), tiles[0].query_one(".processed", Picture)
        assert raw.pixels is tiles[0].raw_pixels and processed.pixels is tiles[0].processed_pixels
        box = raw.box
        await pilot.press("plus")
        await settle(pilot)
        assert raw.box > box and raw.size.width == raw.box and tiles[0].query_one(".raw", Picture) is raw
        monkeypatch.setenv("PTVIZ_IMAGES", "halfcell")
        await pilot.press("n")
        await settle(pilot)
        assert all(isinstance(t, SampleTile) and not t.children for t in app.query_one(SampleGrid).tiles)


async def test_editing_the_pipeline_changes_the_preview():
    """Adding a vertical flip and setting p=1 turns every processed image upside down, and says so."""
    messages = []
    app = PaneApp()
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        app.query_one(DataPane).show_config(digits_with())
        await settle(pilot)
        assert all(np.array_equal(raw, processed) for _, raw, processed in shown(pilot))
        editor = app.query_one(PipelineEditor)
        editor.steps.focus()
        await pilot.press("a")
        await pilot.pause()
        for _ in range(4):  # Resize, CenterCrop, RandomCrop, RandomHorizontalFlip, then RandomVerticalFlip
            await pilot.press("down")
        await pilot.press("enter")
        await settle(pilot)
        assert [s.name for s in editor.transforms] == ["RandomVerticalFlip"]
        field = editor.query_one("#params Input", Input)
        field.focus()
        field.value = ""
        await pilot.press("1")
        await settle(pilot)
        for _, raw, processed in shown(pilot):
            assert np.array_equal(processed, raw[::-1])
        changed = [m for m in messages if isinstance(m, DataPane.PipelineChanged)]
        assert [str(s) for s in changed[-1].transforms] == ["RandomVerticalFlip(p=1)"]


async def test_the_catalogue_opens_at_its_top_each_time_and_adds_what_is_chosen():
    """a, a few rows down, escape (nothing added); a again starts from the first transform, and enter adds it."""
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(DataPane).show_config(digits_with())
        await settle(pilot)
        editor = app.query_one(PipelineEditor)
        editor.steps.focus()
        await pilot.press("a", "down", "down", "escape")
        await pilot.pause()
        assert editor.transforms == [] and app.focused is editor.steps
        await pilot.press("a")
        await pilot.pause()
        assert app.screen.query_one(OptionList).highlighted == 0
        await pilot.press("enter")
        await settle(pilot)
        assert [s.name for s in editor.transforms] == ["Resize"]


async def test_out_of_range_parameter_is_marked_with_its_reason():
    """A RandomCrop size past the catalogue's range marks that field and leaves the preview alone."""
    messages = []
    app = PaneApp()
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        app.query_one(DataPane).show_config(digits_with(TransformSpec("RandomCrop", {"size": 8, "padding": 2})))
        await settle(pilot)
        editor = app.query_one(PipelineEditor)
        size = next(i for i in editor.query("#params Input").results(Input) if i.name == "size")
        size.focus()
        size.value = "5000"
        await settle(pilot)
        error = next(label for label in editor.query("#params .field-error").results(Label) if label.name == "size")
        assert size.has_class("-invalid")
        assert str(error.content) == "size must be <= 1024"
        assert editor.problems == {"size": "must be <= 1024"}
        assert not [m for m in messages if isinstance(m, DataPane.PipelineChanged)]
        assert app.query_one(DataPane).sample_set.input_shape == (1, 8, 8)
        await pilot.press("end", "backspace", "backspace")  # 50 is allowed again
        await settle(pilot)
        assert not size.has_class("-invalid") and str(error.content) == ""
        assert app.query_one(DataPane).sample_set.input_shape == (1, 50, 50)


async def test_mean_std_action_fills_normalize():
    """m computes mean and std from the training images, fills Normalize and reports it."""
    messages = []
    app = PaneApp()
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        app.query_one(DataPane).show_config(digits_with())
        await settle(pilot)
        editor = app.query_one(PipelineEditor)
        assert not any(i.has_class("-invalid") for i in editor.query(Input))
        await pilot.press("m")
        await settle(pilot)
        computed = [m for m in messages if isinstance(m, DataPane.NormalizeComputed)]
        x = sources.load(recipe("digits-mlp").data).train.images.numpy() / 255.0
        assert computed[-1].mean[0] == pytest.approx(x.mean(), abs=1e-6)
        assert computed[-1].std[0] == pytest.approx(x.std(), abs=1e-6)
        assert editor.mean == computed[-1].mean
        fields = {i.name: i for i in editor.query("#params Input").results(Input)}
        assert fields["mean"].value == "0.305041" and not any(i.has_class("-invalid") for i in fields.values())
        # The preview now normalises with the data's own statistics.
        assert app.query_one(DataPane).sample_set.input_range[1] == pytest.approx((1 - x.mean()) / x.std(), abs=1e-4)


async def test_confusion_matrix_sums_to_the_test_set_size():
    """An evaluation of the digits test set fills the matrix, the per-class rows and the gallery."""
    config = recipe("digits-mlp")
    config.output.runs_dir = ""
    setup = build(config)
    result = evaluate(setup.model, setup.test, setup.pipeline, setup.num_classes)
    event = Evaluated("test", 0, 0, result.loss, result.accuracy, result.samples, result.confusion, result.wrong)
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(DataPane)
        pane.show_config(config)
        await settle(pilot)
        pane.show_evaluation(event)
        await pilot.press("greater_than_sign", "greater_than_sign")
        await settle(pilot)
        assert app.query_one(TabbedContent).active == "evaluation-tab"
        view = app.query_one(EvaluationView)
        assert view.matrix_total == len(setup.data.test) == 359
        table = view.query_one("#confusion", Static).content
        assert table.columns[-1].footer == "359"
        assert sum(r.support for r in view.rows) == 359
        tiles = list(view.query(MistakeTile))
        assert len(tiles) == len(result.wrong) > 0
        first = tiles[0].mistake
        assert (first.index, first.true) == (result.wrong[0][0], str(result.wrong[0][2]))


async def test_imagefolder_with_a_corrupt_image_names_it_and_shows_the_rest(imagefolder_root):
    """The unreadable file is named above the grid; every other image of the page is still drawn."""
    config = recipe("digits-mlp")
    config.data.dataset, config.data.root = "imagefolder", str(imagefolder_root)
    config.data.mean, config.data.std = (0.5,) * 3, (0.5,) * 3
    config.data.transforms = [TransformSpec("Resize", {"size": 8})]
    train = sources.load(config.data).train
    bad_index = page_indices(train, 0, PER_PAGE)[3]
    bad = sources.sample_path(train, bad_index)
    with open(bad, "wb") as fh:
        fh.write(b"\x89PNG but then nothing")
    messages = []
    app = PaneApp()
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        app.query_one(DataPane).show_config(config)
        await settle(pilot)
        skipped = app.query_one("#skipped", Static)
        assert skipped.has_class("-shown") and str(skipped.content).startswith(f"skipped: {bad} is not a readable image")
        tiles = shown(pilot)
        assert len(tiles) == PER_PAGE - 1 and bad_index not in [i for i, _, _ in tiles]
        assert all(processed.shape == (8, 8, 3) for _, _, processed in tiles)
        # Training would stop on that file, so the batch view says so too (naming it).
        failed = [m.text for m in messages if isinstance(m, DataPane.DataFailed)]
        assert failed and all(text.startswith(f"{bad} is not a readable image") for text in failed)


async def test_pipeline_steps_are_reordered_and_removed_from_the_keyboard():
    """shift+up swaps two steps and d removes one; the preview's shape follows; Normalize cannot be removed."""
    messages = []
    app = PaneApp()
    async with app.run_test(size=(100, 30), message_hook=messages.append) as pilot:
        pane = app.query_one(DataPane)
        pane.show_config(digits_with(TransformSpec("Resize", {"size": 16}), TransformSpec("CenterCrop", {"size": 4})))
        await settle(pilot)
        editor = app.query_one(PipelineEditor)

        def listed() -> list[str]:
            return [str(item.query_one(Label).content) for item in editor.steps.query("ListItem")]

        assert pane.sample_set.input_shape == (1, 4, 4)  # resized to 16, then the middle 4×4
        editor.steps.focus()
        editor.steps.index = 1
        await pilot.press("shift+up")  # crop first, then resize: 16×16
        await settle(pilot)
        assert [s.name for s in editor.transforms] == ["CenterCrop", "Resize"]
        assert listed()[0].startswith("1 CenterCrop") and listed()[1].startswith("2 Resize")
        assert editor.steps.index == 0  # the moved step stays highlighted
        assert pane.sample_set.input_shape == (1, 16, 16)
        await pilot.press("shift+up")  # already first: nothing moves
        await settle(pilot)
        assert [s.name for s in editor.transforms] == ["CenterCrop", "Resize"]

        await pilot.press("d")  # the highlighted crop goes; the resize alone gives 16×16 of the whole digit
        await settle(pilot)
        assert [s.name for s in editor.transforms] == ["Resize"]
        assert len(listed()) == 2 and listed()[1].startswith("2 Normalize")
        assert pane.sample_set.input_shape == (1, 16, 16)
        changed = [m for m in messages if isinstance(m, DataPane.PipelineChanged)]
        assert [str(s) for s in changed[-1].transforms] == ["Resize(size=16)"]

        editor.steps.index = 1  # Normalize: refused with a reason, the list unchanged
        await pilot.press("d")
        await settle(pilot)
        assert [s.name for s in editor.transforms] == ["Resize"] and len(listed()) == 2
        assert any("Normalize stays last" in str(n.message) for n in app._notifications)


async def test_view_keys_and_the_editor_key_keep_the_keyboard_in_the_pane():
    """> and < cycle the views with the keyboard still in the pane; o puts it in the editor's step list."""
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(DataPane)
        pane.show_config(digits_with())
        await settle(pilot)
        tabs = pane.query_one(TabbedContent)
        app.query_one(SampleGrid).focus()
        for expected in ("stats-tab", "evaluation-tab", "samples-tab"):
            await pilot.press(">")
            await pilot.pause()
            assert tabs.active == expected
            assert app.focused is not None and pane in app.focused.ancestors_with_self
        await pilot.press("<")
        await pilot.pause()
        assert tabs.active == "evaluation-tab" and pane in app.focused.ancestors_with_self
        await pilot.press("<")
        await pilot.pause()
        editor = app.query_one(PipelineEditor)
        if pane.editor_shown:
            await pilot.press("o")  # hide it first, so that o shows it
            await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        assert editor.display and app.focused is editor.steps
        await pilot.press("a")  # the editor's own key now works
        await pilot.pause()
        assert app.screen.__class__.__name__ == "AddTransformScreen"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("o")  # hidden again: the keyboard goes back to the view
        await pilot.pause()
        assert not editor.display and app.focused is not None and pane in app.focused.ancestors_with_self


def _type(app, key: str, character: str) -> None:
    """Hand a key to the app as the terminal's input thread does (the pilot's press waits for every queue)."""
    app._driver.send_message(events.Key(key, character))


async def _until(predicate, timeout: float = 30.0) -> bool:
    """Whether `predicate()` comes true within `timeout` s while the app runs (the pilot's pause would wait for
    every widget's queue, and the pane's is held on purpose here)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_view_keys_work_while_the_pane_is_busy():
    """While the pane is busy (a training run's evaluations building the gallery), < moves the keyboard to the
    view it shows at once, so the next < reaches the pane: the keyboard used to follow only after the pane's
    queued work, the hidden view dropped it meanwhile, and a < typed then was lost (10 s and more in a run)."""
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(DataPane)
        pane.show_config(digits_with())
        await settle(pilot)
        tabs = pane.query_one(TabbedContent)
        await pilot.press(">", ">")
        await settle(pilot)
        assert tabs.active == "evaluation-tab"
        busy = asyncio.Event()
        switch = pane.action_tab

        def switch_while_busy(delta: int) -> None:
            pane.call_later(busy.wait)  # work that reached the pane just before the key's action
            switch(delta)

        pane.action_tab = switch_while_busy
        try:
            _type(app, "less_than_sign", "<")
            assert await _until(lambda: tabs.active == "stats-tab"), "< did not reach the pane"
            stats = pane.query_one(StatsView)
            assert await _until(lambda: app.focused is stats, timeout=10), "the keyboard went nowhere"
            _type(app, "less_than_sign", "<")
        finally:
            busy.set()
        await settle(pilot)
        assert tabs.active == "samples-tab" and pane in app.focused.ancestors_with_self


async def test_galleries_of_superseded_or_hidden_evaluations_are_not_built(monkeypatch):
    """A run evaluates every epoch, faster than a gallery is read and built: one read at a time, then the newest
    evaluation's; a gallery read for an evaluation a newer one replaced is dropped; one read while the view is
    hidden is built only when the view shows again (it used to be built in the hidden view, holding up the
    pane's keys while a run trained)."""
    from ptviz.tui.data import jobs

    config = recipe("digits-mlp")
    config.output.runs_dir = ""
    setup = build(config)
    result = evaluate(setup.model, setup.test, setup.pipeline, setup.num_classes)
    events = [Evaluated("test", 0, epoch, result.loss, result.accuracy, result.samples, result.confusion,
                        result.wrong[: 3 + epoch]) for epoch in range(4)]
    gates = {event.epoch: threading.Event() for event in events}
    read = jobs.draw_mistakes
    reads: list[int] = []

    def gated(post, event, bundle, pipeline):
        reads.append(event.epoch)
        gates[event.epoch].wait(60)  # the test says when each evaluation's images have been read
        read(post, event, bundle, pipeline)

    gated.__name__ = read.__name__
    monkeypatch.setattr(jobs, "draw_mistakes", gated)
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(DataPane)
        pane.show_config(config)
        await settle(pilot)
        await pilot.press(">", ">")
        await settle(pilot)
        view = app.query_one(EvaluationView)
        tiles = lambda: len(list(view.query(MistakeTile)))  # noqa: E731
        try:
            for event in events[:3]:
                pane.show_evaluation(event)
            await wait_for(pilot, lambda: reads == [0], what="the first read")
            gates[0].set()
            await wait_for(pilot, lambda: reads == [0, 2], what="the newest evaluation's read, after the first")
            assert tiles() == 0  # the first evaluation's gallery was superseded: not built
            gates[2].set()
            await wait_for(pilot, lambda: tiles() == 5, what="the newest evaluation's gallery")
            pane.show_evaluation(events[3])
            await pilot.press("<")
        finally:
            for gate in gates.values():
                gate.set()
        await settle(pilot)
        assert tiles() == 5  # read while hidden: not built
        await pilot.press(">")
        await settle(pilot)
        assert tiles() == 6 and view.event is events[3] and reads == [0, 2, 3, 3]


@pytest.mark.parametrize("width", [38, 100])
def test_confusion_matrix_of_ten_classes_is_readable_in_a_narrow_pane(width):
    """At 80×24 the pane is ~38 columns: every count and class still shows, none cut to an ellipsis."""
    from rich.console import Console

    from ptviz.tui.data.evaluation import confusion_table

    confusion = tuple(tuple(30 + i if i == j else (i + j) % 3 for j in range(10)) for i in range(10))
    event = Evaluated("test", 1, 45, 0.1, 0.9, sum(map(sum, confusion)), confusion, ())
    console = Console(width=width, record=True, color_system=None)
    console.print(confusion_table(event, tuple("0123456789"), width))
    lines = console.export_text().splitlines()
    assert "…" not in "".join(lines) and max(len(line.rstrip()) for line in lines) <= width
    header = lines[0].split()
    assert header[1:11] == list("0123456789")
    for i in range(10):
        cells = lines[1 + i].split()
        assert cells[0] == str(i) and cells[1 + i] == str(30 + i)
        if width == 100:  # room for the totals too
            assert int(cells[-1]) == sum(confusion[i])
    if width == 100:
        assert lines[-1].split()[-1] == str(event.samples)


async def test_pipeline_rebuilds_that_overlap_end_with_one_list_and_its_form():
    """A new pipeline arriving while a step is being added (two rebuilds at once) leaves one consistent list.

    On a loaded machine the data tab's set_pipeline and a key's add interleaved inside their awaits: the
    half-cleared list had no highlighted row and building the form for it raised.
    """
    import asyncio

    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(DataPane)
        pane.show_config(digits_with())
        await settle(pilot)
        editor = app.query_one(PipelineEditor)
        crop = TransformSpec("RandomCrop", {"size": 8, "padding": 2})
        flip = TransformSpec("RandomHorizontalFlip", {"p": 0.5})
        await asyncio.gather(
            editor.set_pipeline([crop], (0.5,), (0.5,), 1, 8),
            editor.set_pipeline([crop, flip], (0.5,), (0.5,), 1, 8),
            editor._add("RandomVerticalFlip"),
            editor.set_normalize((0.1,), (0.2,)),
        )
        await settle(pilot)
        names = [s.name for s in editor.transforms]
        assert names == ["RandomCrop", "RandomVerticalFlip", "RandomHorizontalFlip"]
        rows = [str(item.query_one(Label).content) for item in editor.steps.children]
        assert rows[-1] == "4 Normalize(0.1; 0.2)" and len(rows) == 4
        shown_step = editor.steps.index
        assert shown_step is not None and editor._form_index == shown_step
        params = {p.name for p in editor.transforms[shown_step].kind.params}
        assert {i.name for i in editor.query("#params Input").results(Input)} == params


async def test_images_loaded_behind_another_tab_are_scaled_to_the_room_when_shown(tmp_path):
    """The data loads while the Train tab shows (the pane has no width then); at 200×60 a 32×32 RGB image is
    drawn larger than 8 cells once the Data tab shows, and a zoom the user picks is kept."""
    from ptviz.tui.app import PtvizApp

    config = recipe("digits-mlp")
    config.data.dataset, config.data.fake_size = "fake", 20
    config.output.runs_dir = str(tmp_path)
    app = PtvizApp(config)
    async with app.run_test(size=(200, 60)) as pilot:
        pane = app.query_one(DataPane)
        # Loaded and drawn while hidden: the tab starts the load after a short debounce timer, which settle does
        # not see, so wait for the data themselves.
        await wait_for(pilot, lambda: pane.sample_set is not None, what="the data loaded and drawn while hidden")
        await settle(pilot)
        assert pane.bundle is not None and pane.bundle.shape == (3, 32, 32)
        await pilot.press("2")
        await settle(pilot)

        def first_tile():
            return app.query_one(SampleGrid).tiles[0]  # inside its border: a caption over two boxes of images

        # The pane fits its images to the room after the refresh that gave it a size: wait for that, not a time.
        await wait_for(pilot, lambda: pane.box >= 16 and first_tile().box == pane.box and first_tile().size.width,
                       what="images fitted to the room")
        tile = first_tile()
        assert tile.size.width >= 2 * 16 + 1 and tile.size.height >= 1 + 8
        await pilot.press("minus")
        await settle(pilot)
        chosen = pane.box
        await pilot.resize_terminal(190, 60)
        await settle(pilot)
        assert pane.box == chosen < 16


async def test_o_fits_the_images_to_the_room_the_editor_leaves_before_the_screen_is_laid_out():
    """Showing or hiding the editor zooms the images and sets the columns for the width the grid is about to get
    (one layout of the screen instead of two or three): that width is the one the layout then gives it."""
    app = PaneApp()
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.query_one(DataPane)
        pane.show_config(digits_with())
        await settle(pilot)
        pane.focus()
        grid, editor = app.query_one(SampleGrid), app.query_one(PipelineEditor)
        for _ in range(2):  # hidden, then shown again
            shown_before = pane.editor_shown
            room = pane._room_after_toggle(editor, not shown_before)
            await pilot.press("o")
            await settle(pilot)
            assert pane.editor_shown != shown_before and room == grid.scrollable_content_region.width
            assert pane.box == pane._fitting_box(room)
            assert grid.query_one("#tiles").styles.grid_size_columns >= 2
