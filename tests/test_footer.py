"""The key footer follows the keys of what has the keyboard, shows only those that fit whole, and repaints one
line when they change (no widgets mounted, no layout)."""

from cockpit_helpers import settle
from ptviz.tui.app import PtvizApp
from ptviz.tui.footer import FittingFooter


def descriptions(app) -> list[str]:
    return [description for _key, description, _enabled in app.query_one(FittingFooter).shown()]


async def test_footer_follows_the_keys_and_keeps_the_same_ones(digits_config):
    """2 puts the Data pane's keys in the footer; > and < move between its views, whose keys are the same, and
    the footer keeps them; 1 takes the pane's keys away again."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        footer = app.query_one(FittingFooter)
        assert descriptions(app)[:3] == ["Start", "Pause", "Stop"] and "Re-roll" not in descriptions(app)
        await pilot.press("2")
        await settle(pilot)
        shown = descriptions(app)
        assert "Re-roll" in shown and not footer.children
        for key in (">", ">", "<", "<"):
            await pilot.press(key)
            await settle(pilot)
            assert descriptions(app) == shown
        await pilot.press("1")
        await settle(pilot)
        assert "Re-roll" not in descriptions(app)


async def test_a_narrow_footer_keeps_whole_keys_in_their_order(digits_config):
    """At 80 columns the footer shows the first keys that fit whole, never half of one, and says them as typed."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        footer = app.query_one(FittingFooter)
        line = app.screen.get_widget_at(1, 23)[0]
        assert line is footer
        text = str(footer.render())
        assert text.startswith("s Start p Pause x Stop c Ckpt e Eval ? Help q Quit") and len(text) <= 80
        everything = " ".join(f"{k} {d}" for k, d, _ in footer.keys)
        assert len(everything) > 80 and everything.startswith(text)  # cut between keys, not inside one


async def test_an_attached_cockpit_says_q_detaches(digits_config, tmp_path):
    """Attached to a run in another process, q detaches and leaves it running: the footer says Detach, not Quit."""
    run = tmp_path / "run"
    run.mkdir()
    app = PtvizApp(digits_config, attach=run)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        shown = dict((key, description) for key, description, _enabled in app.query_one(FittingFooter).shown())
        assert shown["q"] == "Detach" and "Quit" not in shown.values()
    own = PtvizApp(digits_config)  # the app's own run: q quits
    async with own.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert ("q", "Quit", True) in own.query_one(FittingFooter).shown()
