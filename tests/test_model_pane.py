"""The model pane in a tiny app: depth keys, the fine-tuning freeze workflow and model-spec errors."""

from textual import on
from textual.app import App, ComposeResult

from ptviz.engine.config import ModelConfig
from ptviz.engine.errors import ModelError
from ptviz.engine.models.registry import build_model, count_parameters, set_trainable
from ptviz.engine.models.summary import sample_batch, summarize
from ptviz.tui.model import ModelPane

INPUT = (3, 32, 32)


def load(spec):
    """What a cockpit does with a model spec: build it and summarize it."""
    model = build_model(ModelConfig(name=spec), INPUT, 10)
    return model, summarize(model, sample_batch(model, INPUT), batch_size=128)


class PaneApp(App):
    """Mounts only the model pane and plays the cockpit's part while idle: apply freezes, load models."""

    def __init__(self, spec="resnet18"):
        super().__init__()
        self.model, self.first = load(spec)
        self.spec = spec
        self.requests = []

    def compose(self) -> ComposeResult:
        yield ModelPane()

    def on_mount(self) -> None:
        pane = self.query_one(ModelPane)
        pane.summary, pane.spec = self.first, self.spec
        pane.tree.focus()

    @on(ModelPane.FreezeRequested)
    def freeze(self, message: ModelPane.FreezeRequested) -> None:
        self.requests.append(message)
        set_trainable(self.model, message.module, message.trainable)
        self.query_one(ModelPane).apply_trainable(message.module, message.trainable)

    @on(ModelPane.ModelRequested)
    def load_model(self, message: ModelPane.ModelRequested) -> None:
        self.requests.append(message)
        pane = self.query_one(ModelPane)
        try:
            self.model, pane.summary = load(message.spec)
        except ModelError as exc:
            pane.error = str(exc)
        else:
            pane.spec = message.spec


def totals(app):
    return str(app.query_one("#model-totals").render())


async def test_depth_and_arrow_keys_expand_and_collapse():
    """> and < change how many levels show, * opens everything, right/left open and close one node."""
    app = PaneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.query_one(ModelPane).tree
        assert tree.last_line == 10  # the model and its ten children
        await pilot.press("greater_than_sign")
        assert tree.last_line == 10 + 8  # plus two blocks in each of layer1..layer4
        await pilot.press("asterisk")
        assert tree.last_line == len(app.first.modules) - 1 == 67
        assert tree.depth == 4  # layer2.0.downsample.0 is the deepest module
        # At 80 columns every row keeps the name and seven aligned columns, and nothing scrolls sideways.
        header = str(app.query_one("#model-header").render())
        assert header.split() == ["module", "type", "output", "own", "params", "state", "share", "FLOPs"]
        row = tree.render_line(1).text
        assert row.split() == ["├", "conv1", "Conv2d", "64×16×16", "9.41K", "9.41K", "train", "<0.1%", "4.82M"]
        assert row.index("Conv2d") == header.index("type") and tree.max_scroll_x == 0
        await pilot.press("less_than_sign", "less_than_sign", "less_than_sign")
        assert tree.last_line == 10 and tree.depth == 1
        await pilot.press(*["down"] * 5)
        assert tree.cursor_node.data == "layer1"
        await pilot.press("right")
        assert tree.cursor_node.is_expanded and tree.last_line == 12
        await pilot.press("right")
        assert tree.cursor_node.data == "layer1.0"
        await pilot.press("left", "left")
        assert tree.cursor_node.data == "layer1" and not tree.cursor_node.is_expanded
        await pilot.press("enter")
        assert tree.cursor_node.is_expanded


async def test_freeze_all_then_unfreeze_fc_takes_three_keys():
    """F freezes everything, end jumps to the head, u thaws it: 5,130 trainable, in the pane and the model."""
    app = PaneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        assert "11,181,642 params · 11,181,642 trainable · 0 frozen" in totals(app)
        await pilot.press("F", "end", "u")
        await pilot.pause()
        assert [(r.module, r.trainable) for r in app.requests] == [("", False), ("fc", True)]
        assert "11,181,642 params · 5,130 trainable · 11,176,512 frozen" in totals(app)
        assert count_parameters(app.model) == (11_181_642, 5_130)
        tree = app.query_one(ModelPane).tree
        rows = [tree.render_line(y).text for y in range(tree.last_line + 1)]
        assert "mixed" in rows[0] and "frozen" in rows[5] and rows[-1].split()[-3] == "train"
        assert str(app.query_one("#model-detail").render()).startswith("fc · Linear · out 10 · 5,130 params train")


async def test_a_bad_model_spec_shows_its_message_and_a_good_one_then_loads(tmp_path):
    """A syntax error in a model file is reported in the pane; the pane keeps working and loads the next spec."""
    bad = tmp_path / "bad.py"
    bad.write_text("def make(:\n    pass\n")
    good = tmp_path / "good.py"
    good.write_text("from torch import nn\n\ndef make(num_classes):\n"
                    "    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, num_classes))\n")
    app = PaneApp(spec="cnn")
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ModelPane)
        spec_field = app.query_one("#model-spec")
        await pilot.press("m")
        assert spec_field.has_focus and spec_field.value == "cnn"
        spec_field.value = ""
        await pilot.press(*f"{bad}:make", "enter")
        await pilot.pause()
        error = app.query_one("#model-error")
        assert error.display and "loading" in pane.error and "bad.py failed: SyntaxError" in str(error.render())
        assert pane.summary is app.first  # the previous model is still shown
        spec_field.value = f"{good}:make"
        await pilot.press("enter")
        await pilot.pause()
        assert not error.display and pane.error == ""
        assert pane.summary.params_total == 3 * 32 * 32 * 10 + 10
        assert pane.tree.last_line == 2  # Sequential, Flatten, Linear
        await pilot.press("escape")
        assert pane.tree.has_focus


async def test_columns_follow_a_new_width_and_stay_as_they_are_when_the_tree_is_shown_again():
    """A narrower terminal drops columns and a wider one brings them back; hidden and shown again (another tab and
    back) at the same size, the tree keeps its columns and rows."""
    app = PaneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(ModelPane)

        def header() -> list[str]:
            return str(app.query_one("#model-header").render()).split()

        wide, row = header(), pane.tree.render_line(1).text
        await pilot.resize_terminal(50, 24)
        await pilot.pause()
        narrow = header()
        assert len(narrow) < len(wide)
        pane.display = False
        await pilot.pause()
        pane.display = True
        await pilot.pause()
        assert header() == narrow and len(pane.tree.render_line(1).text.split()) == len(narrow) + 1
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert header() == wide and pane.tree.render_line(1).text == row
