"""Pilot tests: the training options in the cockpit's form, charts and log."""

from __future__ import annotations

from cockpit_helpers import type_into, wait_for
from ptviz.tui.app import PtvizApp
from ptviz.tui.config_form import ConfigForm
from ptviz.tui.train.charts import ChartsPane
from ptviz.tui.train.log_pane import LogPane


async def test_a_clipping_averaging_run_charts_its_grad_norm_and_ema(digits_config):
    """The grad norm chart takes a cell of the grid beside the step loss, with the clip level; the accuracy and
    epoch loss charts get the averaged weights' test results; the log names the options."""
    config = digits_config
    config.train.epochs, config.train.log_interval = 1, 1
    config.train.accumulate, config.train.clip_norm, config.train.ema_decay = 2, 0.5, 0.9
    app = PtvizApp(config)
    async with app.run_test(size=(160, 48)) as pilot:
        charts = app.query_one(ChartsPane)
        grad, step_loss = app.query_one("#chart-grad-norm"), app.query_one("#chart-step-loss")
        await pilot.pause()
        assert not grad.display  # until a run clips, the step loss has two columns, as without the option
        assert step_loss.size.width > 1.5 * app.query_one("#chart-accuracy").size.width
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="the run's end")
        await wait_for(pilot, lambda: "clip 0.5" in grad.text(), what="the grad norm chart")
        assert len(charts.history.grad_norm) == 23 and grad.display  # 45 batches of 32, in pairs
        assert "grad norm" in grad.text() and "mean of 10" in grad.text()
        assert abs(step_loss.size.width - grad.size.width) <= 1  # the step loss gave up its second column
        await wait_for(pilot, lambda: "ema test" in app.query_one("#chart-accuracy").text(), what="ema traces")
        assert "ema test" in app.query_one("#chart-epoch-loss").text()
        log = "\n".join(app.query_one(LogPane).text_lines)
        assert ("options: accumulate 2 batches a step (effective batch 64), clip grad norm at 0.5, "
                "weight average (EMA) decay 0.9") in log
        assert "Epoch 1, Loss: " in log and "EMA test accuracy: " in log  # the headless epoch line


async def test_compact_pages_include_the_grad_norm_chart_only_when_it_is_in_use(digits_config):
    """At 80x24 the charts show in pairs; with clipping the sixth chart is on the third page."""
    digits_config.train.epochs, digits_config.train.clip_norm = 1, 1.0
    app = PtvizApp(digits_config)
    async with app.run_test(size=(80, 24)) as pilot:
        charts = app.query_one(ChartsPane)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="the run's end")
        await wait_for(pilot, lambda: not app.query_one("#chart-grad-norm").has_class("-absent"),
                       what="the grad norm chart in use")
        shown = []
        for _ in range(3):
            charts.next_page()
            await pilot.pause()
            shown.append(sorted(c.id for c in charts.charts if c.display))
        assert shown[1] == ["chart-grad-norm", "chart-throughput"]
        assert sorted(sum(shown, [])) == sorted(c.id for c in charts.charts)


async def enter(pilot, widget_id: str, text: str) -> None:
    """Put `text` in a form field, as a paste would (validated like typing)."""
    pilot.app.query_one(f"#{widget_id}").value = text
    await pilot.pause()


async def test_the_options_are_model_tab_fields_with_their_rules(digits_config):
    app = PtvizApp(digits_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        form = app.query_one("#run-form", ConfigForm)
        await type_into(pilot, "f-train-clip-norm", "-1")
        assert form.errors == {"train.clip_norm": "must be >= 0"}
        assert "must be >= 0" in str(app.query_one("#f-train-clip-norm-reason").render())
        await enter(pilot, "f-train-clip-norm", "1")
        await enter(pilot, "f-train-accumulate", "0")
        assert form.errors == {"train.accumulate": "must be >= 1"}
        await enter(pilot, "f-train-accumulate", "4")
        await enter(pilot, "f-train-ema-decay", "1")
        assert form.errors == {"train.ema_decay": "must be < 1"}
        await enter(pilot, "f-train-ema-decay", "0.99")
        await enter(pilot, "f-train-early-stop-metric", "loss")
        assert "val_loss, test_accuracy" in form.errors["train.early_stop_metric"]
        await enter(pilot, "f-train-early-stop-metric", "test_loss")
        await enter(pilot, "f-optim-warmup-steps", "50")
        assert form.errors == {}
        t = app.config.train
        assert (t.clip_norm, t.accumulate, t.ema_decay, t.early_stop_metric) == (1.0, 4, 0.99, "test_loss")
        assert app.config.optim.warmup_steps == 50
