"""The key footer follows the keys of what has the keyboard, and is not rebuilt when they stay the same."""

from textual.widgets._footer import FooterKey

from cockpit_helpers import settle
from ptviz.tui.app import PtvizApp
from ptviz.tui.footer import FittingFooter


def keys(app) -> list[FooterKey]:
    return list(app.query_one(FittingFooter).query(FooterKey))


async def test_footer_follows_the_keys_and_keeps_the_same_ones(digits_config):
    """2 puts the Data pane's keys in the footer; > and < move between its views, whose keys are the same, and
    leave the footer's key widgets as they are (rebuilding them laid the screen out once more per key); 1 takes
    the pane's keys away again."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert "Re-roll" not in [k.description for k in keys(app)]
        await pilot.press("2")
        await settle(pilot)
        shown = keys(app)
        assert "Re-roll" in [k.description for k in shown]
        for key in (">", ">", "<", "<"):
            await pilot.press(key)
            await settle(pilot)
            assert keys(app) == shown and all(k.is_attached for k in shown)
        await pilot.press("1")
        await settle(pilot)
        assert "Re-roll" not in [k.description for k in keys(app)]
